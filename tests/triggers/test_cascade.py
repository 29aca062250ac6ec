from __future__ import annotations

import asyncio
import json
import time

import pytest

from airflow_provider_cascade.delivery import DeliveryTracker
from airflow_provider_cascade.delivery.checkpoints import DeliveryWorkspace, fits_inline
from airflow_provider_cascade.delivery.report import report
from airflow_provider_cascade.exceptions import CascadeAuthError, CascadeError
from airflow_provider_cascade.hooks.cascade import CascadeHook
from airflow_provider_cascade.send.campaign import send_messages
from airflow_provider_cascade.sensors.cascade import CascadeDeliverySensor
from airflow_provider_cascade.triggers.cascade import AUTH_REFUSED, CascadeDeliveryTrigger
from tests.conftest import make_message
from tests.status_server import reply, status_service


def test_serialize_round_trip_holds_only_json():
    trigger = CascadeDeliveryTrigger(
        cascade_conn_id="cascade_default",
        messages=[["m1", "order-1"], ["m2", None]],
        poll_interval=5,
        max_requests_per_second=20,
        deadline=1234.5,
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_cascade.triggers.cascade.CascadeDeliveryTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs
    again = CascadeDeliveryTrigger(**kwargs)
    assert again.serialize() == (classpath, kwargs)


# --- run(): the trigger polls through CascadeAsyncHook ------------------------------------


def run_trigger(trigger: CascadeDeliveryTrigger) -> list[dict]:
    async def collect() -> list[dict]:
        return [event.payload async for event in trigger.run()]

    return asyncio.run(collect())


@pytest.fixture
def service(monkeypatch):
    """The connection points at a scripted status endpoint on loopback."""
    with status_service() as endpoint:
        monkeypatch.setenv(
            "AIRFLOW_CONN_CASCADE_DEFAULT",
            json.dumps({"conn_type": "cascade", "host": endpoint.url, "password": "key-123456"}),
        )
        yield endpoint.answers, endpoint.seen
        assert set(endpoint.keys) <= {"key-123456"}


def delivered(channel: str = "viber"):
    return reply(200, {"deliverystatus": "delivered", "extendedStatuses": {channel: "delivered"}})


def trigger(*message_ids: str, deadline: float | None = None) -> CascadeDeliveryTrigger:
    return CascadeDeliveryTrigger(
        cascade_conn_id="cascade_default",
        messages=[[message_id, f"t-{message_id}"] for message_id in message_ids],
        poll_interval=0.01,
        max_requests_per_second=1000,
        deadline=deadline,
    )


def test_malformed_and_failed_look_ups_are_counted_and_retried_not_fatal(service, logs):
    answers, seen = service
    answers["m1"] = [reply(200, text="<html>oops</html>"), delivered("sms")]
    answers["m2"] = [reply(200, ["not", "an", "object"]), delivered()]
    answers["m3"] = [reply(503), reply(429), delivered("rcs")]
    answers["m4"] = [reply(404), delivered()]  # not known yet: asked again
    (event,) = run_trigger(trigger("m1", "m2", "m3", "m4"))
    assert event["status"] == "success"
    statuses = {row[0]: (row[2], row[3]) for row in event["tracker"]["messages"]}
    assert statuses == {
        "m1": ("delivered", "sms"),
        "m2": ("delivered", "viber"),
        "m3": ("delivered", "rcs"),
        "m4": ("delivered", "viber"),
    }
    assert seen.count("m3") == 3 and seen.count("m1") == 2
    assert "3 look-up(s) failed" in logs()


def test_only_a_401_is_reported_as_refused_credentials(service):
    answers, _ = service
    answers["m1"] = [reply(401)]
    (event,) = run_trigger(trigger("m1"))
    assert event["status"] == "error" and event["kind"] == AUTH_REFUSED
    assert "refused the credentials" in event["message"]


def test_the_deadline_ends_polling_with_a_timeout_event(service):
    answers, _ = service
    answers["m1"] = [reply(200, {"deliverystatus": "processing"})]
    (event,) = run_trigger(trigger("m1", deadline=time.time()))
    assert event["status"] == "timeout" and "0 final, 1 waiting" in event["message"]


def test_the_sensor_tells_refused_credentials_from_other_errors():
    sensor = CascadeDeliverySensor(task_id="wait", message_ids=["m1"])
    with pytest.raises(CascadeAuthError):
        sensor.execute_complete({}, {"status": "error", "kind": AUTH_REFUSED, "message": "401"})
    with pytest.raises(CascadeError) as caught:
        sensor.execute_complete({}, {"status": "error", "kind": "error", "message": "no key"})
    assert not isinstance(caught.value, CascadeAuthError)


@pytest.mark.integration
def test_run_against_the_sandbox_reaches_final_statuses(sandbox):
    hook = CascadeHook(max_requests_per_second=1000)
    sent = send_messages([make_message(n) for n in (1, 2, 10)], sender=hook)
    (event,) = run_trigger(
        CascadeDeliveryTrigger(
            cascade_conn_id="cascade_default",
            messages=[[s.message_id, s.tracking_id] for s in sent],
            poll_interval=0.2,
            deadline=time.time() + 30,
        )
    )
    assert event["status"] == "success"
    final = {row[1]: (row[2], row[3]) for row in event["tracker"]["messages"]}
    assert final == {
        "order-1": ("delivered", "telegram"),
        "order-2": ("delivered", "viber"),
        "order-10": ("undeliverable", None),
    }


def test_a_429_pauses_every_look_up_and_the_message_is_asked_again(service, logs):
    answers, seen = service
    for n in range(6):
        answers[f"m{n}"] = [delivered()]
    answers["m2"] = [reply(429, headers={"Retry-After": "0.3"}), delivered()]
    started = time.monotonic()
    (event,) = run_trigger(trigger(*(f"m{n}" for n in range(6))))
    assert event["status"] == "success"
    assert seen.count("m2") == 2 and time.monotonic() - started >= 0.3
    assert "pausing them all for 0.3 s" in logs()


def test_a_recreated_trigger_never_polls_a_final_message_again(service, tmp_path):
    answers, seen = service
    answers["m1"] = [delivered()]
    answers["m2"] = [reply(200, {"deliverystatus": "processing"}), delivered()]
    workspace = f"file://{tmp_path}/run/result.jsonl"
    first = CascadeDeliveryTrigger(
        cascade_conn_id="cascade_default",
        messages=[["m1", "a"], ["m2", "b"]],
        poll_interval=0.01,
        max_requests_per_second=1000,
        deadline=time.time(),  # one round, then the trigger is gone (a triggerer restart)
        workspace=workspace,
    )
    (event,) = run_trigger(first)
    assert event == {"status": "timeout", "message": event["message"], "workspace": workspace}
    _, kwargs = first.serialize()
    again = CascadeDeliveryTrigger(**{**kwargs, "deadline": None})
    (event,) = run_trigger(again)
    assert event == {"status": "success", "workspace": workspace}
    assert seen.count("m1") == 1 and seen.count("m2") == 2


def test_kwargs_and_events_stay_small_whatever_the_number_of_messages(tmp_path):
    with pytest.raises(ValueError, match="too many for a trigger's kwargs"):
        trigger(*(f"{n:036d}" for n in range(1_000)))
    workspace = DeliveryWorkspace(f"file://{tmp_path}/big.jsonl")
    workspace.write_watched([f"{n:036d}", f"t-{n:0200d}"] for n in range(100_000))
    big = CascadeDeliveryTrigger("cascade_default", messages=[], workspace=workspace.base)
    assert len(json.dumps(big.serialize()[1])) < 1_000
    assert len(workspace.read_watched()) == 100_000


def _in_two_hours() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 7_200))


