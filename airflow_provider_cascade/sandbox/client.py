"""Start a sandbox in a child process and drive it: for tests, the demo and benchmarks.

::

    with Sandbox.start(rate_limit=20) as sandbox:
        os.environ["AIRFLOW_CONN_CASCADE_DEFAULT"] = sandbox.connection_json()
        ...
        assert sandbox.stats()["duplicate_tracking_ids"] == 0
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import requests

from airflow_provider_cascade.sandbox import API_KEY_ENV, READY_LINE

#: The API key a sandbox started by :meth:`Sandbox.start` expects, unless told otherwise.
SANDBOX_API_KEY = "sandbox-api-key"


class Sandbox:
    """A running sandbox server (a child process) and a small client for its controls."""

    def __init__(
        self, process: subprocess.Popen[bytes] | None, url: str, api_key: str, log: Path | None
    ) -> None:
        self.process = process
        self.url = url
        self.api_key = api_key
        self.log_path = log
        self._control = requests.Session()

    @classmethod
    def start(
        cls,
        *,
        port: int = 0,
        api_key: str = SANDBOX_API_KEY,
        delivery_seconds: float = 1.0,
        rate_limit: float | None = None,
        error_rate: float = 0.0,
        fault_kinds: tuple[str, ...] = ("500",),
        latency_ms: float = 0.0,
        status_latency_ms: float = 0.0,
        status_rate_limit: float | None = None,
        seed: int | None = None,
        replies_url: str | None = None,
        startup_timeout: float = 30.0,
    ) -> Sandbox:
        """Start ``cascade-sandbox`` on loopback (a free port unless ``port`` is given)."""
        args = [
            sys.executable,
            "-m",
            "airflow_provider_cascade.sandbox",
            f"--port={port}",
            f"--delivery-seconds={delivery_seconds}",
            f"--error-rate={error_rate}",
            f"--fault-kinds={','.join(fault_kinds)}",
            f"--latency-ms={latency_ms}",
            f"--status-latency-ms={status_latency_ms}",
        ]
        if status_rate_limit is not None:
            args.append(f"--status-rate-limit={status_rate_limit}")
        if rate_limit is not None:
            args.append(f"--rate-limit={rate_limit}")
        if seed is not None:
            args.append(f"--seed={seed}")
        if replies_url is not None:
            args.append(f"--replies-url={replies_url}")
        log = Path(tempfile.mkstemp(prefix="cascade-sandbox-", suffix=".log")[1])
        with log.open("wb") as out:
            # The key goes in the environment, not the arguments: `ps` shows arguments.
            env = {**os.environ, API_KEY_ENV: api_key}
            process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + startup_timeout
        while time.monotonic() < deadline:
            for line in log.read_text(errors="replace").splitlines():
                if line.startswith(READY_LINE):
                    return cls(process, line[len(READY_LINE) :].strip(), api_key, log)
            if process.poll() is not None:
                break
            time.sleep(0.05)
        process.kill()
        raise RuntimeError(f"the sandbox did not start:\n{log.read_text(errors='replace')}")

    @classmethod
    def attach(cls, url: str, api_key: str) -> Sandbox:
        """A client for a sandbox another process runs (``scripts/cluster.sh``'s);
        :meth:`stop` then only closes the client."""
        return cls(None, url.rstrip("/"), api_key, None)

    def stop(self) -> None:
        self._control.close()
        if self.process is None or self.log_path is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- connection -----------------------------------------------------------------------

    def connection(self, **extra: Any) -> dict[str, Any]:
        """A ``cascade`` connection to this sandbox, as Airflow's JSON form."""
        return {
            "conn_type": "cascade",
            "host": self.url,
            "password": self.api_key,
            "extra": extra,
        }

    def connection_json(self, **extra: Any) -> str:
        """The value for ``AIRFLOW_CONN_<ID>``."""
        return json.dumps(self.connection(**extra))

    def set_env(self, conn_id: str = "cascade_default", **extra: Any) -> None:
        """Point ``conn_id`` at this sandbox for this process and its children."""
        os.environ[f"AIRFLOW_CONN_{conn_id.upper()}"] = self.connection_json(**extra)

    # --- controls -------------------------------------------------------------------------

    def messages(self) -> list[dict[str, Any]]:
        """Every accepted message, in the order accepted."""
        return self._get("/sandbox/messages")  # type: ignore[no-any-return]

    def stats(self) -> dict[str, Any]:
        return self._get("/sandbox/stats")  # type: ignore[no-any-return]

    def set_faults(self, **changes: Any) -> dict[str, Any]:
        """Change fault injection (``error_rate``, ``kinds``, ``latency_ms``, ``rate_limit``,
        ``script``, ``seed``); unnamed settings keep their value."""
        response = self._control.put(f"{self.url}/sandbox/faults", json=changes, timeout=10)
        response.raise_for_status()
        return response.json()  # type: ignore[no-any-return]

    def reply(self, phone: str, text: str, **more: Any) -> str:
        """A recipient answers: the sandbox forwards it to its replies URL as SMSBAT's
        callback (``alpha_name``, ``id_uuid``, ``dt`` optional). Returns its ``idUuid``."""
        body = {"phone": phone, "text": text, **more}
        response = self._control.post(f"{self.url}/sandbox/replies", json=body, timeout=10)
        response.raise_for_status()
        return str(response.json()["idUuid"])

    def replies(self) -> dict[str, Any]:
        """Every callback made (``callbacks``, each with its ``attempts``) and how many are
        still being sent (``pending``)."""
        return self._get("/sandbox/replies")  # type: ignore[no-any-return]

    def set_replies_url(self, url: str | None) -> None:
        """Where replies are forwarded from now on."""
        response = self._control.put(
            f"{self.url}/sandbox/replies-url", json={"url": url}, timeout=10
        )
        response.raise_for_status()

    def clear(self) -> None:
        """Forget every accepted message and counter."""
        self._control.delete(f"{self.url}/sandbox/messages", timeout=10).raise_for_status()

    def _get(self, path: str) -> Any:
        response = self._control.get(f"{self.url}{path}", timeout=60)
        response.raise_for_status()
        return response.json()
