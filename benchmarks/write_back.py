"""The write-back step on PostgreSQL: ``mark_sent_sql`` run for every accepted message, as
the send runs it (``airflow_provider_cascade.sql.execute_and_commit``), against what a user
writes instead: ``cursor.executemany`` then ``commit`` (what the provider itself ran
before), on both drivers the PostgresHook uses: psycopg 3 (where it is installed; its
executemany pipelines) and psycopg2 (whose executemany makes one round trip a row).

    python benchmarks/write_back.py [--rows 100000] [--batch 1000] [--runs 3]

Each run updates every row of a fresh table by its primary key, a batch (the send's
default batch size) a commit, the two ways interleaved. Prints rows/s, the client's CPU a
row (this process) and the PostgreSQL backend's CPU a row and busy share (its process in
``/proc``: proof of which side bounds the rate). The in-task figure is RESULTS.md section 8
(the 1,000,000-message campaign's write-back rows/s).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (an Airflow home of its own for this process)
from _common import machine, median

from airflow_provider_cascade.sql import execute_and_commit

TABLE = "bench_write_back"
MARK_SENT = (
    f"UPDATE {TABLE} SET message_id = %(message_id)s, sent_at = %(sent_at)s"
    " WHERE id = %(tracking_id)s"
)
TICK = os.sysconf("SC_CLK_TCK")


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def hand_written(conn: Any, sql: str, rows: list[dict[str, Any]]) -> None:
    cursor = conn.cursor()
    cursor.executemany(sql, rows)
    cursor.close()
    conn.commit()


def measure(
    conn: Any, write: Callable[[Any, str, list[dict[str, Any]]], None], rows: int, batch: int
) -> dict[str, float]:
    with closing(conn.cursor()) as cursor:
        cursor.execute(f"TRUNCATE {TABLE}")
        cursor.execute(f"INSERT INTO {TABLE} (id) SELECT generate_series(1, %s)", (rows,))
        cursor.execute("SELECT pg_backend_pid()")
        pid = int(cursor.fetchone()[0])
    conn.commit()
    sent_at = "2026-12-05T10:00:00+00:00"
    batches = [
        [
            {
                "tracking_id": n,
                "message_id": f"00000000-0000-4000-8000-{n:012d}",
                "sent_at": sent_at,
            }
            for n in range(start, min(start + batch, rows + 1))
        ]
        for start in range(1, rows + 1, batch)
    ]
    wall, cpu, server = time.perf_counter(), time.process_time(), backend_cpu(pid)
    for rows_of_batch in batches:
        write(conn, MARK_SENT, rows_of_batch)
    wall = time.perf_counter() - wall
    cpu = time.process_time() - cpu
    server = backend_cpu(pid) - server
    with closing(conn.cursor()) as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {TABLE} WHERE message_id IS NOT NULL")
        written = int(cursor.fetchone()[0])
    conn.commit()
    assert written == rows, (written, rows)
    return {
        "rate": rows / wall,
        "cpu_us": cpu / rows * 1e6,
        "server_us": server / rows * 1e6,
        "server_busy": server / wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    import psycopg
    import psycopg2

    drivers = {
        "psycopg 3": psycopg.connect(host="127.0.0.1", user="postgres", dbname="test"),
        "psycopg2": psycopg2.connect(host="127.0.0.1", user="postgres", dbname="test"),
    }
    setup = drivers["psycopg2"]
    with closing(setup.cursor()) as cursor:
        cursor.execute(
            f"DROP TABLE IF EXISTS {TABLE}; CREATE TABLE {TABLE}"
            " (id BIGINT PRIMARY KEY, message_id TEXT, sent_at TEXT)"
        )
    setup.commit()
    ways = {
        "cursor.executemany + commit (hand-written)": hand_written,
        "the send's write-back (execute_and_commit)": execute_and_commit,
    }
    figures: dict[tuple[str, str], list[dict[str, float]]] = {
        (driver, name): [] for driver in drivers for name in ways
    }
    try:
        for _ in range(args.runs):
            for driver, conn in drivers.items():
                for name, write in ways.items():
                    figures[driver, name].append(measure(conn, write, args.rows, args.batch))
    finally:
        with closing(setup.cursor()) as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {TABLE}")
        setup.commit()
        for conn in drivers.values():
            conn.close()
    print(
        f"Write-back on PostgreSQL (127.0.0.1, UPDATE by primary key), {args.rows:,} rows in"
        f" batches of {args.batch:,}, a commit each, {args.runs} runs interleaved (medians);"
        f" {machine()}"
    )
    for driver in drivers:
        print(f"  {driver}:")
        medians = []
        for name in ways:
            values = figures[driver, name]
            found = {key: median(v[key] for v in values) for key in values[0]}
            medians.append(found)
            print(
                f"    {name:<44} {found['rate']:>8,.0f} rows/s   client CPU"
                f" {found['cpu_us']:5.1f} us/row   PostgreSQL {found['server_us']:5.1f} us/row"
                f" (busy {found['server_busy']:.0%})"
            )
        loop, send = medians
        busy = max(loop["server_busy"], send["server_busy"])
        print(
            f"    ratio send/hand-written: {send['rate'] / loop['rate']:.2f}x the rows/s,"
            f" {send['cpu_us'] / loop['cpu_us']:.2f}x the client CPU a row; PostgreSQL was "
            + ("the bound" if busy > 0.85 else "not the bound")
            + f" (busy at most {busy:.0%})"
        )


if __name__ == "__main__":
    main()
