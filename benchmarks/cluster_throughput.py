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
import sys
from pathlib import Path

import _common  # noqa: F401  (an Airflow home of its own for this process)
from _cluster import CLUSTER, deployment, harness_env, trigger, wait
from _common import audience_db, machine
from throughput import DB_ENV, FIGURES, RESULTS_ENV, TARGET_LATENCY, TARGET_LOOPBACK, judge, summary

from airflow_provider_cascade.sandbox.client import Sandbox

DAG_ID = "cascade_bench_throughput"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--latency-ms", default="0,50")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    db = audience_db(args.rows)
    env = harness_env(
        os.environ,
        {
            "CASCADE_CLUSTER_DAGS": str(Path(__file__).parent / "dags"),
            DB_ENV: str(db),
            RESULTS_ENV: f"file://{db.parent}/cluster-result.jsonl",
            "CASCADE_BENCH_SANDBOX_PID_FILE": str(CLUSTER / "pids" / "sandbox.pid"),
        },
    )
    print(
        f"Throughput on the cluster harness (Celery worker, state store over HTTP), "
        f"{args.rows:,} rows from SQLite, {args.runs} runs (medians); {machine()}"
    )
    with deployment(env) as shell:
        sandbox = Sandbox.attach(shell["CASCADE_SANDBOX_URL"], shell["CASCADE_SANDBOX_API_KEY"])
        verdicts = []
        for latency in (float(ms) for ms in args.latency_ms.split(",")):
            sandbox.set_faults(latency_ms=latency)
            figures: dict[str, list[dict]] = {"raw": [], "send": []}
            for _ in range(args.runs):
                sandbox.clear()
                FIGURES.unlink(missing_ok=True)
                wait(DAG_ID, trigger(shell, DAG_ID), timeout=600)
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


if __name__ == "__main__":
    sys.exit(main())
