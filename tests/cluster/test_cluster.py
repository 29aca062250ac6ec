"""The provider on a real deployment (scripts/cluster.sh): API server, scheduler, DAG
processor, triggerer and two Celery workers as separate processes; the task state store,
XCom and connections over the execution API; retries made by the scheduler."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections import Counter
from datetime import datetime

import pytest

from tests.cluster.conftest import HARNESS, REPO, Cluster

pytestmark = [pytest.mark.integration, pytest.mark.compat("cluster")]

#: Who cluster_missed_deadline pages.
ONCALL = "+380501110002"
#: The sandbox's limit (CASCADE_SANDBOX_ARGS): the account's budget, 40 requests a second.
RATE_LIMIT = 40


def _outbox(cluster: Cluster, table: str, rows: int) -> None:
    cluster.sql(f"DROP TABLE IF EXISTS {table}")
    cluster.sql(
        f"CREATE TABLE {table} (id BIGINT PRIMARY KEY, to_phone TEXT NOT NULL, text TEXT,"
        " message_id TEXT, sent_at TEXT)"
    )
    cluster.sql(
        f"INSERT INTO {table} (id, to_phone, text) SELECT n, '+38067' || lpad(n::text, 7, '0'),"
        " 'Winter sale, customer ' || n FROM generate_series(1, %s) AS n",
        (rows,),
    )


def _fresh_sandbox(cluster: Cluster, **faults: object) -> None:
    cluster.sandbox.clear()
    cluster.sandbox.set_faults(
        **{"error_rate": 0.0, "latency_ms": 0, "script": [], "rate_limit": RATE_LIMIT, **faults}
    )


def _written_back(cluster: Cluster, table: str) -> tuple[int, int]:
    [(marked, rows)] = cluster.sql(f"SELECT COUNT(message_id), COUNT(*) FROM {table}")
    return int(marked), int(rows)


def test_a_mapped_campaign_runs_on_both_workers_at_the_accounts_budget(cluster):
    _outbox(cluster, "cluster_audience", 60_000)
    _fresh_sandbox(cluster)
    run_id = cluster.trigger("cluster_mapped_campaign")
    assert cluster.wait("cluster_mapped_campaign", run_id) == "success"

    sends = [
        t
        for t in cluster.task_instances("cluster_mapped_campaign", run_id)
        if t["task_id"] == "send_partition"
    ]
    assert [t["state"] for t in sends] == ["success"] * 6
    assert {t["hostname"] for t in sends} == {"worker-1", "worker-2"}
    stats = cluster.sandbox.stats()
    assert stats["rate_limited"] == 0, stats
    assert stats["accepted"] == 60_000 and stats["duplicate_tracking_ids"] == 0
    messages = cluster.sandbox.messages()
    assert len(Counter(m["tracking_id"] for m in messages)) == 60_000
    assert _written_back(cluster, "cluster_audience") == (60_000, 60_000)
    # The budget was used, not wasted: each partition sent at its share of the budget (3
    # at once: a third each), from its first request to its last. The campaign's overall
    # rate also counts the scheduler's gaps between one partition and the next (a few
    # seconds each on a loaded 2-core machine, none of the provider's doing): printed only.
    accepted = sorted(_moment(m["accepted_at"]) for m in messages)
    requests = stats["requests"]
    rate = (requests - 1) / (accepted[-1] - accepted[0])
    print(f"mapped campaign: {requests} requests at {rate:.1f}/s of {RATE_LIMIT}/s")
    share = RATE_LIMIT / 3
    by_partition: dict[int, list[float]] = {}
    for m in messages:
        by_partition.setdefault((int(m["tracking_id"]) - 1) // 10_000, []).append(
            _moment(m["accepted_at"])
        )
    for partition, moments in sorted(by_partition.items()):
        partition_requests = len(moments) // 50  # batch_size=50
        partition_rate = (partition_requests - 1) / (max(moments) - min(moments))
        print(f"partition {partition}: {partition_rate:.1f}/s of its {share:.1f}/s share")
        assert partition_rate >= 0.8 * share, (partition, partition_rate)


def test_a_batch_failing_until_the_hook_gives_up_is_retried_by_the_scheduler(cluster):
    _outbox(cluster, "cluster_outbox", 1_000)
    # Batch 3 is answered 500 on its try and the hook's one retry: the task fails after
    # batches 1-2; the scheduler's retry (on whichever worker) sends the rest.
    _fresh_sandbox(cluster, script=[None, None, "500", "500"])
    run_id = cluster.trigger("cluster_retried_by_scheduler")
    assert cluster.wait("cluster_retried_by_scheduler", run_id) == "success"
    tries = cluster.tries("cluster_retried_by_scheduler", run_id, "send")
    assert [t["state"] for t in tries] == ["failed", "success"] or [t["try_number"] for t in tries][
        -1
    ] == 2, tries
    counts = Counter(m["tracking_id"] for m in cluster.sandbox.messages())
    assert len(counts) == 1_000 and max(counts.values()) == 1
    assert _written_back(cluster, "cluster_outbox") == (1_000, 1_000)


def test_the_deferrable_sensor_completes_in_the_real_triggerer(cluster, deferred_delivery):
    run_id = deferred_delivery.run_id
    report = cluster.xcom("cluster_deferred_delivery", run_id, "wait_for_delivery")
    assert report["total"] == 20 and sum(report["by_status"].values()) == 20
    # It waited in the triggerer process, not on a worker slot: the triggerer wrote the
    # trigger's own log beside the task's.
    task_logs = (
        HARNESS.parent.parent
        / ".cluster"
        / "home"
        / "logs"
        / "dag_id=cluster_deferred_delivery"
        / f"run_id={run_id}"
        / "task_id=wait_for_delivery"
    )
    [trigger_log] = task_logs.glob("attempt=1.log.trigger.*.log")
    text = trigger_log.read_text()
    assert "Trigger fired event" in text and "trigger completed" in text


def test_four_waits_on_one_connection_share_its_status_budget(cluster):
    """The triggerer runs the four waits at once; with no rate of their own they share the
    connection's 40 look-ups/s: no 429 from a service allowing 50/s, and 40/s together."""
    _fresh_sandbox(cluster, status_rate_limit=50)
    try:
        run_id = cluster.trigger("cluster_four_waits")
        assert cluster.wait("cluster_four_waits", run_id, timeout=300) == "success"
        stats = cluster.sandbox.stats()
    finally:
        cluster.sandbox.set_faults(status_rate_limit=None)
    for number in range(4):
        assert cluster.xcom("cluster_four_waits", run_id, f"wait_{number}")["total"] == 200
    assert stats["status_rate_limited"] == 0
    span = stats["last_status_request_at"] - stats["first_status_request_at"]
    pace = (stats["status_requests"] - 1) / span
    print(f"four waits: {stats['status_requests']} look-ups at {pace:.1f}/s together, 0 429s")
    assert stats["status_requests"] >= 800 and 0.9 * 40 <= pace <= 40 * 1.05, (pace, stats)


