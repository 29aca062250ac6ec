"""The replies receiver inside the Airflow API server of a real deployment
(``scripts/cluster.sh``), storing on PostgreSQL: what it answers to bad input, and its
answer times under load.

    python benchmarks/replies_load.py [--callbacks 2000] [--clients 20] [--rate 200]

Prints, for each bad input, the answer and how many rows it left; then 2,000 distinct
callbacks from 20 clients at 200/s (SMSBAT's side, ``sandbox.callbacks``) and the same
with no pacing (the receiver's ceiling here): answers, rows stored (each once), answer
times, and the API server's CPU (proof of what was the bottleneck).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import _cluster
import _common  # noqa: F401  (an Airflow home of its own for this process)
import requests
from _cluster import CLUSTER, METADATA_DB, deployment, harness_env
from _common import machine

from airflow_provider_cascade.sandbox.callbacks import Load, callback_body, post_callbacks

TOKEN = "bench-replies-token-4f1e"
STORE = {
    "conn_type": "postgres",
    "host": "127.0.0.1",
    "port": 5432,
    "login": "postgres",
    "schema": METADATA_DB,
}


def sql(query: str, parameters: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    return _cluster.sql(METADATA_DB, query, parameters)


def group_cpu(leader: int) -> float:
    """CPU seconds of every process in ``leader``'s process group (the API server and the
    workers it started)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == leader:  # pgrp
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def rows_for(reply_ids: list[str]) -> int:
    return int(
        sql("SELECT COUNT(*) FROM cascade_replies WHERE reply_id = ANY(%s)", (reply_ids,))[0][0]
    )


def bad_inputs(base: str) -> None:
    url = f"{base}/cascade/replies/cascade_replies"
    good = callback_body("380951110000", "hello")
    sql("SELECT 1")
    cases: list[tuple[str, dict[str, Any], Any]] = [
        ("wrong token", {"token": "not-the-token"}, callback_body("380951110001", "x")),
        ("no token", {}, callback_body("380951110002", "x")),
        ("unknown connection (URL names another)", {"token": TOKEN}, None),
        ("body over 64 KB", {"token": TOKEN}, callback_body("380951110003", "x" * 70_000)),
        ("not JSON", {"token": TOKEN}, b"not json"),
        ("idUuid missing", {"token": TOKEN}, {k: v for k, v in good.items() if k != "idUuid"}),
        ("text a number", {"token": TOKEN}, {**callback_body("380951110004", ""), "text": 42}),
        ("national phone number", {"token": TOKEN}, callback_body("0951110005", "x")),
        (
            "SQL-looking text",
            {"token": TOKEN},
            callback_body("380951110006", "'); DROP TABLE x;--"),
        ),
        (
            "an array of 3",
            {"token": TOKEN},
            [callback_body(f"38095111001{n}", "x") for n in range(3)],
        ),
    ]
    print("  bad input, posted to the API server:")
    for name, params, body in cases:
        target = url if body is not None else url.replace("cascade_replies", "nobody")
        body = body if body is not None else callback_body("380951110007", "x")
        if isinstance(body, bytes):
            answer = requests.post(target, params=params, data=body, timeout=30)
        else:
            answer = requests.post(target, params=params, json=body, timeout=30)
        items = body if isinstance(body, list) else [body] if isinstance(body, dict) else []
        ids = [item["idUuid"] for item in items if "idUuid" in item]
        detail = answer.json().get("detail", "") if answer.status_code == 422 else ""
        print(
            f"    {name:<40} {answer.status_code}  rows stored {rows_for(ids) if ids else 0}"
            + (f"  ({detail[:70]})" if detail else "")
        )
    answers = [requests.post(url, params={"token": TOKEN}, json=good, timeout=30) for _ in range(5)]
    print(
        f"    {'the same idUuid 5 times':<40} {', '.join(str(a.status_code) for a in answers)}"
        f"  rows stored {rows_for([good['idUuid']])}"
    )


def under_load(base: str, leader: int, count: int, clients: int, rate: float | None) -> None:
    url = f"{base}/cascade/replies/cascade_replies?token={TOKEN}"
    prefix = "38096" if rate else "38097"
    bodies = [callback_body(f"{prefix}{n:07d}", f"load {n}") for n in range(count)]
    cpu = group_cpu(leader)
    load: Load = post_callbacks(url, bodies, clients=clients, rate=rate)
    cpu = group_cpu(leader) - cpu
    [(rows, distinct)] = sql(
        "SELECT COUNT(*), COUNT(DISTINCT reply_id) FROM cascade_replies WHERE phone LIKE %s",
        (f"+{prefix}%",),
    )
    pace = f"at {rate:.0f}/s" if rate else "unpaced"
    answers = ", ".join(f"{n:,} x {status}" for status, n in sorted(load.statuses.items()))
    print(
        f"  {count:,} callbacks, {clients} clients, {pace}: {load.rate:.0f}/s answered ({answers});"
        f" rows {rows:,} ({distinct:,} distinct, {count - distinct:,} lost);"
        f" answer time p50 {load.median * 1e3:.0f} ms, p95 {load.percentile(0.95) * 1e3:.0f} ms,"
        f" p99 {load.percentile(0.99) * 1e3:.0f} ms, max {max(load.latencies) * 1e3:.0f} ms;"
        f" API server CPU {cpu / load.elapsed:.0%} of a core"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--callbacks", type=int, default=2_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--rate", type=float, default=200.0)
    args = parser.parse_args()
    env = harness_env(
        os.environ,
        {
            "CASCADE_CLUSTER_DAGS": str(Path(__file__).parent / "dags"),
            "AIRFLOW_CONN_CASCADE_BENCH_STORE": json.dumps(STORE),
            "AIRFLOW_CONN_CASCADE_REPLIES": json.dumps(
                {
                    "conn_type": "cascade",
                    "password": "bench-key",
                    "extra": {"replies_token": TOKEN, "replies_conn_id": "cascade_bench_store"},
                }
            ),
        },
    )
    print(f"The replies receiver in the API server of scripts/cluster.sh, PostgreSQL; {machine()}")
    with deployment(env) as shell:
        base = f"http://127.0.0.1:{shell.get('AIRFLOW__API__PORT', '28080')}"
        leader = int((CLUSTER / "pids" / "api-server.pid").read_text())
        bad_inputs(base)
        under_load(base, leader, args.callbacks, args.clients, args.rate)
        under_load(base, leader, args.callbacks, args.clients, None)


if __name__ == "__main__":
    main()
