"""The fault matrix on a real deployment (make chaos): every fault of tests/chaos in both
``on_uncertain`` modes, each during a 100,000-message mapped campaign, and its table.

    python benchmarks/chaos.py            (run by run_all.py --only 9)

Each test adds its row to a report file as it ends; this prints them as a table, then
exits non-zero if any test failed (the table still shows what was seen).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _recovery(row: dict[str, Any]) -> str:
    """What the deployment did besides the retries: components its supervisor started
    again, tasks the scheduler queued again after the broker lost them."""
    done = []
    if row.get("revived"):
        done.append("restarted: " + ", ".join(sorted(set(row["revived"]))))
    if row.get("requeued"):
        done.append(f"{row['requeued']} task(s) queued again")
    return "; ".join(done) or "-"


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        report = Path(folder) / "chaos.jsonl"
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "tests/chaos"],
            cwd=REPO,
            env={**os.environ, "CASCADE_CHAOS_MODES": "both", "CASCADE_CHAOS_REPORT": str(report)},
            capture_output=True,
            text=True,
            check=False,
        )
        rows = (
            [json.loads(line) for line in report.read_text().splitlines()]
            if report.exists()
            else []
        )
    print(
        "fault matrix: a 100,000-message campaign in 8 mapped partitions (4 at once on 2"
        " Celery workers, 40 requests/s, batches of 100, outbox and write-back on PostgreSQL)"
    )
    print()
    print(
        "| fault | mode | run | accepted | twice | in doubt | lost | written back"
        " | partitions retried | recovery | statuses looked up twice | took |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['what']} | {row['mode']} | {row['state']} | {row['accepted']:,} |"
            f" {row['twice']:,} | {row['in_doubt']:,} | {row['lost']:,} |"
            f" {row['written_back']:,} | {row['partitions_retried']} | {_recovery(row)} |"
            f" {row.get('asked_twice', 0):,} | {row['took_s']:.0f} s |"
        )
    print()
    for row in rows:
        said = "; ".join(row["logs"][:3]) or "nothing above INFO"
        print(f"{row['fault']} ({row['mode']}): the task logs said: {said}")
    if done.returncode != 0:
        print(done.stdout[-4000:], file=sys.stderr)
        return done.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
