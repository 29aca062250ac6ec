"""Throughput of CascadeSendOperator (SQL source, streamed) against what a user would write
instead: a sequential ``requests.Session`` loop that reads the same rows, builds the same
1,000-message JSON batches and posts them, one after another.

    python benchmarks/throughput.py [--rows 100000,300000] [--latency-ms 0,50] [--runs 3]

As a user runs it: each run is one ``airflow dags test`` in a fresh process, whose DAG holds
a ``raw`` task (the loop) and a ``send`` task (the operator with its default arguments and a
results path; the task state store as Airflow gives it). Medians of the runs, for each
size, and for each latency the sandbox adds to every send (``--latency-ms``: a real
service is not on loopback; the operator overlaps its requests, the loop cannot).

It also proves the server was not the bottleneck: for each side the sandbox process's CPU
time over the wall time is printed (the sandbox is one event loop: near 100% means the
figure is the server's, not the client's). Client CPU is the task's own CPU time per message.

By default the operator paces itself at the connection's 80 requests/s (under the service's
published 100/s): 80,000 messages/s at most. The loop does not pace itself; on a machine
where it runs faster than that, the operator is judged against its pace (printed as
"operator/pace"), since a real service would refuse the loop's sustained rate.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# Before Airflow reads its configuration: the benchmark's DAG file is the DAG bundle.
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).parent / "dags")

import _common  # noqa: F401  (sets up the Airflow home before Airflow is imported)
from _common import audience_db, machine, median

from airflow_provider_cascade.constants import DEFAULT_MAX_REQUESTS_PER_SECOND, MAX_BATCH_SIZE
from airflow_provider_cascade.sandbox.client import Sandbox

# The DAG file's names, without importing it (it imports Airflow and reads the environment).
DAG_ID = "cascade_bench_throughput"
SANDBOX_PID_ENV = "CASCADE_BENCH_SANDBOX_PID"
DB_ENV = "CASCADE_BENCH_DB"
RESULTS_ENV = "CASCADE_BENCH_RESULTS"
PROFILE_ENV = "CASCADE_BENCH_PROFILE"
FIGURES = Path(tempfile.gettempdir()) / "cascade-bench" / "throughput-figures.jsonl"
#: The ratios asked of the operator: with no added latency, and with some.
TARGET_LOOPBACK, TARGET_LATENCY = 0.9, 3.0
#: The fastest the operator sends with its default arguments: the connection's default
#: pace (80 requests/s, under the service's published 100/s) of 1,000-message batches.
#: The loop does not pace itself; where it runs faster than this, the operator is judged
#: against this pace (a real service would answer 429 to the loop's sustained rate).
PACE_CEILING = DEFAULT_MAX_REQUESTS_PER_SECOND * MAX_BATCH_SIZE


def dags_test(runs: int, sandbox: Sandbox, rows: int) -> dict[str, list[dict]]:
    """``airflow dags test`` ``runs`` times, each in a fresh process, as a user runs it."""
    figures: dict[str, list[dict]] = {"raw": [], "send": []}
    for _ in range(runs):
        sandbox.clear()
        FIGURES.unlink(missing_ok=True)
        done = subprocess.run(
            [sys.executable, "-m", "airflow", "dags", "test", DAG_ID],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0 or sandbox.stats()["accepted"] != 2 * rows:
            raise SystemExit(f"the run failed: {sandbox.stats()}\n{done.stdout[-3000:]}")
        for line in FIGURES.read_text().splitlines():
            entry = json.loads(line)
            figures[entry.pop("task")].append(entry)
    return figures


def summary(label: str, values: list[dict]) -> dict[str, float]:
    figures = {name: median(v[name] for v in values) for name in ("rate", "cpu_us", "server_busy")}
    print(
        f"    {label:<36} {figures['rate']:>9,.0f} msgs/s"
        f"   client CPU {figures['cpu_us']:5.1f} us/msg   server busy {figures['server_busy']:4.0%}"
    )
    return figures


def judge(loop: dict[str, float], operator: dict[str, float], latency: float) -> float:
    """Print the ratio; return the one judged against the target: the operator against the
    loop, or against its own default pace where the loop ran faster than that pace."""
    target = TARGET_LATENCY if latency else TARGET_LOOPBACK
    floor = min(loop["rate"], PACE_CEILING)
    judged = operator["rate"] / floor
    busy = max(loop["server_busy"], operator["server_busy"])
    print(f"    ratio operator/loop: {operator['rate'] / loop['rate']:.2f}x", end="")
    if loop["rate"] > PACE_CEILING:
        print(
            f"; the loop ran at {loop['rate'] / MAX_BATCH_SIZE:.0f} requests/s, above the"
            f" operator's default pace of {DEFAULT_MAX_REQUESTS_PER_SECOND:.0f}/s (the"
            f" service's published limit is 100/s): operator/pace {judged:.2f}x",
            end="",
        )
    print(
        f" (target >= {target}); client CPU operator/loop "
        f"{operator['cpu_us'] / loop['cpu_us']:.2f}x; the server "
        + ("WAS the bottleneck" if busy > 0.85 else "was not the bottleneck")
        + f" (busy at most {busy:.0%})"
    )
    return judged


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", default="100000,300000", help="sizes, comma-separated")
    parser.add_argument("--latency-ms", default="0,50", help="latencies, comma-separated")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="pyinstrument the send task")
    args = parser.parse_args()
    sizes = [int(size) for size in args.rows.split(",")]
    latencies = [float(ms) for ms in args.latency_ms.split(",")]
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True
    )
    print(
        f"Throughput, rows from SQLite, one `airflow dags test` a run (a fresh process, the "
        f"task state store), {args.runs} runs (medians); {machine()}"
    )
    verdicts: list[bool] = []
    by_size: list[float] = []  # the loopback ratios, smallest size first
    for latency in latencies:
        for rows in sizes if not latency else sizes[:1]:
            db = audience_db(rows)
            with Sandbox.start(latency_ms=latency) as sandbox:
                sandbox.set_env()
                os.environ[SANDBOX_PID_ENV] = str(sandbox.process.pid)
                os.environ[DB_ENV] = str(db)
                os.environ[RESULTS_ENV] = f"file://{db.parent}/result.jsonl"
                if args.profile:
                    report = FIGURES.parent / "throughput-profile.txt"
                    os.environ[PROFILE_ENV] = str(report)
                    dags_test(1, sandbox, rows)
                    print(report.read_text())
                    return
                print(f"  {rows:,} rows, sandbox latency {latency:.0f} ms:")
                measured = dags_test(args.runs, sandbox, rows)
                loop = summary("sequential requests loop (@task)", measured["raw"])
                operator = summary("CascadeSendOperator, default arguments", measured["send"])
            judged = judge(loop, operator, latency)
            verdicts.append(judged >= (TARGET_LATENCY if latency else TARGET_LOOPBACK))
            if not latency:
                by_size.append(judged)
    if len(by_size) > 1:  # no worse at the larger size (within a run-to-run wobble of 0.03)
        steady = by_size[-1] >= by_size[0] - 0.03
        print(f"  no worse at {sizes[-1]:,} rows than at {sizes[0]:,}: {'yes' if steady else 'NO'}")
        verdicts.append(steady)
    print(f"  every target met: {'yes' if all(verdicts) else 'NO'}")


if __name__ == "__main__":
    main()
