"""Throughput of CascadeSendOperator (SQL source, streamed) against the floor: a raw
``requests.Session`` loop that reads the same rows, builds the same 1,000-message JSON
batches and posts them, one after another.

    python benchmarks/throughput.py [--rows 100000] [--runs 3] [--profile]

Both run against the same sandbox, in the same process, alternately; medians of the runs.
Client CPU is this process's CPU time per message (the sandbox runs in another process).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from collections.abc import Callable

import _common  # noqa: F401  (sets up the Airflow home before Airflow is imported)
import requests
from _common import (
    BENCH_DB_CONN,
    SELECT,
    audience_db,
    hand_built_message,
    machine,
    median,
    run_operator,
)

from airflow_provider_cascade.messages import Route
from airflow_provider_cascade.sandbox.client import Sandbox

BATCH = 1_000


def raw_loop(db_path: str, sandbox: Sandbox) -> None:
    url = sandbox.url + Route.STANDARD.path
    with requests.Session() as session, sqlite3.connect(db_path) as db:
        session.headers.update(
            {"Content-Type": "application/json", "X-Authorization-Key": sandbox.api_key}
        )
        cursor = db.execute(SELECT)
        while rows := cursor.fetchmany(BATCH):
            body = json.dumps([hand_built_message(*row) for row in rows]).encode()
            session.post(url, data=body, timeout=60).raise_for_status()


def operator(max_in_flight: int, results_path: str) -> None:
    result = run_operator(
        sql=SELECT,
        sql_conn_id=BENCH_DB_CONN,
        from_name="Bench",
        message_type="promo",
        max_in_flight=max_in_flight,
        results_path=results_path,
    )
    assert result["sent"] > 0


def measure(
    label: str, rows: int, runs: int, sandbox: Sandbox, send: Callable[[], None]
) -> tuple[float, float]:
    rates, cpu = [], []
    sandbox.clear()
    send()  # warm-up, not counted: imports and Airflow's configuration load once per worker
    for _ in range(runs):
        sandbox.clear()
        wall, process = time.perf_counter(), time.process_time()
        send()
        wall, process = time.perf_counter() - wall, time.process_time() - process
        assert sandbox.stats()["accepted"] == rows, sandbox.stats()
        rates.append(rows / wall)
        cpu.append(process / rows * 1e6)
    print(f"  {label:<38} {median(rates):>9,.0f} msgs/s   client CPU {median(cpu):5.1f} us/msg")
    return median(rates), median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="pyinstrument the operator path")
    args = parser.parse_args()
    db = audience_db(args.rows)
    results = f"file://{db.parent}/result.jsonl"
    print(
        f"Throughput, {args.rows:,} rows from SQLite, {args.runs} runs each (medians); {machine()}"
    )
    with Sandbox.start() as sandbox:
        sandbox.set_env()
        if args.profile:
            from pyinstrument import Profiler

            with Profiler() as profiler:
                operator(8, results)
            profiler.print(show_all=False)
            return
        floor, floor_cpu = measure(
            "raw requests loop (floor)",
            args.rows,
            args.runs,
            sandbox,
            lambda: raw_loop(str(db), sandbox),
        )
        op4, op4_cpu = measure(
            "CascadeSendOperator (8 in flight)",
            args.rows,
            args.runs,
            sandbox,
            lambda: operator(8, results),
        )
        op1, _ = measure(
            "CascadeSendOperator (1 in flight)",
            args.rows,
            args.runs,
            sandbox,
            lambda: operator(1, results),
        )
    print(
        f"  ratio operator/floor: {op4 / floor:.2f} (default),"
        f" {op1 / floor:.2f} (1 in flight); target >= 0.9"
    )
    print(
        f"  client CPU operator/floor: {op4_cpu / floor_cpu:.2f}x (validation, ledger, result file)"
    )


if __name__ == "__main__":
    main()
