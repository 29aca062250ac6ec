"""Unit tests of every branch of CascadeHook, with requests-mock (the wire is tested in
tests/integration against the sandbox)."""

from __future__ import annotations

import json

import pytest
import requests

from airflow_provider_cascade.exceptions import (
    CascadeAuthError,
    CascadeBatchInDoubtError,
    CascadeError,
    CascadeRateLimitError,
    CascadeServerError,
    CascadeValidationError,
)
from airflow_provider_cascade.hooks.cascade import CascadeHook, Pacer
from airflow_provider_cascade.messages import Route, SentMessage
from airflow_provider_cascade.send.campaign import send_messages
from tests.conftest import TEST_API_KEY, TG_KEY, VIBER_TOKEN, make_message

BASE = "http://cascade.test"
SEND = BASE + Route.STANDARD.path


@pytest.fixture
def conn(monkeypatch):
    def set_conn(**fields):
        value = {"conn_type": "cascade", "host": BASE, "password": TEST_API_KEY} | fields
        monkeypatch.setenv("AIRFLOW_CONN_CASCADE_DEFAULT", json.dumps(value))

    set_conn()
    return set_conn


def hook(**kwargs) -> CascadeHook:
    kwargs.setdefault("retry_wait", 0.001)
    kwargs.setdefault("max_requests_per_second", 10_000)
    return CascadeHook(**kwargs)


def echo(request, context):
    return [{"messageId": f"id-{m['id']}", "trackinId": m["id"]} for m in request.json()]


class TestConnection:
    def test_headers_from_password_and_extras(self, conn):
        conn(extra={"viber_auth_token": VIBER_TOKEN, "tg_bot_key": TG_KEY})
        headers = hook().config.headers
        assert headers["X-Authorization-Key"] == TEST_API_KEY
        assert headers["X-Viber-Auth-Token"] == VIBER_TOKEN
        assert headers["X-Tg-Bot-Key"] == TG_KEY
        assert headers["Content-Type"] == "application/json"

    def test_a_bot_token_alone_is_enough(self, conn):
        conn(password=None, extra={"tg_bot_key": TG_KEY})
        assert "X-Authorization-Key" not in hook().config.headers

    def test_no_credential_is_a_clear_error(self, conn):
        conn(password=None)
        with pytest.raises(CascadeAuthError, match="no credential"):
            _ = hook().config

    @pytest.mark.parametrize(
        ("fields", "url"),
        [
            ({"host": None}, "https://restapi.smsbat.com"),
            ({"host": "http://127.0.0.1:8765/"}, "http://127.0.0.1:8765"),
            ({"host": "api.example.com"}, "https://api.example.com"),
            ({"host": "localhost", "schema": "http", "port": 9000}, "http://localhost:9000"),
        ],
    )
    def test_base_url(self, conn, fields, url):
        conn(**fields)
        assert hook().config.base_url == url

    def test_extras_tune_timeouts_pacing_and_status_path(self, conn):
        conn(
            extra={
                "timeout": "5",
                "connect_timeout": 2,
                "max_requests_per_second": 7,
                "status_path": "/s/{message_id}",
            }
        )
        config = CascadeHook().config
        assert (config.timeout, config.connect_timeout) == (5.0, 2.0)
        assert config.max_requests_per_second == 7.0
        assert config.status_path == "/s/{message_id}"

    def test_a_bad_extra_is_named(self, conn):
        conn(extra={"timeout": "soon"})
        with pytest.raises(CascadeError, match="'timeout' must be a number"):
            _ = hook().config

    def test_credentials_are_registered_for_masking(self, conn):
        from airflow.providers.common.compat.sdk import redact

        conn(extra={"viber_auth_token": VIBER_TOKEN, "tg_bot_key": TG_KEY})
        _ = hook().config
        text = f"key={TEST_API_KEY} viber={VIBER_TOKEN} tg={TG_KEY}"
        redacted = str(redact(text))
        for secret in (TEST_API_KEY, VIBER_TOKEN, TG_KEY):
            assert secret not in redacted


