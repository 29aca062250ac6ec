"""Every rule of the contract broken once, through the operator against the sandbox.

Each case must raise ONE clear error naming the message (tracking id or position), the
field and the rule; send NOTHING (the sandbox's record proves it); and never show a full
phone number, in the error or in the logs."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from airflow_provider_cascade.exceptions import CascadeValidationError
from airflow_provider_cascade.operators.cascade import CascadeSendOperator
from tests.reliability._helpers import TI

pytestmark = pytest.mark.integration

PHONE = "+380501234567"


def good(n: int = 1, **overrides: object) -> dict[str, object]:
    return {"tracking_id": f"order-{n}", "to_phone": PHONE, "text": "Order confirmed", **overrides}


def soon(**delta: float) -> str:
    return (datetime.now(timezone.utc) + timedelta(**delta)).isoformat()


# (id, the bad message or `messages` value, words the error must hold)
CASES: list[tuple[str, object, tuple[str, ...]]] = [
    ("phone-no-plus", good(to_phone="380501234567"), ("order-1", "to_phone", "E.164")),
    ("phone-national", good(to_phone="0501234567"), ("order-1", "to_phone", "E.164")),
    ("phone-letters", good(to_phone="+38050ABC4567"), ("order-1", "to_phone", "E.164")),
    ("phone-too-long", good(to_phone="+3805012345678901"), ("order-1", "to_phone", "E.164")),
    ("phone-too-short", good(to_phone="+380501"), ("order-1", "to_phone", "E.164")),
    ("phone-number-type", good(to_phone=380501234567), ("order-1", "to_phone", "must be text")),
    ("phone-missing", {"tracking_id": "order-1", "text": "x"}, ("order-1", "to_phone", "required")),
    ("type-unknown", good(message_type="sms"), ("order-1", "message_type", "not one of")),
    ("transaction-no-text", good(text=None), ("order-1", "text", "required for transaction")),
    (
        "promo-empty-text",
        good(message_type="promo", text=""),
        ("order-1", "text", "required for promo"),
    ),
    (
        "flashcall-with-text",
        good(message_type="flashcall"),
        ("order-1", "text", "absent for a flashcall"),
    ),
    (
        "survey-no-options",
        good(message_type="viber_survey"),
        ("order-1", "survey_options", "required"),
    ),
    (
        "survey-1-option",
        good(message_type="viber_survey", survey_options=["a"]),
        ("order-1", "survey_options", "2 to 5"),
    ),
    (
        "survey-6-options",
        good(message_type="viber_survey", survey_options=list("abcdef")),
        ("order-1", "survey_options", "2 to 5"),
    ),
    (
        "survey-86-chars",
        good(message_type="viber_survey", survey_options=["a", "b"], text="q" * 86),
        ("order-1", "text", "85"),
    ),
    (
        "survey-options-not-json",
        good(message_type="viber_survey", survey_options="[a, b"),
        ("order-1", "survey_options", "not a JSON array"),
    ),
    (
        "options-on-promo",
        good(message_type="promo", survey_options=["a", "b"]),
        ("order-1", "survey_options", "only for viber_survey"),
    ),
    ("ttl-zero", good(ttl=0), ("order-1", "ttl", "positive")),
    ("ttl-negative", good(ttl=-60), ("order-1", "ttl", "positive")),
    ("ttl-text", good(ttl="abc"), ("order-1", "ttl", "whole number")),
    ("ttl-float", good(ttl=3.5), ("order-1", "ttl", "whole number")),
    (
        "scheduled-31-days",
        good(scheduled_sent=soon(days=31)),
        ("order-1", "scheduled_sent", "30 days"),
    ),
    (
        "scheduled-past",
        good(scheduled_sent=soon(hours=-2)),
        ("order-1", "scheduled_sent", "in the past"),
    ),
    (
        "scheduled-naive",
        good(scheduled_sent=datetime(2030, 1, 1)),
        ("order-1", "scheduled_sent", "time zone"),
    ),
    (
        "scheduled-garbage",
        good(scheduled_sent="next tuesday"),
        ("order-1", "scheduled_sent", "ISO 8601"),
    ),
    ("id-empty", good(tracking_id=""), ("message 2", "id", "1 to 255")),
    ("id-256-chars", good(tracking_id="x" * 256), ("message 2", "id", "1 to 255")),
    ("id-special-chars", good(tracking_id="order#1/2"), ("message 2", "id", "may only hold")),
    ("id-duplicate", good(n=0), ("order-0", "id", "more than once")),
    ("from-name-blank", good(from_name="   "), ("order-1", "from_name", "must not be empty")),
    ("text-not-utf8", good(text=b"\xff\xfe caf\xe9"), ("order-1", "text", "UTF-8")),
    ("text-lone-surrogate", good(text="hi \udc80"), ("order-1", "text", "UTF-8")),
    ("text-1mb", good(text="x" * 1_000_000), ("order-1", "text", "at most 4096")),
    ("unknown-field", good(phone=PHONE), ("order-1", "phone", "not a message field")),
    # Suggestions by meaning, not spelling alone (`message` once suggested message_type).
    ("message-for-text", good(message="Order 1"), ("order-1", "message", "did you mean text?")),
    ("body-for-text", good(body="x"), ("order-1", "body", "did you mean text?")),
    ("msisdn-for-phone", good(msisdn=PHONE), ("order-1", "msisdn", "did you mean to_phone?")),
    ("sender-for-from-name", good(sender="Shop"), ("order-1", "sender", "did you mean from_name?")),
    (
        "scheduled-naive-text",
        good(scheduled_sent="2030-01-01T09:00:00"),
        (
            "order-1",
            "scheduled_sent",
            "has no time zone: '2030-01-01T09:00:00'",
            "'2030-01-01T09:00:00Z'",
        ),
    ),
    ("not-a-mapping", "order-1", ("message 2", "message", "not a mapping")),
]
WHOLE = [
    ("messages-a-dict", good(), ("messages", "must be a list")),
    ("messages-not-json", "this is not json", ("messages", "not a JSON array")),
]


def run(messages: object) -> CascadeValidationError:
    operator = CascadeSendOperator(
        task_id="send", messages=messages, from_name="Shop", message_type="transaction"
    )
    with pytest.raises(CascadeValidationError) as caught:
        operator.execute({"ti": TI()})  # type: ignore[arg-type]
    return caught.value


def check(error: CascadeValidationError, words: tuple[str, ...], sandbox, text: str) -> None:
    message = str(error)
    for word in words:
        assert word in message, message
    assert sandbox.stats()["requests"] == 0  # nothing of the batch went out
    assert PHONE not in message and "501234567" not in text


def test_the_catalogue_has_at_least_thirty_cases():
    assert len(CASES) + len(WHOLE) + len(SQL_CASES) >= 30


@pytest.mark.parametrize(("bad", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_bad_message_fails_the_send_whole(sandbox, logs, bad, words):
    # A valid message first: nothing is sent from a list known to hold an invalid one.
    error = run([good(n=0), bad])
    check(error, words, sandbox, logs() + str(error))
    assert len(error.problems) == 1


@pytest.mark.parametrize(("value", "words"), [c[1:] for c in WHOLE], ids=[c[0] for c in WHOLE])
def test_a_messages_value_that_is_no_list_is_refused(sandbox, logs, value, words):
    error = run(value)
    check(error, words, sandbox, logs() + str(error))


def test_an_empty_batch_sends_nothing_and_succeeds(sandbox):
    # Deliberately not an error: an outbox with nothing left to send must re-run cleanly.
    result = CascadeSendOperator(
        task_id="send", messages=[], from_name="Shop", message_type="transaction"
    ).execute({"ti": TI()})  # type: ignore[arg-type]
    assert (result["sent"], result["batches"]) == (0, 0) and sandbox.stats()["requests"] == 0


SQL_CASES = [
    (
        "null-phone",
        "SELECT 7 AS id, NULL AS to_phone, 'x' AS text",
        ("row 1", "to_phone", "required"),
    ),
    (
        "null-id",
        "SELECT NULL AS id, '+380501234567' AS to_phone, 'x' AS text",
        ("row 1", "id", "required"),
    ),
    (
        "options-column-not-json",
        "SELECT 7 AS id, '+380501234567' AS to_phone, 'Q?' AS text, 'viber_survey' AS message_type,"
        " 'yes;no' AS survey_options",
        ("7", "survey_options", "not a JSON array"),
    ),
    (
        "unknown-column",
        "SELECT 7 AS id, '+380501234567' AS phone, 'x' AS text",
        ("sql", "phone", "names no message field: did you mean to_phone?"),
    ),
    (
        "ttl-real-column",
        "SELECT 7 AS id, '+380501234567' AS to_phone, 'x' AS text, 1.5 AS ttl",
        ("7", "ttl", "whole number"),
    ),
]


@pytest.mark.parametrize(
    ("sql", "words"), [c[1:] for c in SQL_CASES], ids=[c[0] for c in SQL_CASES]
)
def test_bad_rows_from_sql_are_named_by_row_or_id(sandbox, logs, tmp_path, monkeypatch, sql, words):
    path = tmp_path / "catalogue.db"
    sqlite3.connect(path).close()
    monkeypatch.setenv(
        "AIRFLOW_CONN_CATALOGUE_DB", json.dumps({"conn_type": "sqlite", "host": str(path)})
    )
    operator = CascadeSendOperator(
        task_id="send",
        sql=sql,
        sql_conn_id="catalogue_db",
        from_name="Shop",
        message_type="transaction",
    )
    with pytest.raises(CascadeValidationError) as caught:
        operator.execute({"ti": TI()})  # type: ignore[arg-type]
    check(caught.value, words, sandbox, logs() + str(caught.value))


@pytest.mark.parametrize(
    ("argument", "meant"),
    [
        ("sender", "from_name"),
        ("conn_id", "cascade_conn_id"),
        ("query", "sql"),
        ("retires", "retries"),
        ("mesages", "messages"),
    ],
)
def test_a_misnamed_operator_argument_names_the_one_meant(argument, meant):
    with pytest.raises(
        TypeError,
        match=rf"unexpected argument\(s\): {argument}= \(did you mean "
        rf"{meant}=\?\)",
    ):
        CascadeSendOperator(task_id="send", messages=[], **{argument: "x"})


@pytest.mark.parametrize("conn_type", ["http", "postgres"])
def test_a_connection_of_another_type_is_named_as_such(sandbox, monkeypatch, conn_type):
    """An ``http`` connection used to be accepted (and sent), a ``postgres`` one reported as
    having no credential; either is the wrong type, said before anything is sent."""
    from airflow_provider_cascade.exceptions import CascadeConnectionError

    monkeypatch.setenv(
        "AIRFLOW_CONN_NOT_CASCADE",
        json.dumps({"conn_type": conn_type, "host": sandbox.url, "password": "local-test-key"}),
    )
    operator = CascadeSendOperator(
        task_id="send",
        messages=[good()],
        from_name="Shop",
        message_type="transaction",
        cascade_conn_id="not_cascade",
    )
    with pytest.raises(
        CascadeConnectionError,
        match=rf"connection 'not_cascade' is of type "
        rf"'{conn_type}', not 'cascade'",
    ):
        operator.execute({"ti": TI()})  # type: ignore[arg-type]
    assert sandbox.stats()["requests"] == 0
