"""A standalone receiver (``cascade-replies``) in a child process, on a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Receiver:
    def __init__(self, url: str, log: Path, process: subprocess.Popen[bytes]) -> None:
        self.url = url
        self.log = log
        self.process = process

    def post(
        self, conn_id: str, body: object, token: str | None, **kwargs: object
    ) -> requests.Response:
        params = {} if token is None else {"token": token}
        url = f"{self.url}/cascade/replies/{conn_id}"
        if isinstance(body, (bytes, str)):
            return requests.post(url, params=params, data=body, timeout=30, **kwargs)  # type: ignore[arg-type]
        return requests.post(url, params=params, json=body, timeout=30, **kwargs)  # type: ignore[arg-type]

    def callback_url(self, conn_id: str, token: str) -> str:
        return f"{self.url}/cascade/replies/{conn_id}?token={token}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextmanager
def standalone_receiver(tmp_path: Path, env: dict[str, str] | None = None) -> Iterator[Receiver]:
    """``cascade-replies`` with this process's environment (its ``AIRFLOW_CONN_*``)."""
    port = free_port()
    log = tmp_path / f"receiver-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "airflow_provider_cascade.replies.cli", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                requests.get(f"{url}/", timeout=1)
                break
            except requests.ConnectionError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the receiver did not start:\n{log.read_text()}") from None
                time.sleep(0.1)
        yield Receiver(url, log, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
