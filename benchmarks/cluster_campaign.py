"""A 1,000,000-message campaign on a real deployment (make bench-cluster): the cluster
harness (scripts/cluster.sh: API server, scheduler, DAG processor, triggerer, two Celery
workers), the audience in PostgreSQL, the mapped campaign of
benchmarks/dags/cluster/cascade_bench_campaign.py (8 partitions, 4 at once over both
workers, batches of 100, every row written back), then a sampled delivery wait.

    python benchmarks/cluster_campaign.py [--rows 1000000]

Runs it twice: unpaced (the connection's budget far above what the machine can send), and
paced at the published limit, 100 requests/s, set on the connection. Prints, against the
sandbox's ceiling measured in the same run (the campaign's batch size, 4 clients at once):
wall time and msgs/s, the CPU each part of the deployment used (which resource bounds the
rate), peak RSS and its growth per task process of each worker, bytes the metadata
database grew by table, the largest XCom and state-store values, write-back rows/s, and
the delivery estimate's time for 1,000 samples.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import _common  # noqa: F401  (an Airflow home of its own for this process)
from _cluster import CLUSTER, METADATA_DB, deployment, harness_env, sql, trigger, wait
from _common import machine
from sandbox_ceiling import ceiling

from airflow_provider_cascade.sandbox.client import Sandbox

DAGS = Path(__file__).resolve().parent / "dags" / "cluster"
AUDIENCE_DB = "cascade_bench_campaign"
SANDBOX_URL = "http://127.0.0.1:28765"
SANDBOX_KEY = "bench-campaign-sandbox-7c1e"
BATCH_SIZE = 100
AT_ONCE = 4
PACED_BUDGET = 100.0  # requests/s: the service's published limit
#: Goals (issue 28).
UNPACED_GOAL, PACED_GOAL, RSS_GOAL_MB, VALUE_GOAL = 0.8, 0.9, 100, 64 * 1024
TICK = os.sysconf("SC_CLK_TCK")


def load_audience(rows: int) -> float:
    """The audience table, fresh; the seconds it took."""
    started = time.perf_counter()
    sql(AUDIENCE_DB, "DROP TABLE IF EXISTS bench_audience")
    sql(
        AUDIENCE_DB,
        "CREATE TABLE bench_audience (id BIGINT PRIMARY KEY, to_phone TEXT NOT NULL,"
        " text TEXT NOT NULL, message_id TEXT, sent_at TEXT, marks INT NOT NULL DEFAULT 0,"
        " marked_at TIMESTAMPTZ)",
    )
    sql(
        AUDIENCE_DB,
        "INSERT INTO bench_audience (id, to_phone, text) SELECT n,"
        " '+38099' || lpad((n %% 10000000)::text, 7, '0'),"
        " 'Black Friday starts now: up to -50%% on everything in the app.'"
        " FROM generate_series(1, %s) AS n",
        (rows,),
    )
    sql(AUDIENCE_DB, "VACUUM ANALYZE bench_audience")
    return time.perf_counter() - started


def table_sizes() -> dict[str, int]:
    return {
        name: int(size)
        for name, size in sql(
            METADATA_DB,
            "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c"
            " JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind = 'r'",
        )
    }


# --- what the machine's processes did: CPU by part of the deployment, RSS per task -------


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            tree[ppid].append(int(entry.name))
    return tree


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


def _memory_kb(pid: int) -> tuple[int, int] | None:
    """(VmRSS, VmHWM) in kB."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    values = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    try:
        return int(values["VmRSS"].split()[0]), int(values["VmHWM"].split()[0])
    except KeyError:
        return None


