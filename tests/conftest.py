"""Shared fixtures: an isolated Airflow home, and a sandbox server over real HTTP."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TEST_DAGS = REPO / "tests" / "dags"
EXAMPLE_DAGS = REPO / "example_dags"

# Before anything imports Airflow: a private home, and the test and example DAGs as the
# bundles dag.test() syncs from.
os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="cascade-airflow-home-")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(TEST_DAGS)
os.environ["AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST"] = json.dumps(
    [
        {
            "name": name,
            "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
            "kwargs": {"path": str(path), "refresh_interval": 0},
        }
        for name, path in (("cascade-tests", TEST_DAGS), ("cascade-examples", EXAMPLE_DAGS))
    ]
)

import pytest  # noqa: E402  (after the environment above)

from airflow_provider_cascade.sandbox.client import Sandbox  # noqa: E402

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
        error_rate=0.0,
        kinds=["500"],
        latency_ms=0,
        rate_limit=None,
        script=[],
        status_latency_ms=0,
        status_rate_limit=None,
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


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run each ``compat``-marked test where the compatibility matrix says it should
    (tests/compat.py)."""
    from tests.compat import read_table, running_version

    table, running = read_table(), running_version()
    version = ".".join(map(str, running))
    for item in items:
        for marker in item.iter_markers("compat"):
            feature = marker.args[0]
            expected = marker.kwargs.get("supported", True)
            if table.supported(feature, running) != expected:
                cell = table.cell(feature, running)
                item.add_marker(
                    pytest.mark.skip(
                        reason=f"compatibility matrix: `{feature}` on Airflow {version}: {cell}"
                    )
                )


@pytest.fixture(autouse=True)
def no_oversized_state_store_values(
    request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> Iterator[None]:
    """Airflow warns when a task state store value passes ``max_value_storage_bytes``; the
    provider keeps coordination state only, so no test may see that warning."""
    # The test's own capture fixture if it has one (capfd and capsys cannot both be used).
    capture = request.getfixturevalue("capfd" if "capfd" in request.fixturenames else "capsys")
    yield
    captured = capture.readouterr()
    seen = caplog.text + captured.out + captured.err
    # Give the output back to pytest's report.
    print(captured.out, end="")
    assert "max_value_storage_bytes" not in seen, "a state store value was too large"
