"""CascadeSendOperator against what a user without this provider would write:

1. one ``HttpOperator`` task per 1,000-message batch, the bodies built by an upstream task
   and mapped from its XCom, both DAGs run by ``dag.test()`` (real task runs);
2. one POST per message through ``HttpHook``, against the operator sending the same rows.

    python benchmarks/vs_http_operator.py [--rows 100000] [--per-message-rows 2000] [--runs 3]

Needs ``apache-airflow-providers-http`` (``pip install -e .[bench]``). Wall-time ratios of
medians; the same sandbox serves every side.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import _common  # noqa: F401  (sets up the Airflow home before Airflow is imported)
from _common import (
    BENCH_DB_CONN,
    SELECT,
    audience_db,
    hand_built_message,
    machine,
    median,
    run_operator,
)

# Before Airflow reads its configuration: the benchmark's two DAGs are the DAG bundle.
DAGS_FOLDER = Path(tempfile.mkdtemp(prefix="cascade-bench-dags-"))
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(DAGS_FOLDER)

from airflow_provider_cascade.messages import Route  # noqa: E402
from airflow_provider_cascade.sandbox.client import Sandbox  # noqa: E402

DAGS = """
import json, sqlite3
from airflow.sdk import DAG, task
from airflow.providers.http.operators.http import HttpOperator
from airflow_provider_cascade.operators.cascade import CascadeSendOperator
from airflow_provider_cascade.send import CascadeResults

with DAG("bench_http_per_batch", schedule=None) as per_batch:
    @task(show_return_value_in_logs=False)
    def bodies() -> list[str]:
        with sqlite3.connect({db!r}) as db:
            rows = db.execute({select!r}).fetchall()
        return [
            json.dumps([
                {{"id": str(i), "fromName": "Bench", "toPhone": p, "messageType": "promo",
                  "text": t, "ttl": 259200}}
                for i, p, t in rows[start:start + 1000]
            ])
            for start in range(0, len(rows), 1000)
        ]

    HttpOperator.partial(
        task_id="post", http_conn_id="sandbox_http", endpoint={path!r}, method="POST",
        log_response=False,
    ).expand(data=bodies())

with DAG("bench_cascade_operator", schedule=None) as cascade:
    CascadeSendOperator(
        task_id="send", sql={select!r}, sql_conn_id={conn!r}, from_name="Bench",
        message_type="promo", results=CascadeResults(path="file://{results}"),
    )
"""


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--per-message-rows", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    db = audience_db(args.rows)
    dags = DAGS_FOLDER
    (dags / "bench_dags.py").write_text(
        DAGS.format(
            db=str(db),
            select=SELECT,
            path=Route.STANDARD.path,
            conn=BENCH_DB_CONN,
            results=f"{db.parent}/vs-http.jsonl",
        )
    )
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True
    )
    print(f"vs HttpOperator/HttpHook, {args.runs} runs each (medians); {machine()}")

    with Sandbox.start() as sandbox:
        sandbox.set_env()
        os.environ["AIRFLOW_CONN_SANDBOX_HTTP"] = json.dumps(
            {
                "conn_type": "http",
                "host": sandbox.url,
                "extra": {
                    "X-Authorization-Key": sandbox.api_key,
                    "Content-Type": "application/json",
                },
            }
        )
        from airflow.providers.http.hooks.http import HttpHook
        from airflow.sdk.definitions.dag import DAG  # noqa: F401  (loaded before the DAG file)

        namespace: dict[str, object] = {}
        exec(compile((dags / "bench_dags.py").read_text(), "bench_dags.py", "exec"), namespace)
        per_batch, cascade = namespace["per_batch"], namespace["cascade"]

        def dag_run(dag: object) -> None:
            sandbox.clear()
            assert dag.test().state == "success"  # type: ignore[attr-defined]
            assert sandbox.stats()["accepted"] == args.rows

        dag_run(cascade)  # warm-up: the first run serialises the DAGs
        http_dag = median(timed(lambda: dag_run(per_batch)) for _ in range(args.runs))
        cascade_dag = median(timed(lambda: dag_run(cascade)) for _ in range(args.runs))

        small = audience_db(args.per_message_rows)
        import sqlite3

        with sqlite3.connect(small) as conn:
            rows = conn.execute(SELECT).fetchall()

        def per_message() -> None:
            sandbox.clear()
            for row in rows:
                HttpHook(method="POST", http_conn_id="sandbox_http").run(
                    Route.STANDARD.path, data=json.dumps([hand_built_message(*row)])
                )

        def operator_small() -> None:
            sandbox.clear()
            run_operator(
                sql=SELECT, sql_conn_id=BENCH_DB_CONN, from_name="Bench", message_type="promo"
            )

        hook_loop = median(timed(per_message) for _ in range(args.runs))
        operator_run = median(timed(operator_small) for _ in range(args.runs))

    print(f"  {args.rows:,} rows, whole DAG runs (dag.test):")
    print(f"    HttpOperator, one mapped task per batch: {http_dag:7.1f} s")
    print(
        f"    CascadeSendOperator, one task:           {cascade_dag:7.1f} s"
        f"   {http_dag / cascade_dag:.1f}x faster"
    )
    print(
        f"  {args.per_message_rows:,} rows, one POST per message through HttpHook vs the operator:"
    )
    print(f"    HttpHook per message:                    {hook_loop:7.2f} s")
    print(
        f"    CascadeSendOperator:                     {operator_run:7.2f} s"
        f"   {hook_loop / operator_run:.0f}x faster; target >= 10x"
    )


if __name__ == "__main__":
    main()