class TestSend:
    def test_sends_in_batches_and_returns_ids_in_order(self, conn, requests_mock):
        requests_mock.post(SEND, json=echo)
        sent = send_messages([make_message(n) for n in range(5)], batch_size=2, sender=hook())
        assert [s.tracking_id for s in sent] == [f"order-{n}" for n in range(5)]
        assert sent[0] == SentMessage("id-order-0", "order-0")
        assert [len(r.json()) for r in requests_mock.request_history] == [2, 2, 1]
        first = requests_mock.request_history[0]
        assert first.headers["X-Authorization-Key"] == TEST_API_KEY
        assert first.json()[0] == {
            "id": "order-0",
            "fromName": "Shop",
            "toPhone": "+380500000000",
            "messageType": "transaction",
            "text": "Order 0 confirmed",
        }

    def test_tg_viber_route(self, conn, requests_mock):
        requests_mock.post(BASE + Route.TG_VIBER.path, json=echo)
        assert len(send_messages([make_message(1)], route="tg_viber", sender=hook())) == 1

    def test_invalid_input_sends_nothing(self, conn, requests_mock):
        requests_mock.post(SEND, json=echo)
        with pytest.raises(CascadeValidationError):
            send_messages([make_message(1), make_message(2, to_phone="0501234567")], sender=hook())
        assert not requests_mock.called

    @pytest.mark.parametrize("size", [0, 1001])
    def test_batch_size_is_bounded(self, conn, size):
        with pytest.raises(ValueError, match="batch_size"):
            send_messages([make_message(1)], batch_size=size, sender=hook())

    def test_400_is_a_validation_error_never_retried(self, conn, requests_mock):
        body = {
            "error": {
                "code": "INVALID_PHONE",
                "message": "Invalid phone +380501234567",
                "field": "toPhone",
            }
        }
        requests_mock.post(SEND, status_code=400, json=body)
        with pytest.raises(CascadeValidationError) as caught:
            send_messages([make_message(1)], sender=hook())
        error = caught.value
        assert (error.code, error.field, error.from_service) == ("INVALID_PHONE", "toPhone", True)
        assert "+380*****4567" in str(error) and "+380501234567" not in str(error)
        assert requests_mock.call_count == 1

    def test_401_is_an_auth_error_never_retried(self, conn, requests_mock):
        requests_mock.post(SEND, status_code=401, json={"error": {"code": "UNAUTHORIZED"}})
        with pytest.raises(CascadeAuthError, match="refused the credentials"):
            send_messages([make_message(1)], sender=hook())
        assert requests_mock.call_count == 1

    def test_429_waits_and_retries(self, conn, requests_mock):
        requests_mock.post(SEND, [{"status_code": 429}, {"status_code": 429}, {"json": echo}])
        assert len(send_messages([make_message(1)], sender=hook())) == 1
        assert requests_mock.call_count == 3

    def test_429_backoff_doubles_and_honours_retry_after(self, conn):
        h = hook(retry_wait=1.0, max_retry_wait=6.0)

        class State:
            def __init__(self, attempt, error):
                self.attempt_number = attempt
                self.outcome = type("O", (), {"exception": lambda s: error})()

        from airflow_provider_cascade.hooks.outcomes import RateLimited as _RateLimited

        waits = [h._backoff(State(n, _RateLimited(None))) for n in (1, 2, 3, 4)]
        assert waits == [1.0, 2.0, 4.0, 6.0]
        assert h._backoff(State(1, _RateLimited(3))) == 3.0
        assert h._backoff(State(1, _RateLimited(600))) == 6.0

    def test_429_on_every_try_is_a_rate_limit_error(self, conn, requests_mock):
        requests_mock.post(SEND, status_code=429)
        with pytest.raises(CascadeRateLimitError):
            send_messages([make_message(1)], sender=hook(max_retries=2))
        assert requests_mock.call_count == 3

    def test_500_is_retried_then_succeeds_with_a_warning(self, conn, requests_mock, logs):
        requests_mock.post(SEND, [{"status_code": 500}, {"json": echo}])
        assert len(send_messages([make_message(1)], sender=hook())) == 1
        assert "may deliver some of them twice" in logs()

    def test_500_on_every_try_leaves_the_batch_in_doubt(self, conn, requests_mock):
        requests_mock.post(SEND, status_code=500)
        with pytest.raises(CascadeBatchInDoubtError) as caught:
            send_messages([make_message(1), make_message(2)], sender=hook(max_retries=1))
        assert caught.value.tracking_ids == ["order-1", "order-2"]
        assert caught.value.status == 500

    def test_without_resend_an_uncertain_batch_fails_at_once(self, conn, requests_mock):
        requests_mock.post(SEND, status_code=503)
        with pytest.raises(CascadeBatchInDoubtError):
            send_messages([make_message(1)], sender=hook(resend_uncertain=False))
        assert requests_mock.call_count == 1

    def test_a_read_timeout_is_in_doubt(self, conn, requests_mock):
        requests_mock.post(SEND, exc=requests.ReadTimeout("slow"))
        with pytest.raises(CascadeBatchInDoubtError, match="ReadTimeout"):
            send_messages([make_message(1)], sender=hook(resend_uncertain=False))

    def test_a_refused_connection_is_retried_and_never_in_doubt(self, conn, requests_mock):
        requests_mock.post(SEND, exc=requests.ConnectTimeout("no route"))
        with pytest.raises(CascadeServerError) as caught:
            send_messages([make_message(1)], sender=hook(max_retries=2, resend_uncertain=False))
        assert not isinstance(caught.value, CascadeBatchInDoubtError)
        assert requests_mock.call_count == 3

    @pytest.mark.parametrize(
        "reply",
        [
            {"text": "<html>oops</html>"},
            {"json": {"messageId": "x"}},
            {"json": [{"trackinId": "order-1"}]},
            {"json": []},
        ],
        ids=["not-json", "object", "no-message-id", "too-few"],
    )
    def test_an_unreadable_200_is_never_a_success(self, conn, requests_mock, reply):
        requests_mock.post(SEND, status_code=200, **reply)
        with pytest.raises(CascadeBatchInDoubtError, match="unreadable 200 reply"):
            send_messages([make_message(1)], sender=hook(resend_uncertain=False))

    def test_an_error_carries_what_earlier_batches_delivered(self, conn, requests_mock):
        requests_mock.post(SEND, [{"json": echo}, {"status_code": 401}])
        with pytest.raises(CascadeAuthError) as caught:
            send_messages([make_message(n) for n in range(4)], batch_size=2, sender=hook())
        assert [s.tracking_id for s in caught.value.accepted] == ["order-0", "order-1"]