class Sampler:
    """Every 0.5 s: each process's CPU time by the part of the deployment it belongs to,
    and each worker's processes' RSS (first seen and peak); every 2 s the largest value in
    the task state store."""

    def __init__(self) -> None:
        self.roots = {path.stem: int(path.read_text()) for path in (CLUSTER / "pids").glob("*.pid")}
        self.cpu: dict[int, tuple[str, float, float]] = {}  # pid -> (part, first, last)
        self.rss: dict[int, tuple[str, int, int, int]] = {}  # pid -> (worker, depth, first, peak)
        self.largest_state_value = 0
        #: (wall-clock time, CPU seconds used so far by each part), each tick
        self.history: list[tuple[float, dict[str, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _parts(self) -> dict[int, tuple[str, int]]:
        tree = _children()
        parts: dict[int, tuple[str, int]] = {}
        for name, root in self.roots.items():
            queue = [(root, 0)]
            while queue:
                pid, depth = queue.pop()
                parts[pid] = (name, depth)
                queue.extend((child, depth + 1) for child in tree.get(pid, []))
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) not in parts:
                try:
                    comm = (entry / "comm").read_text().strip()
                except OSError:
                    continue
                parts[int(entry.name)] = ("postgres" if comm == "postgres" else "other", 0)
        return parts

    def _run(self) -> None:
        ticks = 0
        while not self._stop.wait(0.5):
            for pid, (part, depth) in self._parts().items():
                seconds = _cpu_seconds(pid)
                if seconds is None:
                    continue
                _, first, _ = self.cpu.get(pid, (part, seconds, seconds))
                self.cpu[pid] = (part, first, seconds)
                if part.startswith("worker") and (memory := _memory_kb(pid)):
                    rss, peak = memory
                    _, _, first_rss, old_peak = self.rss.get(pid, (part, depth, rss, 0))
                    self.rss[pid] = (part, depth, first_rss, max(old_peak, peak, rss))
            self.history.append((time.time(), self.cpu_by_part()))
            ticks += 1
            if ticks % 4 == 0:
                [(largest,)] = sql(
                    METADATA_DB,
                    "SELECT COALESCE(MAX(octet_length(value)), 0) FROM task_state_store",
                )
                self.largest_state_value = max(self.largest_state_value, int(largest))

    def cpu_by_part(self) -> dict[str, float]:
        used: dict[str, float] = defaultdict(float)
        for part, first, last in self.cpu.values():
            used[part.split("-")[0] if part.startswith("worker") else part] += last - first
        return dict(used)

    def cpu_between(self, start: float, end: float) -> dict[str, float]:
        """CPU seconds each part used between two wall-clock times (the nearest ticks)."""
        before = max((h for h in self.history if h[0] <= start), default=self.history[0])
        after = min((h for h in self.history if h[0] >= end), default=self.history[-1])
        return {
            part: used - before[1].get(part, 0.0)
            for part, used in after[1].items()
            if used - before[1].get(part, 0.0) > 0
        }

    def worker_memory(self) -> dict[str, tuple[float, float]]:
        """Worker -> (peak RSS of its task processes, their largest growth), MB."""
        found: dict[str, tuple[float, float]] = {}
        for worker, depth, first, peak in self.rss.values():
            if depth < 2:  # the worker and its pool; the task processes run under them
                continue
            old_peak, old_growth = found.get(worker, (0.0, 0.0))
            found[worker] = (max(old_peak, peak / 1024), max(old_growth, (peak - first) / 1024))
        return found


# --- a run ------------------------------------------------------------------------------


def window(dag_id: str, run_id: str, task_id: str) -> tuple[float, float]:
    """When the task's first try started and its last ended (epoch seconds)."""
    [(start, end)] = sql(
        METADATA_DB,
        "SELECT EXTRACT(EPOCH FROM MIN(start_date)), EXTRACT(EPOCH FROM MAX(end_date))"
        " FROM task_instance WHERE dag_id = %s AND run_id = %s AND task_id = %s",
        (dag_id, run_id, task_id),
    )
    return float(start), float(end)


def span(dag_id: str, run_id: str, task_id: str) -> float:
    start, end = window(dag_id, run_id, task_id)
    return end - start


def campaign(shell: dict[str, str], sandbox: Sandbox, pace: str, rows: int) -> dict[str, Any]:
    load_audience(rows)
    sandbox.clear()
    dag_id = f"cascade_bench_campaign_{pace}"
    before = table_sizes()
    started = time.perf_counter()
    with Sampler() as sampler:
        run_id = trigger(shell, dag_id)
        wait(dag_id, run_id)
    wall = time.perf_counter() - started
    after = table_sizes()
    stats = sandbox.stats()
    send_start, send_end = window(dag_id, run_id, "send_partition")
    sending = send_end - send_start
    [(marked, twice, first_mark, last_mark)] = sql(
        AUDIENCE_DB,
        "SELECT COUNT(message_id), COUNT(*) FILTER (WHERE marks > 1),"
        " EXTRACT(EPOCH FROM MIN(marked_at)), EXTRACT(EPOCH FROM MAX(marked_at))"
        " FROM bench_audience",
    )
    [(largest_xcom,)] = sql(
        METADATA_DB,
        "SELECT COALESCE(MAX(octet_length(value::text)), 0) FROM xcom WHERE run_id = %s",
        (run_id,),
    )
    [(largest_state,)] = sql(
        METADATA_DB,
        "SELECT COALESCE(MAX(octet_length(value)), 0) FROM task_state_store WHERE run_id = %s",
        (run_id,),
    )
    return {
        "wall": wall,
        "sending": sending,
        "accepted": stats["accepted"],
        "duplicates": stats["duplicate_tracking_ids"],
        "requests": stats["requests"],
        "rate_limited": stats["rate_limited"],
        "marked": int(marked),
        "twice": int(twice),
        "write_back_rate": int(marked) / max(float(last_mark) - float(first_mark), 1e-9),
        "estimate_seconds": span(dag_id, run_id, "estimate"),
        "look_ups": stats["status_requests"],
        "growth": {name: after.get(name, 0) - before.get(name, 0) for name in after},
        "largest_xcom": int(largest_xcom),
        "largest_state": max(int(largest_state), sampler.largest_state_value),
        "cpu": sampler.cpu_by_part(),
        "cpu_sending": sampler.cpu_between(send_start, send_end),
        "memory": sampler.worker_memory(),
    }


def report(pace: str, rows: int, found: dict[str, Any], ceiling_rate: float) -> list[bool]:
    rate = found["accepted"] / found["sending"]
    request_rate = found["requests"] / found["sending"]
    print(
        f"  {pace}: {rows:,} messages in {found['sending']:.0f} s of sending"
        f" ({found['wall']:.0f} s the whole DAG run, the wait included)"
    )
    verdicts = []
    if pace == "unpaced":
        share = rate / ceiling_rate
        verdicts.append(share >= UNPACED_GOAL)
        print(
            f"    {rate:,.0f} msgs/s = {share:.0%} of the sandbox's ceiling"
            f" (goal >= {UNPACED_GOAL:.0%})"
        )
    else:
        share = request_rate / PACED_BUDGET
        verdicts.append(share >= PACED_GOAL)
        print(
            f"    {request_rate:.1f} requests/s = {share:.0%} of the {PACED_BUDGET:.0f}/s budget"
            f" ({rate:,.0f} msgs/s; goal >= {PACED_GOAL:.0%}), {found['rate_limited']} 429s"
        )
    for label, cpu, seconds in (
        ("during the sending", found["cpu_sending"], found["sending"]),
        ("over the whole run", found["cpu"], found["wall"]),
    ):
        busy = sum(cpu.values()) / seconds / 2
        parts = ", ".join(
            f"{part} {used / seconds:.0%}"
            for part, used in sorted(cpu.items(), key=lambda item: -item[1])
            if used / seconds >= 0.01
        )
        print(f"    CPU {label}: {busy:.0%} of the 2 cores busy; by part (of one core): {parts}")
        if label == "during the sending" and pace == "unpaced" and verdicts[-1] is False:
            bound = (
                "the machine's 2 cores (all but idle)"
                if busy >= 0.9
                else "neither the cores nor the sandbox: latency between the parts"
            )
            print(
                f"    bounded by {bound}; the sandbox itself used"
                f" {cpu.get('sandbox', 0.0) / seconds:.0%} of one core"
            )
    for worker, (peak, growth) in sorted(found["memory"].items()):
        verdicts.append(growth <= RSS_GOAL_MB)
        print(
            f"    {worker}: task processes peaked at {peak:.0f} MB RSS, grew at most"
            f" {growth:.0f} MB (goal <= {RSS_GOAL_MB} MB)"
        )
    grew = sorted(found["growth"].items(), key=lambda item: -item[1])
    print(
        f"    metadata DB grew {sum(found['growth'].values()) / 1e6:.1f} MB: "
        + ", ".join(f"{name} {size / 1e3:,.0f} kB" for name, size in grew[:6] if size > 0)
    )
    largest = max(found["largest_xcom"], found["largest_state"])
    verdicts.append(largest <= VALUE_GOAL)
    print(
        f"    largest XCom value {found['largest_xcom']:,} B, largest state-store value"
        f" {found['largest_state']:,} B (goal <= {VALUE_GOAL:,} B)"
    )
    once = found["marked"] == rows and found["twice"] == 0 and found["duplicates"] == 0
    verdicts.append(once and found["accepted"] == rows)
    print(
        f"    accepted {found['accepted']:,} ({found['duplicates']} twice); written back"
        f" {found['marked']:,} rows ({found['twice']} twice) at"
        f" {found['write_back_rate']:,.0f} rows/s"
    )
    print(
        f"    the delivery estimate: {found['look_ups']:,} look-ups in"
        f" {found['estimate_seconds']:.0f} s"
    )
    return verdicts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    connection = {"conn_type": "cascade", "host": SANDBOX_URL, "password": SANDBOX_KEY}
    env = harness_env(
        os.environ,
        {
            "CASCADE_CLUSTER_DAGS": str(DAGS),
            "CASCADE_SANDBOX_ARGS": "--delivery-seconds 1",
            "CASCADE_SANDBOX_API_KEY": SANDBOX_KEY,
            "AIRFLOW_CONN_CASCADE_UNPACED": json.dumps(
                {**connection, "extra": {"max_requests_per_second": 1_000_000}}
            ),
            "AIRFLOW_CONN_CASCADE_PACED": json.dumps(
                {**connection, "extra": {"max_requests_per_second": PACED_BUDGET}}
            ),
            "AIRFLOW_CONN_CASCADE_BENCH_PG": json.dumps(
                {
                    "conn_type": "postgres",
                    "host": "127.0.0.1",
                    "port": 5432,
                    "login": "postgres",
                    "schema": AUDIENCE_DB,
                }
            ),
        },
    )
    print(
        f"A {args.rows:,}-message mapped campaign on the cluster harness (8 partitions, 4 at"
        f" once on 2 Celery workers, batches of {BATCH_SIZE}, PostgreSQL write-back); {machine()}"
    )
    sql("postgres", f'DROP DATABASE IF EXISTS "{AUDIENCE_DB}"')
    sql("postgres", f'CREATE DATABASE "{AUDIENCE_DB}"')
    try:
        with deployment(env) as shell:
            sandbox = Sandbox.attach(SANDBOX_URL, SANDBOX_KEY)
            ceiling_rate = ceiling(
                sandbox, requests_per_run=2_000, batch=BATCH_SIZE, clients=AT_ONCE
            )
            print(
                f"  the sandbox's ceiling: {ceiling_rate:,.0f} msgs/s ({AT_ONCE} raw clients at"
                f" once, {BATCH_SIZE}-message requests, median of 3 runs)"
            )
            loaded = load_audience(args.rows)
            print(f"  the audience loaded into PostgreSQL in {loaded:.0f} s")
            verdicts = []
            for pace in ("unpaced", "paced"):
                verdicts += report(
                    pace, args.rows, campaign(shell, sandbox, pace, args.rows), ceiling_rate
                )
            print(f"  every goal met: {'yes' if all(verdicts) else 'NO'}")
    finally:
        sql("postgres", f'DROP DATABASE IF EXISTS "{AUDIENCE_DB}" WITH (FORCE)')


if __name__ == "__main__":
    main()
