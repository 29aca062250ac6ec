"""The delivery package's steps: the status row, checkpoints as answers arrive, one budget
per connection, and one clock for the timeout. Over real HTTP on loopback (a scripted
endpoint) where a step talks to the service."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from itertools import pairwise

import pytest

from airflow_provider_cascade.delivery import CascadeWriteBack, budget, checkpoints
from airflow_provider_cascade.delivery.checkpoints import Checkpoint, DeliveryWorkspace
from airflow_provider_cascade.delivery.rows import from_row, to_row
from airflow_provider_cascade.hooks.pacing import Pacer, SharedPacer
from airflow_provider_cascade.sensors.cascade import DEFERRAL_BACKSTOP, CascadeDeliverySensor
from airflow_provider_cascade.triggers.cascade import CascadeDeliveryTrigger
from airflow_provider_cascade.wire import DeliveryStatus
from tests.status_server import reply, status_service

DELIVERED = reply(200, {"deliverystatus": "delivered", "extendedStatuses": {"sms": "delivered"}})


def test_the_status_row_round_trips_and_reads_shorter_rows():
    status = DeliveryStatus("delivered", "viber", None, 0.35, 0.4, "UAH")
    assert from_row(to_row(status)) == status
    assert from_row(["undeliverable", None, 0.1]) == DeliveryStatus("undeliverable", cost=0.1)


def test_a_checkpoint_part_goes_out_by_count_or_by_time():
    now = [0.0]
    parts: list[list] = []
    checkpoint = Checkpoint(parts.append, seconds=5, finals=3, clock=lambda: now[0])
    status = DeliveryStatus("delivered")
    assert checkpoint.add("a", status) == [] and checkpoint.add("b", status) == []
    assert [m for m, _ in checkpoint.add("c", status)] == ["a", "b", "c"]  # by count
    assert checkpoint.add("d", status) == []
    now[0] = 5.0
    assert [m for m, _ in checkpoint.add("e", status)] == ["d", "e"]  # by time
    assert Checkpoint(None).add("f", status) == []  # no workspace: nothing kept


def test_waits_without_a_rate_share_one_pacer_per_connection():
    first = budget.status_pacer("conn_a", 40.0)
    assert budget.status_pacer("conn_a", 40.0) is first
    assert budget.status_pacer("conn_b", 40.0) is not first
    mapped = budget.status_pacer("conn_a", 40.0, sharing=4)
    assert isinstance(mapped, SharedPacer) and mapped.shared is first
    assert mapped.interval == pytest.approx(1 / 10)


def test_a_shared_pacer_holds_both_rates():
    clock = [0.0]
    shared = Pacer(10, clock=lambda: clock[0])
    own = SharedPacer(5, shared, clock=lambda: clock[0])
    other = SharedPacer(5, shared, clock=lambda: clock[0])
    mine, theirs = [], []
    for _ in range(5):
        mine.append(own.reserve())
        theirs.append(other.reserve())

    def spaced(slots: list[float], gap: float) -> bool:
        ordered = sorted(slots)
        return all(b - a >= gap - 1e-9 for a, b in pairwise(ordered))

    assert spaced(mine + theirs, 0.1)  # the shared 10/s, in all
    assert spaced(mine, 0.2) and spaced(theirs, 0.2)  # and each its own 5/s
    assert max(mine + theirs) == pytest.approx(0.9)  # no slot wasted


def run_until_cancelled(
    trigger: CascadeDeliveryTrigger, after: float, until: Callable[[], bool] | None = None
) -> list[dict]:
    """Run a trigger and kill it ``after`` seconds in, or once ``until()`` holds, as a
    SIGKILLed triggerer would (nothing of it runs after that)."""

    async def collect() -> list[dict]:
        events: list[dict] = []

        async def consume() -> None:
            async for event in trigger.run():
                events.append(event.payload)

        task = asyncio.ensure_future(consume())
        give_up = time.monotonic() + after
        while not task.done() and time.monotonic() < give_up:
            if until is not None and until():
                break
            await asyncio.sleep(0.01)
        if not task.done():
            task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return events

    return asyncio.run(collect())


@pytest.fixture
def endpoint(monkeypatch):
    with status_service() as service:
        monkeypatch.setenv(
            "AIRFLOW_CONN_CASCADE_DEFAULT",
            json.dumps(
                {
                    "conn_type": "cascade",
                    "host": service.url,
                    "password": "status-key-7f3a9c",
                    "extra": {"status_requests_per_second": 50},
                }
            ),
        )
        yield service


def _once_quiet(seen: list[str]) -> set[str]:
    """What the service has seen once the look-ups sent before the kill have all arrived
    (the server records one when it handles it, after the client may have gone)."""
    count = -1
    while count != len(seen):
        count = len(seen)
        time.sleep(0.3)
    return set(seen)


def test_a_trigger_killed_mid_round_looks_up_again_at_most_one_checkpoint(
    endpoint, tmp_path, monkeypatch
):
    monkeypatch.setattr(checkpoints, "CHECKPOINT_FINALS", 100)
    ids = [f"m{n}" for n in range(1_000)]
    for message_id in ids:
        endpoint.answers[message_id] = [DELIVERED]
    workspace = DeliveryWorkspace(f"file://{tmp_path}/wait.jsonl")
    workspace.write_watched([message_id, None] for message_id in ids)
    kwargs = {
        "cascade_conn_id": "cascade_default",
        "messages": [],
        "workspace": workspace.base,
        "max_requests_per_second": 400,
        "poll_interval": 0.1,
    }

    def checkpointed() -> set[str]:
        return {message_id for message_id, _ in workspace.read_finals()}

    # Killed once two checkpoints are written and the round is still going.
    mid_round = run_until_cancelled(
        CascadeDeliveryTrigger(**kwargs), after=60, until=lambda: len(checkpointed()) >= 200
    )
    saved, seen_before = checkpointed(), _once_quiet(endpoint.seen)
    assert mid_round == [] and len(endpoint.seen) < 1_000  # killed mid-round
    (event,) = run_until_cancelled(CascadeDeliveryTrigger(**kwargs), after=30)
    assert event["status"] == "success"
    again = {message_id for message_id, count in Counter(endpoint.seen).items() if count > 1}
    # What was checkpointed is never looked up again; what is looked up again was looked up
    # before the kill and not yet checkpointed: found final since the last checkpoint (at
    # most CHECKPOINT_FINALS) or still in flight (at most the window the pace allows). How
    # many of the latter there are depends on the machine's load, so it is not counted.
    assert again.isdisjoint(saved) and again <= seen_before - saved
    assert set(endpoint.seen) == set(ids)


def test_two_waits_on_one_connection_share_its_status_budget(endpoint):
    """The connection's extra says 50/s: two waits at once look up 50/s together."""
    moments: list[float] = []
    for n in range(200):
        endpoint.answers[f"m{n}"] = [DELIVERED]

    async def both() -> list[dict]:
        async def one(ids: range) -> dict:
            trigger = CascadeDeliveryTrigger(
                "cascade_default", messages=[[f"m{n}", None] for n in ids], poll_interval=0.1
            )
            async for event in trigger.run():
                moments.append(time.monotonic())
                return event.payload
            raise AssertionError("no event")

        return list(await asyncio.gather(one(range(100)), one(range(100, 200))))

    started = time.monotonic()
    events = asyncio.run(both())
    assert [event["status"] for event in events] == ["success", "success"]
    assert len(endpoint.seen) == 200
    # 200 look-ups at 50/s in all take about 4 s (each wait alone would be done in 2 s).
    assert max(moments) - started >= 200 / 50 - 0.5