class TestStatusAndConnectionTest:
    status_url = BASE + "/bat/message/00000000-0000-0000-0000-000000000000"

    @pytest.mark.parametrize(
        ("status", "ok", "words"),
        [(404, True, "credentials accepted"), (401, False, "refused"), (500, False, "HTTP 500")],
    )
    def test_connection_test(self, conn, requests_mock, status, ok, words):
        requests_mock.get(self.status_url, status_code=status)
        result, message = hook().test_connection()
        assert result is ok and words in message

    def test_connection_test_reports_an_unreachable_service(self, conn, requests_mock):
        requests_mock.get(self.status_url, exc=requests.ConnectionError("refused"))
        assert hook().test_connection()[0] is False

    def test_get_message_status(self, conn, requests_mock):
        requests_mock.get(
            BASE + "/bat/message/m-1", json={"messageId": "m-1", "deliverystatus": "delivered"}
        )
        assert hook().get_message_status("m-1")["deliverystatus"] == "delivered"
        requests_mock.get(BASE + "/bat/message/m-2", status_code=404)
        assert hook().get_message_status("m-2") is None
        requests_mock.get(BASE + "/bat/message/m-3", status_code=401)
        with pytest.raises(CascadeAuthError):
            hook().get_message_status("m-3")


def test_pacer_spaces_requests():
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds):
        slept.append(seconds)
        now[0] += seconds

    pacer = Pacer(4.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        pacer.wait()
    assert slept == [0.25, 0.25, 0.25, 0.25]
    now[0] += 10  # idle time is not banked as a burst beyond one request
    pacer.wait()
    pacer.wait()
    assert slept[-1] == 0.25
