from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest

from airflow_provider_cascade.messages import CascadeMessage, MessageType
from airflow_provider_cascade.notifications.cascade import (
    CascadeNotifier,
    _cause,
    _tracking_id,
    send_cascade_notification,
)

pytestmark = pytest.mark.compat("notifier")


def test_tracking_ids_trace_the_cause_without_the_phone():
    ti = SimpleNamespace(
        dag_id="etl", task_id="load", run_id="manual__2026-01-01T00:00:00+00:00", try_number=2
    )
    prefix = _cause({"ti": ti, "dag": SimpleNamespace(dag_id="etl"), "run_id": ti.run_id})
    assert prefix == "etl.load.manual__2026-01-01T00:00:00-00:00.try2"
    tracking_id = _tracking_id(prefix, "+380501234567")
    assert "501234567" not in tracking_id
    CascadeMessage(tracking_id, "A", "+380501234567", MessageType.TRANSACTION, text="x")  # valid


def test_very_long_causes_stay_within_255_and_unique():
    first = _tracking_id("d" * 300 + "a", "+380501234567")
    second = _tracking_id("d" * 300 + "b", "+380501234567")
    assert len(first) <= 255 and first != second


def test_function_form_and_templated_fields():
    notifier = send_cascade_notification(
        to_phones="+380501234567", text="{{ dag.dag_id }}", from_name="A"
    )
    assert isinstance(notifier, CascadeNotifier)
    assert set(CascadeNotifier.template_fields) == {"to_phones", "text", "from_name"}


def test_a_notifier_that_has_sent_can_still_be_deep_copied(sandbox):
    """Airflow 3.0's dag.test() deep-copies the DAG, callbacks included: no session or
    lock may stay behind on the notifier after it sent."""
    notifier = CascadeNotifier(to_phones=["+380501234567"], text="failed", from_name="Airflow")
    context = {"ti": SimpleNamespace(dag_id="etl", task_id="load", run_id="r1", try_number=1)}
    notifier.notify(context)
    assert sandbox.stats()["accepted"] == 1
    copy.deepcopy(notifier)


def test_async_notify_sends_on_the_async_hook_without_blocking_the_event_loop(sandbox):
    import asyncio

    sandbox.set_faults(latency_ms=400)  # the service takes its time to answer
    notifier = CascadeNotifier(
        to_phones=["+380501234567", "+380671234567"], text="late", from_name="Airflow"
    )
    context = {"ti": SimpleNamespace(dag_id="etl", task_id="load", run_id="r1", try_number=1)}

    async def send_while_ticking() -> int:
        ticks = 0
        sending = asyncio.ensure_future(notifier.async_notify(context))
        while not sending.done():
            await asyncio.sleep(0.01)
            ticks += 1
        await sending
        return ticks

    ticks = asyncio.run(send_while_ticking())
    assert ticks >= 20  # the loop ran on while the 400 ms request was out
    recorded = sandbox.messages()
    assert sorted(m["to_phone"] for m in recorded) == ["+380501234567", "+380671234567"]
    assert all(m["tracking_id"].startswith("etl.load.r1.try1.") for m in recorded)


def test_async_notify_raises_the_hooks_errors(sandbox):
    import asyncio

    from airflow_provider_cascade.exceptions import CascadeAuthError

    sandbox.set_faults(error_rate=1.0, kinds=["401"])
    notifier = CascadeNotifier(to_phones="+380501234567", text="x", from_name="Airflow")
    with pytest.raises(CascadeAuthError):
        asyncio.run(notifier.async_notify({}))


@pytest.mark.compat("deadline_alert")
def test_airflows_callback_trigger_awaits_it_with_a_deadlines_context(sandbox):
    """As a DeadlineAlert's AsyncCallback: the trigger imports the class, builds it with the
    alert's kwargs and the deadline's context, and awaits it."""
    import asyncio

    from airflow.triggers.callback import CallbackTrigger

    context = {
        "dag_run": {"dag_id": "nightly_promo", "dag_run_id": "scheduled__2026-12-01"},
        "deadline": {"id": "0193-abc", "deadline_time": "2026-12-01T02:00:00+00:00"},
    }
    trigger = CallbackTrigger(
        callback_path="airflow_provider_cascade.notifications.cascade.CascadeNotifier",
        callback_kwargs={
            "to_phones": ["+380501234567"],
            "from_name": "Airflow",
            "text": "{{ dag_run.dag_id }} missed its deadline",
            "context": context,
        },
    )

    async def events() -> list[dict]:
        return [event.payload async for event in trigger.run()]

    *_, last = asyncio.run(events())
    assert last["state"] == "success", last
    (page,) = sandbox.messages()
    assert page["text"] == "nightly_promo missed its deadline"
    assert page["tracking_id"].startswith("nightly_promo.scheduled__2026-12-01.deadline-0193-abc.")


@pytest.mark.compat("deadline_alert")
def test_a_failed_deadline_page_leaves_no_phone_in_what_airflow_logs(sandbox):
    """Airflow's callback trigger logs the callback's kwargs when it fails: the phones in
    them are registered with the secrets masker as the notifier is built."""
    import asyncio

    from airflow.providers.common.compat.sdk import redact
    from airflow.triggers.callback import CallbackTrigger

    sandbox.set_faults(error_rate=1.0, kinds=["401"])
    kwargs = {"to_phones": ["+380507654321"], "from_name": "Airflow", "text": "late"}
    trigger = CallbackTrigger(
        callback_path="airflow_provider_cascade.notifications.cascade.CascadeNotifier",
        callback_kwargs={**kwargs, "context": {"dag_run": {"dag_id": "d"}}},
    )

    async def events() -> list[dict]:
        return [event.payload async for event in trigger.run()]

    *_, last = asyncio.run(events())
    assert last["state"] == "failed"
    assert "+380507654321" not in str(redact(f"kwargs: {trigger.callback_kwargs}"))
    assert "+380507654321" not in last["body"]
