"""The demo: a local Cascade sandbox, a SQLite-backed Airflow, and real `airflow dags test` runs.

Run with ``make demo``. Everything lives under ``.demo/`` in the repository (git-ignored),
so a second run starts from a clean Airflow home again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from airflow_provider_cascade.sandbox.client import Sandbox

REPO = Path(__file__).resolve().parent.parent
DEMO_HOME = REPO / ".demo"
DAGS = ("order_confirmations",)


def airflow(*args: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "airflow", *args], env=env, check=True)


def main() -> None:
    shutil.rmtree(DEMO_HOME, ignore_errors=True)
    (DEMO_HOME / "airflow").mkdir(parents=True)
    with Sandbox.start(delivery_seconds=1.0) as sandbox:
        env = os.environ | {
            "AIRFLOW_HOME": str(DEMO_HOME / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "example_dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW_CONN_CASCADE_DEFAULT": sandbox.connection_json(),
            "CASCADE_DEMO_HOME": str(DEMO_HOME),
        }
        print(f"Sandbox at {sandbox.url}; Airflow home {DEMO_HOME / 'airflow'}", flush=True)
        airflow("db", "migrate", env=env)
        for dag_id in DAGS:
            print(f"\n=== airflow dags test {dag_id}", flush=True)
            airflow("dags", "test", dag_id, env=env)

        stats = sandbox.stats()
        routes = Counter(message["route"] for message in sandbox.messages())
        print("\n=== Summary")
        accepted, requests = stats["accepted"], stats["requests"]
        print(f"accepted by the sandbox: {accepted} message(s) in {requests} request(s)")
        print(f"by route: {dict(routes)}; duplicates: {stats['duplicate_tracking_ids']}")


if __name__ == "__main__":
    main()
