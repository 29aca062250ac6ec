"""What the cluster benchmarks share: the harness (``scripts/cluster.sh``) brought up with a
benchmark's environment and taken down after, the shell a user of that deployment has
(``cluster.sh env``), and a DAG triggered and waited for as a user does (the CLI, then the
run's state in the metadata database)."""

from __future__ import annotations

import json
import shlex
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
HARNESS = REPO / "scripts" / "cluster.sh"
CLUSTER = REPO / ".cluster"
#: The harness's metadata database (PostgreSQL on 127.0.0.1).
METADATA_DB = "cascade_cluster"
AIRFLOW = str(REPO / ".venv" / "bin" / "airflow")


def sql(database: str, query: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Run one statement on a database of the machine's PostgreSQL (autocommit)."""
    import psycopg2

    conn = psycopg2.connect(host="127.0.0.1", user="postgres", dbname=database)
    conn.autocommit = True
    try:
        with conn.cursor() as cursor:
            cursor.execute(query, parameters)
            return cursor.fetchall() if cursor.description else []
    finally:
        conn.close()


def harness_env(environ: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """``environ`` and ``extra`` without this process's Airflow home and settings (the
    deployment has its own) or a ``cascade_default`` connection (the harness points it at
    its sandbox)."""
    env = {**environ, **extra}
    for name in [n for n in env if n.startswith("AIRFLOW__") or n == "AIRFLOW_HOME"]:
        del env[name]
    env.pop("AIRFLOW_CONN_CASCADE_DEFAULT", None)
    return env


@contextmanager
def deployment(env: dict[str, str]) -> Iterator[dict[str, str]]:
    """The harness up with ``env``; yields the shell of a user of it (``cluster.sh env``
    applied to ``env``); down at the end, whatever happened."""
    subprocess.run(["bash", str(HARNESS), "up"], env=env, check=True, timeout=600)
    try:
        exports = subprocess.run(
            ["bash", str(HARNESS), "env"], env=env, check=True, capture_output=True, text=True
        ).stdout
        shell = dict(env)
        for line in exports.splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            shell[name] = shlex.split(value)[0] if value else ""
        yield shell
    finally:
        subprocess.run(["bash", str(HARNESS), "down"], env=env, check=False, timeout=120)


def trigger(shell: dict[str, str], dag_id: str) -> str:
    """Unpause and trigger ``dag_id`` with the CLI; the run's id."""
    subprocess.run([AIRFLOW, "dags", "unpause", dag_id], env=shell, check=True, capture_output=True)
    out = subprocess.run(
        [AIRFLOW, "dags", "trigger", dag_id, "-o", "json"],
        env=shell,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    [line] = [line for line in out.splitlines() if line.startswith("[{")]
    return str(json.loads(line)[0]["dag_run_id"])


def wait(dag_id: str, run_id: str, timeout: float = 3600, poll: float = 1.0) -> None:
    """Until the run succeeds. :raises SystemExit: it failed, or is not done in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        [(state,)] = sql(
            METADATA_DB,
            "SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s",
            (dag_id, run_id),
        )
        if state in ("success", "failed"):
            if state != "success":
                raise SystemExit(f"{dag_id} {run_id} {state}: see {CLUSTER / 'logs'}")
            return
        time.sleep(poll)
    raise SystemExit(f"{dag_id} {run_id} not done after {timeout} s")