def test_a_missed_deadline_pages_through_the_async_notifier_in_the_triggerer(cluster):
    _fresh_sandbox(cluster)
    run_id = cluster.trigger("cluster_missed_deadline")
    assert cluster.wait("cluster_missed_deadline", run_id) == "success"
    pages: list[dict] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pages = [m for m in cluster.sandbox.messages() if m["to_phone"] == ONCALL]
        if pages:
            break
        time.sleep(1)
    [page] = pages
    assert page["text"] == "cluster_missed_deadline: delivery not done in time"
    assert page["tracking_id"].startswith(f"cluster_missed_deadline.{run_id.replace('+', '-')}")
    [(state,)] = cluster.sql(
        "SELECT c.state FROM callback c JOIN deadline d ON d.callback_id = c.id"
        " JOIN dag_run r ON r.id = d.dagrun_id WHERE r.run_id = %s",
        (run_id,),
    )
    assert state == "success"
    # The campaign itself went out from the worker.
    assert len([m for m in cluster.sandbox.messages() if m["to_phone"] != ONCALL]) == 20
    # No log of the deployment shows the on-call number (the triggerer's included).
    logs = [*(REPO / ".cluster" / "logs").glob("*.log"), *(REPO / ".cluster/home/logs").rglob("*")]
    for path in logs:
        if path.is_file():
            assert ONCALL[1:] not in path.read_text(errors="replace"), path


