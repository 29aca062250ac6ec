"""The throughput benchmark's DAG (``benchmarks/throughput.py`` runs it with ``airflow dags
test``, as a user does): a ``raw`` task, the hand-written sequential loop, then a ``send``
task, the operator with its default arguments and a results path. Each task appends its
figures to :data:`FIGURES`. Configured through the environment, as a DAG file is."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # benchmarks/_common.py
from _common import BENCH_DB_CONN, SELECT, hand_built_message
from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_cascade.operators.cascade import CascadeSendOperator
from airflow_provider_cascade.send import CascadeResults
from airflow_provider_cascade.wire import Route

BATCH = 1_000
#: Where a task finds the sandbox's process to measure its CPU.
SANDBOX_PID_ENV = "CASCADE_BENCH_SANDBOX_PID"
SANDBOX_PID_FILE_ENV = "CASCADE_BENCH_SANDBOX_PID_FILE"
#: The audience file, and the operator's results_path.
DB_ENV = "CASCADE_BENCH_DB"
RESULTS_ENV = "CASCADE_BENCH_RESULTS"
#: Set to a file path: profile the send task into it instead of timing it.
PROFILE_ENV = "CASCADE_BENCH_PROFILE"
#: Where each task appends its figures (one JSON line: task, rate, cpu_us, server_busy).
FIGURES = Path(tempfile.gettempdir()) / "cascade-bench" / "throughput-figures.jsonl"


def server_cpu() -> float:
    """CPU seconds the sandbox process has used so far (its PID given, or in a file: on the
    cluster harness the workers start before the sandbox's PID is known)."""
    pid = os.environ.get(SANDBOX_PID_ENV) or Path(os.environ[SANDBOX_PID_FILE_ENV]).read_text()
    fields = Path(f"/proc/{pid.strip()}/stat").read_text().rsplit(")", 1)[1]
    utime, stime = fields.split()[11:13]
    return (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")


class Timer:
    """Wall time, this process's CPU time and the sandbox's CPU time of a block."""

    def __enter__(self) -> Timer:
        self.wall, self.cpu, self.server = time.perf_counter(), time.process_time(), server_cpu()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu
        self.server = server_cpu() - self.server

    def record(self, task_id: str, messages: int) -> None:
        figures = {
            "task": task_id,
            "rate": messages / self.wall,
            "cpu_us": self.cpu / messages * 1e6,
            "server_busy": self.server / self.wall,
        }
        with FIGURES.open("a") as out:
            out.write(json.dumps(figures) + "\n")


def raw_loop() -> int:
    """What a user without this provider writes: read, build the wire JSON, post, in turn."""
    conn = json.loads(os.environ["AIRFLOW_CONN_CASCADE_DEFAULT"])
    sent = 0
    with requests.Session() as session, sqlite3.connect(os.environ[DB_ENV]) as db:
        session.headers.update(
            {"Content-Type": "application/json", "X-Authorization-Key": conn["password"]}
        )
        url = conn["host"] + Route.STANDARD.path
        cursor = db.execute(SELECT)
        while rows := cursor.fetchmany(BATCH):
            body = json.dumps([hand_built_message(*row) for row in rows]).encode()
            session.post(url, data=body, timeout=60).raise_for_status()
            sent += len(rows)
    return sent


class TimedSend(CascadeSendOperator):
    def execute(self, context: Any) -> dict[str, Any]:
        if os.environ.get(PROFILE_ENV):  # where the operator's time goes inside a task
            from pyinstrument import Profiler

            with Profiler() as profiler:
                result = super().execute(context)
            Path(os.environ[PROFILE_ENV]).write_text(profiler.output_text(show_all=False))
            return result
        with Timer() as timer:
            result = super().execute(context)
        timer.record("send", result["sent"])
        return result


with DAG("cascade_bench_throughput", schedule=None) as throughput:

    @task(task_id="raw")
    def raw() -> None:
        with Timer() as timer:
            sent = raw_loop()
        timer.record("raw", sent)

    # What a user writes: default arguments, and a results path for a large send.
    send = TimedSend(
        task_id="send",
        sql=SELECT,
        sql_conn_id=BENCH_DB_CONN,
        from_name="Bench",
        message_type="promo",
        results=CascadeResults(path=os.environ.get(RESULTS_ENV)),
    )
    raw() >> send
