"""The demo: a local Cascade sandbox, a SQLite-backed Airflow, and real `airflow dags test` runs.

Run with ``make demo``. Everything lives under ``.demo/`` in the repository (git-ignored)
and is made anew on every run. The full Airflow output of each run goes to
``.demo/logs/<dag_id>.log``.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from airflow_provider_cascade.sandbox.client import Sandbox

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / ".demo"
RUNS = ("send_and_track", "sql_campaign_outbox", "sql_campaign_outbox")


def airflow(args: list[str], env: dict[str, str], log: Path | None = None) -> None:
    command = [sys.executable, "-m", "airflow", *args]
    with open(log or os.devnull, "w") as out:
        done = subprocess.run(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    if done.returncode != 0:
        tail = log.read_text().splitlines()[-40:] if log else []
        raise SystemExit("\n".join([f"`airflow {' '.join(args)}` failed:", *tail]))


def latest_xcom(dag_id: str, task_id: str) -> Any:
    with sqlite3.connect(DEMO / "airflow" / "airflow.db") as db:
        row = db.execute(
            "SELECT value FROM xcom WHERE dag_id = ? AND task_id = ? AND key = 'return_value'"
            " ORDER BY timestamp DESC LIMIT 1",
            (dag_id, task_id),
        ).fetchone()
    value = json.loads(row[0]) if row else None
    return json.loads(value) if isinstance(value, str) else value


def main() -> None:
    shutil.rmtree(DEMO, ignore_errors=True)
    (DEMO / "airflow").mkdir(parents=True)
    (DEMO / "logs").mkdir()
    outbox = DEMO / "outbox.db"
    with Sandbox.start(delivery_seconds=2.0) as sandbox:
        env = os.environ | {
            "AIRFLOW_HOME": str(DEMO / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_CASCADE_DEFAULT": sandbox.connection_json(),
            "AIRFLOW_CONN_CASCADE_OUTBOX_DB": json.dumps(
                {"conn_type": "sqlite", "host": str(outbox)}
            ),
        }
        print(f"Cascade sandbox running at {sandbox.url}")
        print(f"Airflow home {DEMO / 'airflow'} (SQLite); preparing the metadata database...")
        airflow(["db", "migrate"], env, DEMO / "logs" / "db-migrate.log")
        for number, dag_id in enumerate(RUNS, 1):
            log = DEMO / "logs" / f"{number}-{dag_id}.log"
            print(f"airflow dags test {dag_id} ... ", end="", flush=True)
            airflow(["dags", "test", dag_id], env, log)
            print(f"success (log: {log.relative_to(REPO)})")
        stats = sandbox.stats()

    send = latest_xcom("send_and_track", "send")
    delivery = latest_xcom("send_and_track", "wait_for_delivery")
    campaigns = latest_xcom("sql_campaign_outbox", "send_campaign")
    with sqlite3.connect(outbox) as db:
        marked, total = db.execute(
            "SELECT COUNT(message_id), COUNT(*) FROM promo_outbox"
        ).fetchone()

    print("\nSummary")
    print(f"  send_and_track: sent {send['sent']} in {send['batches']} request(s); delivery:")
    for status, count in sorted(delivery["by_status"].items()):
        print(f"    {status}: {count}")
    for channel, count in sorted(delivery["by_channel"].items()):
        print(f"    delivered by {channel}: {count}")
    print(
        f"  sql_campaign_outbox: {marked}/{total} outbox rows sent and marked in {outbox};"
        f" the second run sent {campaigns['sent']} (nothing left to send)"
    )
    print(
        f"  the sandbox accepted {stats['accepted']} message(s) in {stats['requests']} request(s),"
        f" {stats['duplicate_tracking_ids']} duplicate(s)"
    )


if __name__ == "__main__":
    main()
