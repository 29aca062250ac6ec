"""The real deployment the cluster tests run on: scripts/cluster.sh, started once a session.

Skipped with the reason where PostgreSQL does not answer or redis-server is not installed
(a laptop); CI sets CASCADE_REQUIRE_DATABASES=1, which makes either a failure.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_cascade.sandbox.client import Sandbox

REPO = Path(__file__).resolve().parents[2]
HARNESS = REPO / "scripts" / "cluster.sh"
DAGS = Path(__file__).resolve().parent / "dags"
DATABASE = "cascade_cluster"  # the harness's own; dropped by `down`
DATA_CONN = {
    "conn_type": "postgres",
    "host": "127.0.0.1",
    "port": 5432,
    "login": "postgres",
    "schema": DATABASE,
}
SANDBOX_ARGS = "--rate-limit 40 --delivery-seconds 1"
#: Where every process of the deployment sends its statsd metrics (the deferred_delivery
#: fixture listens there; nothing does otherwise, and UDP does not mind).
STATSD_PORT = 28125
#: The sandbox's API key (the harness's default is a random one).
SANDBOX_KEY = "cluster-sandbox-key-6d1f"
#: The token in the reply callback URL of the ``cascade_replies`` connection.
REPLIES_TOKEN = "cluster-replies-token-93b2e7"
#: A port in front of PostgreSQL that a test can cut (tests/tcp_proxy.py): the replies
#: database of ``cascade_replies_flaky`` unreachable, for this deployment only.
FLAKY_DB_PORT = 28543
FLAKY_REPLIES_CONN = {
    "conn_type": "cascade",
    "host": "http://127.0.0.1:28765",
    "password": "cluster-sandbox-key-6d1f",
    "extra": {
        "replies_token": "cluster-replies-token-93b2e7",
        "replies_conn_id": "cascade_flaky_pg",
    },
}
REPLIES_CONN = {
    "conn_type": "cascade",
    "host": "http://127.0.0.1:28765",
    "password": SANDBOX_KEY,
    "extra": {"replies_token": REPLIES_TOKEN, "replies_conn_id": "cascade_cluster_pg"},
}


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


@dataclass
class Cluster:
    """The running deployment, as a user's shell sees it after ``eval "$(cluster.sh env)"``."""

    env: dict[str, str]
    sandbox: Sandbox

    def airflow(self, *args: str) -> str:
        done = subprocess.run(
            [str(REPO / ".venv" / "bin" / "airflow"), *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        return done.stdout

    def trigger(self, dag_id: str) -> str:
        """``airflow dags trigger``; the run id."""
        out = self.airflow("dags", "trigger", dag_id, "-o", "json")
        # Airflow's own warnings come first on stdout; the run is the JSON line.
        [line] = [line for line in out.splitlines() if line.startswith("[{")]
        return str(json.loads(line)[0]["dag_run_id"])

    def wait(self, dag_id: str, run_id: str, timeout: float = 240) -> str:
        """The run's final state."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.run_state(dag_id, run_id)
            if state in ("success", "failed"):
                return state
            time.sleep(2)
        raise AssertionError(f"{dag_id} {run_id} still {state} after {timeout} s")

    def run_state(self, dag_id: str, run_id: str) -> str:
        [state] = self.sql(
            "SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", (dag_id, run_id)
        )[0]
        return str(state)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        rows = self.sql(
            "SELECT task_id, map_index, state, hostname, try_number FROM task_instance"
            " WHERE dag_id = %s AND run_id = %s ORDER BY task_id, map_index",
            (dag_id, run_id),
        )
        names = ("task_id", "map_index", "state", "hostname", "try_number")
        return [dict(zip(names, row, strict=True)) for row in rows]

    def tries(self, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
        """Every try of a task, earlier ones from the history table, with its worker."""
        rows = self.sql(
            "SELECT try_number, state, hostname FROM task_instance_history"
            " WHERE dag_id = %s AND run_id = %s AND task_id = %s"
            " UNION ALL SELECT try_number, state, hostname FROM task_instance"
            " WHERE dag_id = %s AND run_id = %s AND task_id = %s ORDER BY 1",
            (dag_id, run_id, task_id) * 2,
        )
        return [dict(zip(("try_number", "state", "hostname"), row, strict=True)) for row in rows]

    def xcom(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
        [(value,)] = self.sql(
            "SELECT value FROM xcom WHERE dag_id = %s AND run_id = %s AND task_id = %s"
            " AND map_index = %s AND key = 'return_value'",
            (dag_id, run_id, task_id, map_index),
        )
        return value if not isinstance(value, str) else json.loads(value)

    def sql(self, query: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        import psycopg2

        conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname=DATABASE)
        try:
            with conn, conn.cursor() as cursor:
                cursor.execute(query, parameters)
                return cursor.fetchall() if cursor.description else []
        finally:
            conn.close()

    def workers(self) -> dict[str, int]:
        """Worker name -> the PID ``scripts/cluster.sh workers`` gives for it."""
        out = subprocess.run(
            ["bash", str(HARNESS), "workers"],
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        return {f"worker-{n}": int(pid) for n, pid in enumerate(out, start=1)}


@contextmanager
def running_cluster(dags: Path = DAGS, **settings: str) -> Iterator[Cluster]:
    """``scripts/cluster.sh up`` with the tests' connections, the DAGs of ``dags`` (and
    ``settings``: more ``AIRFLOW__*`` or ``CASCADE_CLUSTER_*`` variables), then ``down``."""
    missing = [] if _answers(5432) else ["PostgreSQL on 127.0.0.1:5432"]
    if not shutil.which("redis-server"):
        missing.append("redis-server")
    if missing and not os.environ.get("CASCADE_REQUIRE_DATABASES"):
        pytest.skip(f"the cluster tests need {' and '.join(missing)}")
    env = {
        **os.environ,
        "CASCADE_CLUSTER_DAGS": str(dags),
        "CASCADE_SANDBOX_ARGS": SANDBOX_ARGS,
        "AIRFLOW_CONN_CASCADE_CLUSTER_PG": json.dumps(DATA_CONN),
        "AIRFLOW_CONN_CASCADE_REPLIES": json.dumps(REPLIES_CONN),
        "AIRFLOW_CONN_CASCADE_REPLIES_FLAKY": json.dumps(FLAKY_REPLIES_CONN),
        "AIRFLOW_CONN_CASCADE_FLAKY_PG": json.dumps({**DATA_CONN, "port": FLAKY_DB_PORT}),
        "CASCADE_SANDBOX_API_KEY": SANDBOX_KEY,
    }
    statsd = {
        "AIRFLOW__METRICS__STATSD_ON": "True",
        "AIRFLOW__METRICS__STATSD_HOST": "127.0.0.1",
        "AIRFLOW__METRICS__STATSD_PORT": str(STATSD_PORT),
        "AIRFLOW__METRICS__STATSD_INFLUXDB_ENABLED": "True",  # tags in the names
    }
    # The tests' own Airflow settings (a private SQLite home) are not the deployment's.
    for name in [n for n in env if n.startswith("AIRFLOW__") or n == "AIRFLOW_HOME"]:
        del env[name]
    env.pop("AIRFLOW_CONN_CASCADE_DEFAULT", None)
    env.update(statsd)
    env.update(settings)
    subprocess.run(["bash", str(HARNESS), "up"], env=env, check=True, timeout=600)
    try:
        exports = subprocess.run(
            ["bash", "-c", f'eval "$(bash {shlex.quote(str(HARNESS))} env)" && env -0'],
            env=env,
            capture_output=True,
            check=True,
        ).stdout.decode()
        shell = dict(item.split("=", 1) for item in exports.split("\0") if "=" in item)
        sandbox = Sandbox.attach(shell["CASCADE_SANDBOX_URL"], shell["CASCADE_SANDBOX_API_KEY"])
        yield Cluster(shell, sandbox)
    finally:
        subprocess.run(["bash", str(HARNESS), "down"], env=env, check=False, timeout=120)


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    with running_cluster() as running:
        yield running


@dataclass
class DeferredRun:
    run_id: str
    #: every statsd line the deployment sent meanwhile (tests/cluster/statsd.py)
    statsd: list[str]


@pytest.fixture(scope="session")
def deferred_delivery(cluster: Cluster) -> DeferredRun:
    """One run of ``cluster_deferred_delivery`` (20 messages sent, then a deferrable wait in
    the triggerer), then a reply the API server's receiver stores and one it refuses, with
    statsd listened to throughout: the sensor's, the metrics' and the UI's tests read it."""
    import requests

    from airflow_provider_cascade.sandbox.callbacks import callback_body
    from tests.cluster.statsd import Listener

    receiver = "http://127.0.0.1:28080/cascade/replies/cascade_replies"
    listener = Listener()
    try:
        cluster.sandbox.clear()
        cluster.sandbox.set_faults(error_rate=0.0, latency_ms=0, script=[], rate_limit=40)
        run_id = cluster.trigger("cluster_deferred_delivery")
        assert cluster.wait("cluster_deferred_delivery", run_id) == "success"
        stored = requests.post(
            receiver,
            params={"token": REPLIES_TOKEN},
            json=callback_body("380935550077", "metrics test reply"),
            timeout=30,
        )
        assert stored.status_code == 200, stored.text
        refused = requests.post(receiver, params={"token": "wrong"}, json={}, timeout=30)
        assert refused.status_code == 404
        time.sleep(3)  # statsd is fire-and-forget: the last packets in flight
    finally:
        listener.close()
    return DeferredRun(run_id, listener.lines)
