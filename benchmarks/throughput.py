"""Throughput of CascadeSendOperator (SQL source, streamed) against the floor: a raw
``requests.Session`` loop that reads the same rows, builds the same 1,000-message JSON
batches and posts them, one after another.

    python benchmarks/throughput.py [--rows 100000] [--runs 3] [--profile]

Both run **inside a real task run**: one ``dag.test()`` per run holds a ``raw`` task (the
loop, a ``@task``) and a ``send`` task (the operator, with Airflow's task state store, so
the ledger costs what it costs), alternately. Medians of the runs.

It also proves the server was not the bottleneck: the sandbox's ceiling is measured in the
same run, and for each side the sandbox process's CPU time over the wall time is printed
(the sandbox is one event loop: near 100% means the figure is the server's, not the
client's). Client CPU is this process's CPU time per message (the sandbox runs apart).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

# Before Airflow reads its configuration: the benchmark's DAG file is the DAG bundle.
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).parent / "dags")

import _common  # noqa: F401  (sets up the Airflow home before Airflow is imported)
from _common import audience_db, machine, median
from sandbox_ceiling import ceiling

from airflow_provider_cascade.sandbox.client import Sandbox

# The DAG file's names, without importing it (it imports Airflow and reads the environment).
SANDBOX_PID_ENV = "CASCADE_BENCH_SANDBOX_PID"
DB_ENV = "CASCADE_BENCH_DB"
RESULTS_ENV = "CASCADE_BENCH_RESULTS"
PROFILE_ENV = "CASCADE_BENCH_PROFILE"
FIGURES = Path(tempfile.gettempdir()) / "cascade-bench" / "throughput-figures.jsonl"


def in_task_runs(dag: Any, runs: int, sandbox: Sandbox, rows: int) -> dict[str, list[dict]]:
    figures: dict[str, list[dict]] = {"raw": [], "send": []}
    for run in range(runs + 1):  # the first is a warm-up: imports, config, first connections
        sandbox.clear()
        FIGURES.unlink(missing_ok=True)
        assert dag.test().state == "success"
        assert sandbox.stats()["accepted"] == 2 * rows, sandbox.stats()
        if run:
            for line in FIGURES.read_text().splitlines():
                entry = json.loads(line)
                figures[entry.pop("task")].append(entry)
    return figures


def summary(label: str, values: list[dict]) -> dict[str, float]:
    figures = {name: median(v[name] for v in values) for name in ("rate", "cpu_us", "server_busy")}
    print(
        f"  {label:<44} {figures['rate']:>9,.0f} msgs/s"
        f"   client CPU {figures['cpu_us']:5.1f} us/msg   server busy {figures['server_busy']:4.0%}"
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="pyinstrument the operator path")
    args = parser.parse_args()
    db = audience_db(args.rows)
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True
    )
    results = f"file://{db.parent}/result.jsonl"
    print(
        f"Throughput, {args.rows:,} rows from SQLite, inside `dag.test()` task runs with the "
        f"task state store, {args.runs} runs (medians); {machine()}"
    )
    with Sandbox.start() as sandbox:
        sandbox.set_env()
        os.environ[SANDBOX_PID_ENV] = str(sandbox.process.pid)
        os.environ[DB_ENV] = str(db)
        os.environ[RESULTS_ENV] = results
        from dags import cascade_bench_throughput as bench_dags

        if args.profile:  # the operator inside a task run, under pyinstrument
            report = Path(tempfile.gettempdir()) / "cascade-bench" / "throughput-profile.txt"
            os.environ[PROFILE_ENV] = str(report)
            assert bench_dags.in_flight_8.test().state == "success"
            print(report.read_text())
            return
        server_ceiling = ceiling(sandbox, requests_per_run=50, runs=3)
        print(f"  sandbox ceiling (raw client, 1,000 a request)  {server_ceiling:>9,.0f} msgs/s")
        figures = {}
        for max_in_flight in (8, 1):
            dag = getattr(bench_dags, f"in_flight_{max_in_flight}")
            measured = in_task_runs(dag, args.runs, sandbox, args.rows)
            if max_in_flight == 8:
                figures["raw"] = summary("raw requests loop in a @task (floor)", measured["raw"])
            figures[max_in_flight] = summary(
                f"CascadeSendOperator task ({max_in_flight} in flight)", measured["send"]
            )
    floor, operator = figures["raw"], figures[8]
    print(
        f"  ratio operator/floor: {operator['rate'] / floor['rate']:.2f} (default),"
        f" {figures[1]['rate'] / floor['rate']:.2f} (1 in flight); target >= 0.9"
    )
    print(f"  client CPU operator/floor: {operator['cpu_us'] / floor['cpu_us']:.2f}x; target <= 2")
    bound = [
        label for label, f in (("floor", floor), ("operator", operator)) if f["server_busy"] > 0.85
    ]
    print(
        "  server-bound: " + ", ".join(bound) + " (the sandbox was busy > 85%: a floor on speed)"
        if bound
        else f"  the server was not the bottleneck: busy at most "
        f"{max(floor['server_busy'], operator['server_busy']):.0%} of the time, ceiling "
        f"{server_ceiling / max(floor['rate'], operator['rate']):.1f}x the fastest side"
    )


if __name__ == "__main__":
    main()
