"""CascadeHook against the sandbox over real HTTP on loopback."""

from __future__ import annotations

import json
import time

import pytest

from airflow_provider_cascade.exceptions import (
    CascadeAuthError,
    CascadeBatchInDoubtError,
    CascadeValidationError,
)
from airflow_provider_cascade.hooks.cascade import CascadeHook
from airflow_provider_cascade.sandbox.client import Sandbox
from airflow_provider_cascade.send.campaign import send_messages
from tests.conftest import TEST_API_KEY, make_message

pytestmark = [pytest.mark.integration, pytest.mark.compat("sandbox")]


def fast_hook(**kwargs) -> CascadeHook:
    kwargs.setdefault("retry_wait", 0.05)
    return CascadeHook(**kwargs)


def assert_exactly_once(sandbox: Sandbox, tracking_ids: list[str]) -> None:
    recorded = [m["tracking_id"] for m in sandbox.messages()]
    assert sorted(recorded) == sorted(tracking_ids)
    assert sandbox.stats()["duplicate_tracking_ids"] == 0


@pytest.mark.parametrize(
    ("route", "path_route"), [("standard", "standard"), ("tg_viber", "tg_viber")]
)
def test_send_on_both_routes(sandbox, route, path_route):
    messages = [make_message(n) for n in range(2_500)]
    sent = send_messages(messages, route=route, sender=fast_hook())
    assert [s.tracking_id for s in sent] == [m["tracking_id"] for m in messages]
    record = {m["message_id"]: m for m in sandbox.messages()}
    assert {s.message_id for s in sent} == set(record)
    assert {m["route"] for m in record.values()} == {path_route}
    assert sandbox.stats()["requests"] == 3  # 1,000 + 1,000 + 500


def test_every_message_type_is_accepted(sandbox):
    messages = [
        make_message(1),
        make_message(
            2,
            message_type="promo",
            ttl=259200,
            scheduled_sent=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 7200)),
        ),
        make_message(3, message_type="viber_survey", text="Happy?", survey_options=["Yes", "No"]),
        make_message(4, message_type="flashcall", text=None, ttl=300),
    ]
    assert len(send_messages(messages, sender=fast_hook())) == 4
    assert {m["message_type"] for m in sandbox.messages()} == {
        "transaction",
        "promo",
        "viber_survey",
        "flashcall",
    }


def test_429s_are_waited_out_and_nothing_is_sent_twice(sandbox):
    sandbox.set_faults(rate_limit=5)
    ids = [f"order-{n}" for n in range(30)]
    hook = fast_hook(max_requests_per_second=1_000, retry_wait=0.3)
    sent = send_messages([make_message(n) for n in range(30)], batch_size=1, sender=hook)
    assert len(sent) == 30
    assert sandbox.stats()["rate_limited"] > 0
    assert_exactly_once(sandbox, ids)


def test_pacing_stays_under_the_limit_with_no_429(sandbox):
    sandbox.set_faults(rate_limit=10)
    started = time.monotonic()
    send_messages(
        [make_message(n) for n in range(16)],
        batch_size=1,
        sender=fast_hook(max_requests_per_second=8),
    )
    elapsed = time.monotonic() - started
    assert sandbox.stats()["rate_limited"] == 0
    assert elapsed >= 15 / 8 * 0.95  # 16 requests, 15 intervals of 1/8 s


def test_injected_500s_are_retried(sandbox):
    sandbox.set_faults(script=[None, "500", "500"])
    messages = [make_message(n) for n in range(3)]
    assert len(send_messages(messages, batch_size=1, sender=fast_hook())) == 3
    assert sandbox.stats()["faults_by_kind"] == {"500": 2}
    assert_exactly_once(sandbox, ["order-0", "order-1", "order-2"])


def test_a_reset_connection_is_retried(sandbox):
    sandbox.set_faults(script=["reset"])
    assert len(send_messages([make_message(1)], sender=fast_hook())) == 1
    assert_exactly_once(sandbox, ["order-1"])


def test_a_lost_response_is_in_doubt_without_resend(sandbox):
    sandbox.set_faults(script=[None, "response_lost"])
    with pytest.raises(CascadeBatchInDoubtError) as caught:
        send_messages(
            [make_message(n) for n in range(4)],
            batch_size=2,
            sender=fast_hook(resend_uncertain=False),
        )
    assert caught.value.tracking_ids == ["order-2", "order-3"]
    assert [s.tracking_id for s in caught.value.accepted] == ["order-0", "order-1"]
    # The service did accept the batch in doubt: sending it again would duplicate it.
    assert_exactly_once(sandbox, [f"order-{n}" for n in range(4)])


