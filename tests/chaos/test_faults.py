"""The fault matrix: one component of the real deployment (scripts/cluster.sh) failed once
during a 100,000-message mapped campaign (tests/chaos/dags), in each ``on_uncertain`` mode.

Each test asserts, from the sandbox's record of what it accepted and from the outbox:
``skip``: every id accepted at most once, and each one either accepted or listed in doubt;
``resend``: every id accepted at least once; both: every accepted row (not in doubt)
written back, the DAG run's final state, and what the task logs say about the fault.

``make chaos`` runs both modes of every fault and writes the table to
benchmarks/RESULTS.md; CI runs one mode of each (``CASCADE_CHAOS_MODES=both`` for both).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.cluster.conftest import HARNESS, REPO, Cluster
from tests.cluster.test_cluster import _outbox

pytestmark = [pytest.mark.integration, pytest.mark.compat("cluster")]

ROWS = 100_000
RATE_LIMIT = 40
#: Where each test adds its row of the matrix (benchmarks/chaos.py renders them).
REPORT = Path(os.environ.get("CASCADE_CHAOS_REPORT", REPO / ".cluster" / "chaos.jsonl"))


@dataclass
class Fault:
    name: str
    #: What is done to the deployment, in words (the table's first column).
    what: str
    #: When to strike: a predicate on the sandbox's stats.
    when: Callable[[Cluster, dict[str, Any]], bool]
    #: Strike, and recover (returns when the component is back).
    strike: Callable[[Cluster], None]
    #: The mode CI runs (``make chaos`` runs both).
    ci_mode: str
    #: What the task logs must say, by mode (a pattern).
    says: dict[str, str] = field(default_factory=dict)
    #: How a try the fault failed says why (a pattern); None: no try fails. Whether one
    #: fails at all depends on the moment (a progress write that falls in the outage).
    fails_with: str | None = None


def _harness(cluster: Cluster, *args: str) -> None:
    subprocess.run(["bash", str(HARNESS), *args], env=cluster.env, check=True, timeout=120)


def _down_for(component: str, seconds: float) -> Callable[[Cluster], None]:
    def strike(cluster: Cluster) -> None:
        _harness(cluster, "kill", component)
        time.sleep(seconds)
        _harness(cluster, "start", component)

    return strike


class Supervisor:
    """What runs a real deployment's components (systemd's ``Restart=``, Kubernetes):
    every 2 s, any Airflow component that exited is started again
    (``scripts/cluster.sh revive``); ``revived`` names each one it started."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.revived: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Supervisor:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(2):
            done = subprocess.run(
                ["bash", str(HARNESS), "revive"],
                env=self.cluster.env,
                capture_output=True,
                text=True,
                timeout=300,
            )
            self.revived += done.stdout.split()


def _hang(cluster: Cluster) -> None:
    # The next 8 requests are accepted and answered 10 s later, past the send's 5 s read
    # timeout (the service hanging, then answering): their batches are in doubt.
    cluster.sandbox.set_faults(script=["slow"] * 8, slow_seconds=10)


def _sending(share: float) -> Callable[[Cluster, dict[str, Any]], bool]:
    return lambda cluster, stats: stats["accepted"] >= share * ROWS


