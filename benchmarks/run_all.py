"""Run every benchmark and write their figures to benchmarks/RESULTS.md.

    python benchmarks/run_all.py [--large]      (make bench)
    python benchmarks/run_all.py --only 3b      (one section again, the others kept)

``--large`` adds 1,000,000 rows to the throughput benchmark's 100,000 and 300,000.
``--only`` runs the sections whose number is given (comma-separated) and replaces just
those in RESULTS.md; the header then names each section's own date.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

from _common import machine

HERE = Path(__file__).resolve().parent
# Airflow's own log lines (timestamped) are not figures.
NOISE = re.compile(r"^\d{4}-\d\d-\d\dT|^\s*$")


def run(script: str, *args: str) -> str:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(HERE / script), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=HERE,
    )
    if done.returncode != 0:
        raise SystemExit(f"{script} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    figures = [line for line in done.stdout.splitlines() if not NOISE.match(line)]
    figures.append(f"  ({time.perf_counter() - started:.0f} s)")
    text = "\n".join(figures)
    print(f"$ python benchmarks/{script} {' '.join(args)}".rstrip())
    print(text, flush=True)
    return text


def sections(rows: str) -> list[tuple[str, Callable[[], str]]]:
    """Every section: its title (numbered) and how to run it."""
    return [
        ("The sandbox's own ceiling", lambda: run("sandbox_ceiling.py")),
        (
            "1. Throughput against a sequential requests loop, as a user runs it",
            lambda: run("throughput.py", "--rows", rows, "--runs", "3"),
        ),
        (
            "1b. The same on a real deployment (cluster harness, Celery, state store over HTTP)",
            lambda: run("cluster_throughput.py"),
        ),
        ("2. Against HttpOperator and HttpHook", lambda: run("vs_http_operator.py")),
        ("3. Pacing under a 20 requests/s limit with 200 ms latency", lambda: run("pacing.py")),
        ("3b. Status look-ups: client CPU and the rate held", lambda: run("status_lookups.py")),
        ("3c. A deferred wait over 3,000 messages in a real run", lambda: run("delivery_wait.py")),
        (
            "3d. Four waits on one connection share its status budget",
            lambda: run("status_budget.py"),
        ),
        ("4. Memory: 10,000 against 1,000,000 rows, fresh and resumed", lambda: run("memory.py")),
        (
            "4b. Memory, streaming from PostgreSQL (server-side cursor)",
            lambda: run("memory.py", "--source", "postgres"),
        ),
        (
            "4c. Memory, a @task.cascade generator (TaskFlow)",
            lambda: run("memory.py", "--source", "generator"),
        ),
        ("4d. Write-back on PostgreSQL against executemany", lambda: run("write_back.py")),
        ("5. DAG-parse cost", lambda: run("parse_cost.py")),
        ("6. A 10,000,000-number suppression set", lambda: run("suppression_memory.py")),
        (
            "7. Replies: the receiver in the API server of a real deployment",
            lambda: run("replies_load.py"),
        ),
        (
            "8. A 1,000,000-message campaign on a real deployment",
            lambda: run("cluster_campaign.py"),
        ),
        (
            "9. The fault matrix: each component of a real deployment failed mid-campaign",
            lambda: run("chaos.py"),
        ),
    ]


def header(command: str) -> list[str]:
    return [
        "# Benchmark results",
        "",
        f"`{command}` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.",
        f"Machine: {machine()}.",
        "Every figure is a median of its runs; every comparison a ratio measured in the same run,",
        "against the same local sandbox (one process, one core) over loopback HTTP.",
        "",
    ]


def block(title: str, text: str) -> list[str]:
    return [f"## {title}", "", "```", text, "```", ""]


def rerun(numbers: list[str], large: bool) -> None:
    """Run the numbered sections again and put their figures in place of the old ones."""
    path = HERE / "RESULTS.md"
    old = path.read_text()
    every = sections("100000,300000,1000000" if large else "100000,300000")
    for position, (title, measure) in enumerate(every):
        if title.split(".")[0] not in numbers:
            continue
        if f"## {title}\n" in old:
            start = old.index(f"## {title}\n")
            end = old.find("\n## ", start + 1)
            end = len(old) if end < 0 else end + 1
        else:  # a new section: before the next one already there, else at the end
            later = [old.find(f"## {t}\n") for t, _ in every[position + 1 :]]
            start = end = min([at for at in later if at >= 0], default=len(old))
        when = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
        text = f"(run again alone by `run_all.py --only` on {when})\n" + measure()
        old = old[:start] + "\n".join(block(title, text)) + old[end:]
    path.write_text(old)
    print(f"written to {path}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--large", action="store_true", help="also 1,000,000 rows for throughput")
    parser.add_argument("--only", help="section numbers to run again, e.g. 3b,3c")
    args = parser.parse_args()
    if args.only:
        rerun(args.only.split(","), args.large)
        return
    rows = "100000,300000,1000000" if args.large else "100000,300000"
    command = "make bench" + (" BENCH_ARGS=--large" if args.large else "")
    lines = header(command)
    for title, measure in sections(rows):
        lines += block(title, measure())
    (HERE / "RESULTS.md").write_text("\n".join(lines))
    print(f"written to {HERE / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