def test_a_429_storm_cannot_push_the_wait_past_its_deadline(endpoint, tmp_path):
    """Every look-up but one answers 429 with no Retry-After (pauses of 1, 2, 4, 8 s):
    the trigger still ends on its deadline, and the sensor writes back what it found."""
    endpoint.answers["m0"] = [DELIVERED]
    for n in range(1, 20):
        endpoint.answers[f"m{n}"] = [reply(429)]
    deadline = time.time() + 2.0
    (event,) = run_until_cancelled(
        CascadeDeliveryTrigger(
            "cascade_default",
            messages=[[f"m{n}", f"t{n}"] for n in range(20)],
            max_requests_per_second=100,
            deadline=deadline,
        ),
        after=30,
    )
    assert event["status"] == "timeout" and time.time() - deadline < 1.0
    assert "1 final, 19 waiting" in event["message"]
    database = tmp_path / "outbox.db"
    with sqlite3.connect(database) as db:
        db.execute("CREATE TABLE outbox (message_id TEXT, status TEXT)")
        db.executemany("INSERT INTO outbox VALUES (?, NULL)", [(f"m{n}",) for n in range(20)])
    os.environ["AIRFLOW_CONN_OUTBOX_DB"] = json.dumps(
        {"conn_type": "sqlite", "host": str(database)}
    )
    try:
        sensor = CascadeDeliverySensor(
            task_id="wait",
            message_ids=[f"m{n}" for n in range(20)],
            write_back=CascadeWriteBack(
                sql="UPDATE outbox SET status = :status WHERE message_id = :message_id",
                conn_id="outbox_db",
            ),
        )
        from airflow.providers.common.compat.sdk import AirflowSensorTimeout

        with pytest.raises(AirflowSensorTimeout, match="19 waiting"):
            sensor.execute_complete({}, event)
    finally:
        del os.environ["AIRFLOW_CONN_OUTBOX_DB"]
    with sqlite3.connect(database) as db:
        rows = dict(db.execute("SELECT message_id, status FROM outbox"))
    assert rows["m0"] == "delivered" and rows["m1"] is None


def test_the_deferral_timeout_is_only_a_backstop_after_the_waits_own_deadline():
    from airflow.providers.common.compat.sdk import TaskDeferred

    sensor = CascadeDeliverySensor(task_id="wait", message_ids=["m1"], deferrable=True, timeout=600)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({"ti": None})
    trigger = deferred.value.trigger
    assert trigger.deadline == pytest.approx(time.time() + 600, abs=5)
    assert deferred.value.timeout.total_seconds() == 600 + DEFERRAL_BACKSTOP.total_seconds()