def test_a_lost_response_resent_duplicates_exactly_that_batch(sandbox):
    sandbox.set_faults(script=["response_lost"])
    assert len(send_messages([make_message(n) for n in range(3)], sender=fast_hook())) == 3
    assert sandbox.stats()["duplicate_tracking_ids"] == 3


def test_wrong_key_is_refused(sandbox, monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_CASCADE_DEFAULT", json.dumps(sandbox.connection() | {"password": "wrong"})
    )
    with pytest.raises(CascadeAuthError):
        send_messages([make_message(1)], sender=fast_hook())
    assert fast_hook().test_connection()[0] is False
    assert sandbox.messages() == []


def test_connection_test_passes_with_the_right_key(sandbox):
    ok, message = CascadeHook().test_connection()
    assert ok, message


def test_invalid_batch_sends_nothing(sandbox):
    with pytest.raises(CascadeValidationError):
        send_messages(
            [make_message(1), make_message(2, message_type="viber_survey")], sender=fast_hook()
        )
    assert sandbox.stats()["requests"] == 0


def test_status_progresses_to_the_phone_s_outcome(sandbox):
    sent = send_messages([make_message(2), make_message(10)], sender=fast_hook())
    hook = CascadeHook()
    assert hook.get_message_status(sent[0].message_id)["deliverystatus"] in (
        "processing",
        "delivered",
    )
    time.sleep(0.7)
    delivered = hook.get_message_status(sent[0].message_id)
    assert delivered["deliverystatus"] == "delivered"
    assert delivered["extendedStatuses"]["viber"] == "delivered"
    assert hook.get_message_status(sent[1].message_id)["deliverystatus"] == "undeliverable"


def test_no_secret_or_phone_reaches_logs_or_errors(sandbox, monkeypatch, logs):
    sandbox.set_faults(script=["500", "429_retry_after"])
    send_messages([make_message(n) for n in range(3)], sender=fast_hook(max_retry_wait=0.1))
    monkeypatch.setenv(
        "AIRFLOW_CONN_CASCADE_DEFAULT",
        json.dumps(sandbox.connection() | {"password": TEST_API_KEY + "x"}),
    )
    with pytest.raises(CascadeAuthError) as auth_error:
        send_messages([make_message(1)], sender=fast_hook())
    with pytest.raises(CascadeValidationError) as validation_error:
        send_messages([make_message(1, to_phone="380501234567")], sender=fast_hook())
    text = logs() + str(auth_error.value) + str(validation_error.value)
    assert "retry 1 of 4" in text  # the retries were logged ...
    assert TEST_API_KEY not in text  # ... without the key
    assert "+380500000001" not in text and "380501234567" not in text


def test_https_to_a_plain_http_server_is_never_sent_and_names_the_fix(sandbox, monkeypatch):
    """A host without a scheme gets https://; against a plain-HTTP server the handshake fails
    before anything is sent: retried as never sent (not "in doubt"), and the error says
    which scheme the server speaks."""
    from airflow_provider_cascade.exceptions import CascadeServerError

    authority = sandbox.url.split("://", 1)[1]
    host, port = authority.split(":")
    monkeypatch.setenv(
        "AIRFLOW_CONN_CASCADE_PLAIN",
        json.dumps(
            {"conn_type": "cascade", "host": host, "port": int(port), "password": TEST_API_KEY}
        ),
    )
    hook = fast_hook(cascade_conn_id="cascade_plain", max_retries=1)
    with pytest.raises(CascadeServerError) as error:
        send_messages([make_message(1)], sender=hook)
    assert not isinstance(error.value, CascadeBatchInDoubtError)
    said = str(error.value)
    assert f"the TLS handshake with https://{authority} failed" in said
    assert f"write the connection's host as http://{authority}" in said
    assert "nothing of the batch was accepted" in said
    assert sandbox.stats()["requests"] == 0


def test_a_refused_connection_is_never_sent_and_names_what_to_check(sandbox, monkeypatch):
    import socket

    from airflow_provider_cascade.exceptions import CascadeServerError

    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    monkeypatch.setenv(
        "AIRFLOW_CONN_CASCADE_NOWHERE",
        json.dumps(
            {"conn_type": "cascade", "host": f"http://127.0.0.1:{port}", "password": TEST_API_KEY}
        ),
    )
    with pytest.raises(CascadeServerError) as error:
        send_messages(
            [make_message(1)], sender=fast_hook(cascade_conn_id="cascade_nowhere", max_retries=1)
        )
    assert not isinstance(error.value, CascadeBatchInDoubtError)
    assert f"could not connect to http://127.0.0.1:{port}" in str(error.value)
    assert "(http:// or https://)" in str(error.value)
