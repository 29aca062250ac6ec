from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pendulum
import pytest

from airflow_provider_cascade.exceptions import CascadeValidationError
from airflow_provider_cascade.messages import (
    CascadeMessage,
    MessageType,
    Route,
    SentMessage,
    mask_phone,
    parse_messages,
    redact_phones,
)
from airflow_provider_cascade.wire import read_send_reply, send_body
from tests.conftest import make_message

PHONE = "+380501234567"


def _in(delta: timedelta) -> datetime:
    return datetime.now(timezone.utc) + delta


def test_pythonic_and_wire_keys_give_the_same_message():
    pythonic = CascadeMessage.from_mapping(
        {"id": "o-1", "from_name": "S", "to_phone": PHONE, "message_type": "promo", "text": "x"}
    )
    wire = CascadeMessage.from_mapping(
        {"id": "o-1", "fromName": "S", "toPhone": PHONE, "messageType": "promo", "text": "x"}
    )
    assert pythonic == wire
    assert pythonic.message_type is MessageType.PROMO


def test_to_wire_is_the_documented_shape_with_only_set_fields():
    message = CascadeMessage(
        tracking_id="survey-1",
        from_name="Brand",
        to_phone=PHONE,
        message_type=MessageType.VIBER_SURVEY,
        text="How satisfied are you?",
        ttl=604800,
        survey_options=("Yes", "No"),
    )
    assert message.to_wire() == {
        "id": "survey-1",
        "fromName": "Brand",
        "toPhone": PHONE,
        "messageType": "viber_survey",
        "text": "How satisfied are you?",
        "ttl": 604800,
        "surveyOptions": ["Yes", "No"],
    }
    flash = CascadeMessage("v-1", "App", PHONE, MessageType.FLASHCALL, ttl=300)
    assert flash.to_wire() == {
        "id": "v-1",
        "fromName": "App",
        "toPhone": PHONE,
        "messageType": "flashcall",
        "ttl": 300,
    }


@pytest.mark.parametrize(
    "form",
    [
        lambda when: when,
        lambda when: pendulum.instance(when).in_timezone("Europe/Kyiv"),
        lambda when: when.astimezone(timezone(timedelta(hours=-5))).isoformat(),
        lambda when: when.strftime("%Y-%m-%dT%H:%M:%SZ"),
    ],
    ids=["datetime", "pendulum", "iso-offset", "iso-z"],
)
def test_scheduled_sent_is_normalised_to_utc_z(form):
    when = _in(timedelta(hours=2)).replace(microsecond=0)
    message = CascadeMessage.from_mapping(make_message(1, scheduled_sent=form(when)))
    assert message.scheduled_sent == when.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_scheduled_sent_converts_offsets_to_utc():
    when = pendulum.now("UTC").add(days=1).set(hour=9, minute=0, second=0)
    kyiv = when.in_timezone("Europe/Kyiv")
    message = CascadeMessage.from_mapping(make_message(1, scheduled_sent=kyiv.isoformat()))
    assert message.scheduled_sent == when.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_integral_ttl_and_integer_ids_from_sql_are_accepted():
    message = CascadeMessage.from_mapping(make_message(1, ttl=Decimal("3600"), tracking_id=17))
    assert message.ttl == 3600
    assert message.tracking_id == "17"


def test_survey_options_may_be_a_json_array_string():
    message = CascadeMessage.from_mapping(
        make_message(1, message_type="viber_survey", text="Q?", survey_options='["a", "b"]')
    )
    assert message.survey_options == ("a", "b")