def _queued_in_the_broker(cluster: Cluster, stats: dict[str, Any]) -> bool:
    """Tasks the scheduler queued that no worker has taken yet (Celery's queue: a Redis
    list named after Airflow's default queue)."""
    broker = urlsplit(cluster.env["AIRFLOW__CELERY__BROKER_URL"])
    waiting = subprocess.run(
        ["redis-cli", "-h", str(broker.hostname), "-p", str(broker.port), "llen", "default"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return waiting.isdigit() and int(waiting) > 0


NOT_RECORDED = (
    r"could not record the send's progress in the task state store, so no further batch was"
    r" sent: \d+ message\(s\) accepted and recorded"
)
#: A try an unreachable API server failed: the send stopped before an unrecorded batch,
#: or the task runner's own call (XCom, heartbeat) was refused.
STOPPED_OR_UNREACHABLE = NOT_RECORDED + r"|API_SERVER_ERROR|ServerResponseError|Connection refused"

FAULTS = [
    Fault(
        "api-server",
        "the API server (execution API: state store, XCom, heartbeats) killed, started 10 s later",
        _sending(0.2),
        _down_for("api-server", 10),
        ci_mode="skip",
        fails_with=STOPPED_OR_UNREACHABLE,
    ),
    Fault(
        "metadata-db",
        "the metadata database unreachable for 10 s (its proxy killed: connections reset,"
        " new ones refused)",
        _sending(0.2),
        _down_for("db-proxy", 10),
        ci_mode="resend",
        fails_with=STOPPED_OR_UNREACHABLE,
    ),
    Fault(
        "scheduler",
        "the scheduler SIGKILLed mid-campaign, started 5 s later",
        _sending(0.2),
        _down_for("scheduler", 5),
        ci_mode="skip",
    ),
    Fault(
        "triggerer",
        "the triggerer SIGKILLed during the deferrable waits, started 3 s later",
        lambda cluster, stats: stats["status_requests"] >= 200,
        _down_for("triggerer", 3),
        ci_mode="resend",
    ),
    Fault(
        "broker",
        "the Redis broker killed with tasks queued in it, started 5 s later (what it held is lost)",
        _queued_in_the_broker,
        _down_for("redis", 5),
        ci_mode="skip",
    ),
    Fault(
        "service-hang",
        "the service hanging 10 s on 8 requests (past the 5 s read timeout), then answering",
        _sending(0.2),
        _hang,
        ci_mode="resend",
        says={
            "skip": r"Not re-sending \d+ message\(s\) in doubt \(on_uncertain='skip'\)",
            "resend": r"was sent again after an uncertain failure: the service may deliver",
        },
    ),
]


def _cases() -> list[Any]:
    both = os.environ.get("CASCADE_CHAOS_MODES", "ci") == "both"
    return [
        pytest.param(fault, mode, id=f"{fault.name}-{mode}")
        for fault in FAULTS
        for mode in ("skip", "resend")
        if both or mode == fault.ci_mode
    ]


@pytest.mark.timeout(1200)
@pytest.mark.parametrize(("fault", "mode"), _cases())
def test_a_fault_mid_campaign(chaos_cluster: Cluster, fault: Fault, mode: str) -> None:
    cluster = chaos_cluster
    _outbox(cluster, "chaos_outbox", ROWS)
    cluster.sandbox.clear()
    cluster.sandbox.set_faults(
        error_rate=0.0, latency_ms=0, script=[], rate_limit=RATE_LIMIT, slow_seconds=5.0
    )
    dag_id = f"chaos_{mode}"
    started = time.monotonic()
    run_id = cluster.trigger(dag_id)

    deadline = time.monotonic() + 300
    while not fault.when(cluster, stats := cluster.sandbox.stats()):
        assert time.monotonic() < deadline, f"{fault.name}: the moment never came: {stats}"
        assert cluster.run_state(dag_id, run_id) not in ("success", "failed")
        time.sleep(0.2)
    struck_at = time.monotonic() - started
    fault.strike(cluster)
    with Supervisor(cluster) as supervisor:
        state = cluster.wait(dag_id, run_id, timeout=900)
    took = time.monotonic() - started

    messages = cluster.sandbox.messages()
    counts = Counter(m["tracking_id"] for m in messages)
    everyone = {str(n) for n in range(1, ROWS + 1)}
    in_doubt = _in_doubt(cluster, dag_id, run_id)
    [(marked,)] = cluster.sql("SELECT COUNT(message_id) FROM chaos_outbox")
    tries = [t for t in cluster.task_instances(dag_id, run_id) if t["task_id"] == "send_partition"]
    retried = sum(1 for t in tries if t["try_number"] > 1)
    sentences = _what_the_logs_say(run_id)
    row = {
        "fault": fault.name,
        "what": fault.what,
        "mode": mode,
        "state": state,
        "struck_after_s": round(struck_at, 1),
        "took_s": round(took, 1),
        "accepted": len(counts),
        "twice": sum(1 for c in counts.values() if c > 1),
        "in_doubt": len(in_doubt),
        "lost": len(everyone - set(counts) - in_doubt),
        "written_back": int(marked),
        "partitions_retried": retried,
        "look_ups": cluster.sandbox.stats()["status_requests"],
        # messages whose status was looked up more than once
        "asked_twice": sum(1 for m in messages if m["status_requests"] > 1),
        # tasks the broker lost, queued again by the scheduler (task_queued_timeout)
        "requeued": _requeued(run_id),
        # the components that exited after the fault, started again by their supervisor
        "revived": supervisor.revived,
        "logs": sentences,
    }
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    with REPORT.open("a") as report:
        report.write(json.dumps(row) + "\n")
    print(json.dumps(row, indent=1))

    assert state == "success", row
    if mode == "skip":
        assert max(counts.values()) == 1, row
        assert cluster.sandbox.stats()["duplicate_tracking_ids"] == 0, row
        assert set(counts) | in_doubt == everyone, row
        assert marked == len(set(counts) - in_doubt), row
    else:
        assert set(counts) == everyone, row
        assert marked == ROWS, row
    if fault.name == "broker":
        # what the broker held was lost, and the scheduler queued it again
        assert row["requeued"] >= 1, row
    if mode in fault.says:
        assert any(re.search(fault.says[mode], said) for said in sentences), row
    failed = [said for said in sentences if said.startswith("Task failed")]
    if fault.fails_with is None:
        assert not failed, row
    else:
        # a try that failed said why in the user's words: the send stopped, and where
        assert all(re.search(fault.fails_with, said) for said in failed), row
    if fault.name == "triggerer":
        # The waits resumed from their checkpoints (in the sends' results paths): finals
        # are not looked up again beyond one checkpoint's worth (a checkpoint every 5 s: at
        # most 5 s of the connection's 40 look-ups/s asked again).
        assert row["asked_twice"] <= 5 * RATE_LIMIT + 20, row


def _in_doubt(cluster: Cluster, dag_id: str, run_id: str) -> set[str]:
    rows = cluster.sql(
        "SELECT value FROM xcom WHERE dag_id = %s AND run_id = %s"
        " AND task_id = 'send_partition' AND key = 'return_value'",
        (dag_id, run_id),
    )
    ids: set[str] = set()
    for (value,) in rows:
        result = json.loads(value) if isinstance(value, str) else value
        ids.update(result["in_doubt"])
    return ids


def _requeued(run_id: str) -> int:
    """Task instances the scheduler found stuck in queued (lost by the broker) and queued
    again, by its logs."""
    return sum(
        line.count("Task stuck in queued; will try to requeue") * (run_id in line)
        for path in (REPO / ".cluster" / "logs").glob("scheduler*.log")
        for line in path.read_text(errors="replace").splitlines()
    )


def _what_the_logs_say(run_id: str) -> list[str]:
    """The run's task logs as a user reads them: the warnings and errors of the provider
    and the task runner (what failed a try, with its exception), each once, cut at 240
    characters; Python's own warnings (library deprecations) left out."""
    seen: list[str] = []
    logs = REPO / ".cluster" / "home" / "logs"
    for path in sorted(logs.rglob("*.log")):
        if f"run_id={run_id}" not in str(path):
            continue
        for line in path.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if (
                event.get("level") not in ("warning", "error")
                or event.get("logger") == "py.warnings"
            ):
                continue
            sentence = str(event.get("event"))
            for detail in event.get("error_detail") or []:
                sentence += f" {detail.get('exc_type')}: {detail.get('exc_value')}"
            sentence = re.sub(r"\b(ID|id) [A-Za-z0-9]{8}\b", r"\1 ...", sentence)[:240]
            if sentence not in seen:
                seen.append(sentence)
    return seen