def test_a_scheduled_message_is_not_polled_before_it_is_due(service):
    answers, seen = service
    answers["m1"] = [delivered()]
    later = CascadeDeliveryTrigger(
        cascade_conn_id="cascade_default",
        messages=[["m1", "a"], ["m2", "promo-1", _in_two_hours()]],
        poll_interval=0.01,
        max_requests_per_second=1000,
        deadline=time.time() + 0.5,
    )
    started = time.monotonic()
    (event,) = run_trigger(later)
    assert event["status"] == "timeout" and "still waiting: promo-1" in event["message"]
    assert seen == ["m1"]  # the scheduled one was never asked about
    assert time.monotonic() - started < 2  # slept until the deadline, not two hours


def test_without_waiting_a_scheduled_message_is_settled_for_now(service):
    answers, seen = service
    answers["m1"] = [delivered()]
    (event,) = run_trigger(
        CascadeDeliveryTrigger(
            cascade_conn_id="cascade_default",
            messages=[["m1", "a"], ["m2", "promo-1", _in_two_hours()]],
            poll_interval=0.01,
            max_requests_per_second=1000,
            wait_for_scheduled=False,
        )
    )
    assert event["status"] == "success" and seen == ["m1"]
    tracker = DeliveryTracker.from_json(event["tracker"], wait_for_scheduled=False)
    assert report(tracker, 10, None)["by_status"] == {"delivered": 1, "scheduled": 1}


def test_the_largest_inline_wait_still_gives_an_event_under_64_kb(service):
    answers, _ = service
    pairs = []
    while fits_inline([*pairs, [f"{len(pairs):036d}", "t"]]):
        pairs.append([f"{len(pairs):036d}", "t"])
    for message_id, _ in pairs:
        answers[message_id] = [
            reply(
                200,
                {
                    "deliverystatus": "undeliverable",
                    "extendedStatuses": {"viber_business": "delivered"},
                    "cost": 123.456789,
                    "billAmount": 123.456789,
                    "billCurrency": "UAH",
                },
            )
        ]
    (event,) = run_trigger(
        CascadeDeliveryTrigger("cascade_default", messages=pairs, max_requests_per_second=10_000)
    )
    assert event["status"] == "success" and len(json.dumps(event)) < 64_000