BAD_INPUT = [
    # (overrides, wire field, words of the rule)
    ({"to_phone": "380501234567"}, "to_phone", "is not E.164"),
    ({"to_phone": "0501234567"}, "to_phone", "is not E.164"),
    ({"to_phone": "+0501234567"}, "to_phone", "is not E.164"),
    ({"to_phone": "+38050abc4567"}, "to_phone", "is not E.164"),
    ({"to_phone": "+3805012345678901"}, "to_phone", "is not E.164"),
    ({"to_phone": "+123456"}, "to_phone", "is not E.164"),
    ({"to_phone": None}, "to_phone", "is required"),
    ({"to_phone": 380501234567}, "to_phone", "must be text"),
    ({"from_name": None}, "from_name", "is required"),
    ({"from_name": "  "}, "from_name", "must not be empty"),
    ({"message_type": "sms"}, "message_type", "is not one of"),
    ({"message_type": None}, "message_type", "is required"),
    ({"text": None}, "text", "is required for transaction"),
    ({"text": ""}, "text", "is required for transaction"),
    ({"text": "x" * 5000}, "text", "at most 4096"),
    ({"text": "bad \udcff"}, "text", "not valid UTF-8"),
    ({"text": b"\xff\xfe"}, "text", "not valid UTF-8"),
    ({"message_type": "flashcall"}, "text", "must be absent for a flashcall"),
    ({"message_type": "viber_survey"}, "survey_options", "is required for viber_survey"),
    (
        {"message_type": "viber_survey", "survey_options": ["a"]},
        "survey_options",
        "has 1 option(s); a survey needs 2 to 5",
    ),
    (
        {"message_type": "viber_survey", "survey_options": list("abcdef")},
        "survey_options",
        "has 6 option(s)",
    ),
    (
        {"message_type": "viber_survey", "survey_options": ["a", ""]},
        "survey_options",
        "non-empty strings",
    ),
    (
        {"message_type": "viber_survey", "survey_options": ["a", "b"], "text": "q" * 86},
        "text",
        "is 86 characters; a survey allows 85",
    ),
    ({"survey_options": ["a", "b"]}, "survey_options", "only for viber_survey"),
    ({"survey_options": "not json"}, "survey_options", "not a JSON array"),
    ({"ttl": 0}, "ttl", "must be positive"),
    ({"ttl": -5}, "ttl", "must be positive"),
    ({"ttl": "abc"}, "ttl", "whole number"),
    ({"ttl": 1.5}, "ttl", "whole number"),
    ({"ttl": True}, "ttl", "whole number"),
    ({"scheduled_sent": "garbage"}, "scheduled_sent", "is not an ISO 8601"),
    ({"scheduled_sent": "2030-01-01T09:00:00"}, "scheduled_sent", "has no time zone"),
    ({"scheduled_sent": datetime(2030, 1, 1)}, "scheduled_sent", "has no time zone"),
    ({"scheduled_sent": _in(timedelta(days=31))}, "scheduled_sent", "more than 30 days ahead"),
    ({"scheduled_sent": _in(-timedelta(hours=1))}, "scheduled_sent", "in the past"),
    ({"scheduled_sent": 12345}, "scheduled_sent", "must be an ISO 8601 string or a datetime"),
    ({"tracking_id": ""}, "tracking_id", "1 to 255 characters"),
    ({"tracking_id": "x" * 256}, "tracking_id", "1 to 255 characters"),
    ({"tracking_id": "order 1/2"}, "tracking_id", "may only hold"),
    ({"tracking_id": None}, "tracking_id", "is required"),
    ({"bogus": 1}, "bogus", "is not a message field"),
]


@pytest.mark.parametrize(("overrides", "field", "rule"), BAD_INPUT)
def test_every_rule_is_enforced_with_field_and_rule(overrides, field, rule):
    with pytest.raises(CascadeValidationError) as caught:
        parse_messages([make_message(1), make_message(2, **overrides)])
    problems = caught.value.problems
    assert [p.field for p in problems] == [field], problems
    assert rule in problems[0].rule
    usable_id = "tracking_id" not in overrides
    assert problems[0].ref == ("order-2" if usable_id else "message 2")
    assert "501234567" not in str(caught.value)  # phones stay masked


def test_one_error_lists_every_problem_of_every_message():
    with pytest.raises(CascadeValidationError) as caught:
        parse_messages(
            [
                make_message(1, to_phone="380501234567"),
                make_message(2),
                make_message(3, ttl=0, text=None),
                make_message(1),
                "not a dict",
            ]
        )
    error = caught.value
    rendered = [str(p) for p in error.problems]
    assert rendered == [
        "order-1: to_phone '3805****4567' is not E.164 (+<country><number>, 7 to 15 digits)",
        "order-3: ttl must be positive, not 0",
        "message 5: message is a str, not a mapping of fields",
    ]
    assert "invalid messages (3 problem(s))" in str(error)


def test_duplicate_tracking_ids_are_an_error():
    with pytest.raises(CascadeValidationError) as caught:
        parse_messages([make_message(1), make_message(2), make_message(1, text="again")])
    (problem,) = caught.value.problems
    assert (problem.ref, problem.field, problem.code) == ("order-1", "tracking_id", "DUPLICATE_ID")
    assert "again at message 3" in problem.rule