def test_the_notifier_pages_on_a_task_that_fails(cluster):
    _fresh_sandbox(cluster)
    run_id = cluster.trigger("cluster_paged_failure")
    assert cluster.wait("cluster_paged_failure", run_id) == "failed"
    deadline = time.monotonic() + 60
    while not cluster.sandbox.messages() and time.monotonic() < deadline:
        time.sleep(1)
    [page] = cluster.sandbox.messages()
    assert page["text"] == "Airflow: cluster_paged_failure.check_stock failed (try 1)."
    assert page["to_phone"] == "+380501110001"


@pytest.mark.parametrize(
    ("dag_id", "on_uncertain"),
    [
        ("cluster_killed_skip", "skip"),
        ("cluster_killed_resend", "resend"),
        ("cluster_killed_decorated", "skip"),  # @task.cascade, its generator called again
    ],
)
def test_a_worker_killed_mid_send_is_finished_by_the_other(cluster, dag_id, on_uncertain):
    _outbox(cluster, "cluster_outbox", 3_000)
    # Slow answers keep the send going while the worker is killed.
    _fresh_sandbox(cluster, latency_ms=700)
    run_id = cluster.trigger(dag_id)
    victim = _worker_running(cluster, dag_id, run_id)
    workers = cluster.workers()
    # Kill it once some batches were accepted and one is in flight (received by the
    # sandbox, not yet answered): its fate is then unknown to the task.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        stats = cluster.sandbox.stats()
        if stats["accepted"] >= 300 and stats["requests"] * 100 > stats["accepted"]:
            break
        time.sleep(0.05)
    # As when its machine dies: the worker and every process under it (each task runs in a
    # process group of its own, so killing the worker's group alone would leave it running).
    for pid in _process_tree(workers[victim]):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    try:
        assert cluster.wait(dag_id, run_id, timeout=300) == "success"
        tries = cluster.tries(dag_id, run_id, "send")
        assert [t["hostname"] for t in tries][:1] == [victim]
        assert tries[-1]["hostname"] != victim and tries[-1]["state"] == "success"
        result = cluster.xcom(dag_id, run_id, "send")
        counts = Counter(m["tracking_id"] for m in cluster.sandbox.messages())
        if on_uncertain == "skip":
            # Nothing twice, and nothing lost silently: every row was sent once or is
            # reported in doubt (what was in flight when the worker died; the sandbox may
            # have taken it). Once in four CI runs the kill landed where the retry found no
            # batch in flight (the sandbox had counted a request it never accepted, yet the
            # retry's ledger held no in-flight record for it); these held then too.
            assert max(counts.values()) == 1
            assert cluster.sandbox.stats()["duplicate_tracking_ids"] == 0
            assert set(result["in_doubt"]) | set(counts) == {str(n) for n in range(1, 3_001)}
            # Every accepted row is written back (the in-doubt ones are not: unknown ids).
            marked, _ = _written_back(cluster, "cluster_outbox")
            assert marked == len(counts) - len(set(result["in_doubt"]) & set(counts))
        else:
            # Nothing lost: every row accepted (a batch in doubt possibly twice).
            assert set(counts) == {str(n) for n in range(1, 3_001)}
            assert _written_back(cluster, "cluster_outbox") == (3_000, 3_000)
    finally:
        subprocess.run(
            ["bash", str(HARNESS), "restart-workers"], env=cluster.env, check=True, timeout=180
        )


def _worker_running(cluster: Cluster, dag_id: str, run_id: str) -> str:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for ti in cluster.task_instances(dag_id, run_id):
            if ti["task_id"] == "send" and ti["state"] == "running" and ti["hostname"]:
                return str(ti["hostname"])
        time.sleep(0.2)
    raise AssertionError(f"{dag_id}: the send never ran")


def _process_tree(root: int) -> list[int]:
    """``root`` and every process descended from it, parents first."""
    table = subprocess.run(
        ["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True, check=True
    ).stdout
    children: dict[int, list[int]] = {}
    for line in table.splitlines():
        pid, ppid = map(int, line.split())
        children.setdefault(ppid, []).append(pid)
    tree, queue = [], [root]
    while queue:
        pid = queue.pop(0)
        tree.append(pid)
        queue.extend(children.get(pid, []))
    return tree


def _moment(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()
