"""The throughput benchmark on a real deployment (``scripts/cluster.sh``: Celery workers,
the task state store over the API server's HTTP): the same DAG as ``throughput.py``, a
sequential ``requests`` loop then the operator with its default arguments, on the same
SQLite rows, triggered as a user triggers it; on loopback and with latency added to every
send (the sandbox's ``latency_ms``, set between runs).

    python benchmarks/cluster_throughput.py [--rows 100000] [--latency-ms 0,50] [--runs 3]

Prints both rates, their ratio, client CPU per message (the task process's own) and the
sandbox's CPU share (proof it was not the bottleneck), as ``throughput.py`` does.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import _common  # noqa: F401  (an Airflow home of its own for this process)
from _common import audience_db, machine
from throughput import DB_ENV, FIGURES, RESULTS_ENV, TARGET_LATENCY, TARGET_LOOPBACK, judge, summary

from airflow_provider_cascade.sandbox.client import Sandbox

REPO = Path(__file__).resolve().parent.parent
HARNESS = REPO / "scripts" / "cluster.sh"
DAG_ID = "cascade_bench_throughput"
DATABASE = "cascade_cluster"


def harness(*args: str, env: dict[str, str]) -> str:
    return subprocess.run(
        ["bash", str(HARNESS), *args], env=env, check=True, capture_output=True, text=True
    ).stdout


def run_state(dag_id: str, run_id: str) -> str:
    import psycopg2

    db = psycopg2.connect(host="127.0.0.1", user="postgres", dbname=DATABASE)
    try:
        with db.cursor() as cursor:
            cursor.execute(
                "SELECT state FROM dag_run WHERE dag_id = %s AND run_id = %s", (dag_id, run_id)
            )
            return str(cursor.fetchone()[0])
    finally:
        db.close()


def trigger_and_wait(shell: dict[str, str], timeout: float = 600) -> None:
    airflow = str(REPO / ".venv" / "bin" / "airflow")
    subprocess.run([airflow, "dags", "unpause", DAG_ID], env=shell, check=True, capture_output=True)
    out = subprocess.run(
        [airflow, "dags", "trigger", DAG_ID, "-o", "json"],
        env=shell,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    [line] = [line for line in out.splitlines() if line.startswith("[{")]
    run_id = json.loads(line)[0]["dag_run_id"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = run_state(DAG_ID, run_id)
        if state in ("success", "failed"):
            if state != "success":
                raise SystemExit(f"{DAG_ID} {run_id} {state}: see .cluster/logs")
            return
        time.sleep(1)
    raise SystemExit(f"{DAG_ID} {run_id} not done after {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--latency-ms", default="0,50")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    db = audience_db(args.rows)
    env = {
        **os.environ,
        "CASCADE_CLUSTER_DAGS": str(Path(__file__).parent / "dags"),
        DB_ENV: str(db),
        RESULTS_ENV: f"file://{db.parent}/cluster-result.jsonl",
        "CASCADE_BENCH_SANDBOX_PID_FILE": str(REPO / ".cluster" / "pids" / "sandbox.pid"),
    }
    for name in [n for n in env if n.startswith("AIRFLOW__") or n == "AIRFLOW_HOME"]:
        del env[name]  # this process's private home is not the deployment's
    env.pop("AIRFLOW_CONN_CASCADE_DEFAULT", None)  # the harness points it at its sandbox
    print(
        f"Throughput on the cluster harness (Celery worker, state store over HTTP), "
        f"{args.rows:,} rows from SQLite, {args.runs} runs (medians); {machine()}"
    )
    subprocess.run(["bash", str(HARNESS), "up"], env=env, check=True, timeout=600)
    try:
        exports = harness("env", env=env)
        shell = dict(env)
        for line in exports.splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            shell[name] = shlex.split(value)[0] if value else ""
        sandbox = Sandbox.attach(shell["CASCADE_SANDBOX_URL"], shell["CASCADE_SANDBOX_API_KEY"])
        verdicts = []
        for latency in (float(ms) for ms in args.latency_ms.split(",")):
            sandbox.set_faults(latency_ms=latency)
            figures: dict[str, list[dict]] = {"raw": [], "send": []}
            for _ in range(args.runs):
                sandbox.clear()
                FIGURES.unlink(missing_ok=True)
                trigger_and_wait(shell)
                assert sandbox.stats()["accepted"] == 2 * args.rows, sandbox.stats()
                for line in FIGURES.read_text().splitlines():
                    entry = json.loads(line)
                    figures[entry.pop("task")].append(entry)
            print(f"  {args.rows:,} rows, sandbox latency {latency:.0f} ms:")
            loop = summary("sequential requests loop (@task)", figures["raw"])
            operator = summary("CascadeSendOperator, default arguments", figures["send"])
            target = TARGET_LATENCY if latency else TARGET_LOOPBACK
            verdicts.append(judge(loop, operator, latency) >= target)
        print(f"  every target met: {'yes' if all(verdicts) else 'NO'}")
    finally:
        subprocess.run(["bash", str(HARNESS), "down"], env=env, check=False, timeout=120)


if __name__ == "__main__":
    sys.exit(main())