def test_rows_are_named_by_label_and_position():
    with pytest.raises(CascadeValidationError) as caught:
        parse_messages([make_message(1, tracking_id=None)], label="row", start=41)
    assert caught.value.problems[0].ref == "row 41"


def test_direct_construction_validates_too():
    with pytest.raises(CascadeValidationError, match="to_phone"):
        CascadeMessage("o-1", "S", "12345678", MessageType.TRANSACTION, text="x")


def test_repr_masks_the_phone_and_hides_the_text():
    message = CascadeMessage.from_mapping(make_message(1, text="secret code 4242"))
    assert "+380*****0001" in repr(message)
    assert "secret" not in repr(message)


def test_masking_helpers():
    assert mask_phone("+380501234567") == "+380*****4567"
    assert mask_phone("12345") == "*****"
    assert redact_phones("call +380501234567 or 0501234567 now") == (
        "call +380*****4567 or 0501**4567 now"
    )


def test_routes_have_the_documented_paths():
    assert Route.STANDARD.path == "/api/CascadeMessage/send_message/async"
    assert Route("tg_viber").path == "/api/CascadeMessage/send_message/tg-viber/async"


class TestSendResponse:
    batch = tuple(CascadeMessage.from_mapping(make_message(n)) for n in (1, 2))

    def test_reads_ids_in_order(self):
        payload = [
            {"messageId": "m1", "trackinId": "order-1"},
            {"messageId": "m2", "trackinId": "order-2"},
        ]
        assert read_send_reply(payload, [m.tracking_id for m in self.batch]) == [
            SentMessage("m1", "order-1"),
            SentMessage("m2", "order-2"),
        ]

    @pytest.mark.parametrize(
        ("payload", "words"),
        [
            ({"messageId": "m1"}, "expected a JSON array"),
            ([{"messageId": "m1", "trackinId": "order-1"}], "1 entries for 2 messages"),
            (
                [{"trackinId": "order-1"}, {"messageId": "m2", "trackinId": "order-2"}],
                "no messageId",
            ),
            (
                [
                    {"messageId": "m1", "trackinId": "order-2"},
                    {"messageId": "m2", "trackinId": "order-1"},
                ],
                "another",
            ),
            (["m1", "m2"], "no messageId"),
        ],
    )
    def test_anything_short_of_a_full_answer_is_an_error(self, payload, words):
        with pytest.raises(ValueError, match=words):
            read_send_reply(payload, [m.tracking_id for m in self.batch])


def test_fields_are_named_as_the_caller_wrote_them():
    def problems(data):
        with pytest.raises(CascadeValidationError) as caught:
            CascadeMessage.from_mapping(data, {"message_type": "promo"})
        return [(p.field, p.code) for p in caught.value.problems]

    assert problems({"id": "o-1", "to_phone": "+380501234567", "text": "x"}) == [
        ("from_name", "MISSING_FIELD")
    ]
    assert problems({"id": "o-1", "toPhone": "+380501234567", "text": "x"}) == [
        ("fromName", "MISSING_FIELD")
    ]
    assert problems({"id": "o-1", "phone": "+380501234567", "from_name": "S", "text": "x"}) == [
        ("phone", "UNKNOWN_FIELD"),
        ("to_phone", "MISSING_FIELD"),
    ]


def test_an_unknown_key_suggests_the_nearest_field():
    with pytest.raises(CascadeValidationError, match="phone is not a message field: did you mean"):
        CascadeMessage.from_mapping({**make_message(1), "phone": "+380501234567"})


@pytest.mark.parametrize(
    "message",
    [
        make_message(1, text='Привіт, "друже" \\ 50%\n'),
        make_message(2, message_type="flashcall", text=None, ttl=300),
        make_message(
            3, message_type="viber_survey", text="Happy?", survey_options=["Так", "Ні"], ttl=9
        ),
    ],
    ids=["unicode-and-escapes", "flashcall", "survey"],
)
def test_the_send_body_is_the_json_of_the_wire_objects(message):
    messages = [CascadeMessage.from_mapping(message)]
    body = send_body(messages)
    assert json.loads(body) == [m.to_wire() for m in messages]
    assert "Привіт".encode() in body or "Так".encode() in body or b"flashcall" in body
