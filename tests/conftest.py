"""Shared fixtures: an isolated Airflow home, and a sandbox server over real HTTP."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

# Before anything imports Airflow: a private home and a quiet configuration.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="cascade-airflow-home-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault(
    "AIRFLOW__CORE__DAGS_FOLDER", os.path.join(os.environ["AIRFLOW_HOME"], "dags")
)

import pytest

from airflow_provider_cascade.sandbox.client import Sandbox

TEST_API_KEY = "test-key-7f3c9a1b5e"
VIBER_TOKEN = "viber-token-4d8e2f6a0c"
TG_KEY = "tg-key-9b1d3f5a7c"


@pytest.fixture(scope="session")
def sandbox_server() -> Iterator[Sandbox]:
    with Sandbox.start(api_key=TEST_API_KEY, delivery_seconds=0.5) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """The session's sandbox, emptied, fault-free, and set as ``cascade_default``."""
    sandbox_server.clear()
    sandbox_server.set_faults(
        error_rate=0.0, kinds=["500"], latency_ms=0, rate_limit=None, script=[]
    )
    monkeypatch.setenv("AIRFLOW_CONN_CASCADE_DEFAULT", sandbox_server.connection_json())
    return sandbox_server


def make_message(n: int, **overrides: object) -> dict[str, object]:
    """A valid transaction message numbered ``n`` (phone ends in n's last digit)."""
    message: dict[str, object] = {
        "tracking_id": f"order-{n}",
        "from_name": "Shop",
        "to_phone": f"+38050{n % 10_000_000:07d}",
        "message_type": "transaction",
        "text": f"Order {n} confirmed",
    }
    message.update(overrides)
    return message


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]):
    """Everything logged so far, whichever way it went (Airflow 3 logs through structlog
    to stdout; plain ``logging`` reaches caplog)."""
    caplog.set_level("DEBUG")

    def read() -> str:
        captured = capsys.readouterr()
        return caplog.text + captured.out + captured.err

    return read


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """A migrated metadata database (SQLite) in the tests' private AIRFLOW_HOME."""
    import subprocess
    import sys

    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        check=True,
        capture_output=True,
    )
