"""The recipient's rules without Airflow: suppression sets, SMS parts, quiet hours."""

from __future__ import annotations

import logging
import re
from datetime import datetime, time, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from airflow_provider_cascade.exceptions import CascadeValidationError
from airflow_provider_cascade.messages import MessageType
from airflow_provider_cascade.results import CascadeSendResult
from airflow_provider_cascade.send.campaign import Campaign
from airflow_provider_cascade.send.forecast import sms_parts
from airflow_provider_cascade.send.guardrails.dedupe import Dedupe
from airflow_provider_cascade.send.guardrails.quiet_hours import KeepQuiet, QuietHours
from airflow_provider_cascade.send.guardrails.suppression import (
    PhoneSet,
    Suppress,
    e164_digits,
    load_suppression,
)
from airflow_provider_cascade.send.ledger import SendLedger
from airflow_provider_cascade.send.settings import CampaignSettings
from airflow_provider_cascade.send.sources import ListSource
from tests.conftest import make_message
from tests.fakes import FakeSender


@pytest.mark.parametrize(
    "written",
    [
        "+380501234567",
        "+380 (50) 123-45-67",
        "00380501234567",
        "380501234567",
        380501234567,
        Decimal("380501234567"),
        " +380.50.123.45.67 ",
    ],
)
def test_every_way_of_writing_a_number_is_the_same_number(written):
    assert e164_digits(written) == 380501234567


@pytest.mark.parametrize(
    "unreadable", ["0501234567", "+12", "phone", "", True, 3.8e11, "+0123456789"]
)
def test_what_is_not_an_international_number_is_not_read_as_one(unreadable):
    assert e164_digits(unreadable) is None


def test_a_phone_set_finds_what_it_holds_and_nothing_else():
    numbers = PhoneSet([380501234567, 14155550123, 380501234567, 380501234567 + 65_536]).seal()
    assert len(numbers) == 3
    assert 380501234567 in numbers and 380501234567 + 65_536 in numbers
    assert 380501234568 not in numbers and "380501234567" not in numbers
    assert numbers.nbytes == 3 * 8
    with pytest.raises(RuntimeError):
        numbers.add(1)


def test_unreadable_suppressed_numbers_are_named_masked_and_counted():
    with pytest.raises(CascadeValidationError) as caught:
        load_suppression(["+380501234567", None, *["0501234567"] * 25])
    problems = caught.value.problems
    assert (
        problems[0].ref == "Suppression.phones[2]"
        and problems[0].code == "INVALID_SUPPRESSED_PHONE"
    )
    assert "0501234567" not in str(caught.value) and "'0501**4567'" in str(caught.value)
    assert problems[-1].rule == "... and 5 more unreadable number(s)"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello", ("gsm7", 1)),
        ("x" * 160, ("gsm7", 1)),
        ("x" * 161, ("gsm7", 2)),
        ("x" * 306, ("gsm7", 2)),
        ("x" * 307, ("gsm7", 3)),
        ("€" * 80, ("gsm7", 1)),  # the extension table counts twice: 160 septets
        ("€" * 81, ("gsm7", 2)),
        ("Привіт", ("ucs2", 1)),
        ("я" * 70, ("ucs2", 1)),
        ("я" * 71, ("ucs2", 2)),
        ("я" * 135, ("ucs2", 3)),
        ("🎉" * 35, ("ucs2", 1)),  # an emoji is two UTF-16 units
        ("🎉" * 36, ("ucs2", 2)),
    ],
)
def test_sms_parts_follow_gsm_03_38(text, expected):
    assert sms_parts(text) == expected


def test_a_window_needs_its_start_and_end():
    with pytest.raises(TypeError, match="end"):
        QuietHours("21:00")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("window", "rule"),
    [
        (("21:00-08:00", "x"), "'21:00-08:00' is not a time of day"),
        (("21:00", "8am"), "'8am' is not a time of day"),
        (("21:00", "21:00"), "is empty"),
    ],
)
def test_a_bad_window_is_refused_at_parse(window, rule):
    with pytest.raises(ValueError, match=re.escape(rule)):
        QuietHours(*window)


def test_bad_types_zones_and_policies_are_refused_at_parse():
    with pytest.raises(ValueError, match=r"unknown message type\(s\) \['promotion'\]"):
        QuietHours("21:00", "08:00", types=["promotion"])
    with pytest.raises(ValueError, match="'Moscow' is not an IANA time zone"):
        QuietHours("21:00", "08:00", zones={"7": "Moscow"})
    with pytest.raises(ValueError, match="'RU' is not a country calling code"):
        QuietHours("21:00", "08:00", zones={"RU": "Europe/Moscow"})
    with pytest.raises(ValueError, match=r"QuietHours\(policy=...\) must be 'schedule' or 'skip'"):
        QuietHours("21:00", "08:00", policy="later")


def test_the_window_end_is_found_in_local_time_across_midnight_and_dst():
    quiet = QuietHours("21:00", "08:00")
    kyiv = "+380501234567"
    # 23:30 in Kyiv (UTC+2 in winter): until 08:00 local the next morning.
    assert quiet.place(kyiv, datetime(2026, 12, 3, 21, 30, tzinfo=timezone.utc)).due == datetime(
        2026, 12, 4, 6, 0, tzinfo=timezone.utc
    )
    # Summer (UTC+3): the same local 08:00 is 05:00 UTC.
    assert quiet.place(kyiv, datetime(2026, 7, 3, 21, 30, tzinfo=timezone.utc)).due == datetime(
        2026, 7, 4, 5, 0, tzinfo=timezone.utc
    )
    noon = datetime(2026, 12, 3, 10, 0, tzinfo=timezone.utc)
    assert quiet.place(kyiv, noon).due == noon
    # A window within one day.
    lunch = QuietHours("12:00", "13:00", types=["transaction"])
    assert lunch.place(kyiv, noon).due == datetime(2026, 12, 3, 11, 0, tzinfo=timezone.utc)
    assert MessageType(make_message(1)["message_type"]) in lunch.types


def test_a_number_in_several_zones_gets_the_time_allowed_in_all_of_them():
    quiet = QuietHours("21:00", "08:00")
    # Australian mobiles: eight zones, from the Cocos Islands (UTC+6:30) to Lord Howe
    # (UTC+11 in December). At 00:00 UTC it is 06:30 on Cocos: wait for 08:00 there.
    due = quiet.place("+61412345678", datetime(2026, 12, 3, 0, 0, tzinfo=timezone.utc)).due
    assert due == datetime(2026, 12, 3, 1, 30, tzinfo=timezone.utc)
    # 10:00 UTC is 21:00 on Lord Howe, 16:30 on Cocos: quiet in one zone is quiet for all,
    # until the next morning on Cocos, when it is 11:30 on Lord Howe.
    due = quiet.place("+61412345678", datetime(2026, 12, 3, 10, 0, tzinfo=timezone.utc)).due
    assert due == datetime(2026, 12, 4, 1, 30, tzinfo=timezone.utc)


def test_a_message_moved_past_thirty_days_is_rejected_with_its_rule():
    later = datetime.now(timezone.utc) + timedelta(days=30) - timedelta(minutes=5)
    local = later.astimezone(ZoneInfo("Europe/London"))
    window = (f"{local - timedelta(minutes=1):%H:%M}", f"{local + timedelta(minutes=30):%H:%M}")
    settings = CampaignSettings(on_invalid="skip")
    guardrails = [KeepQuiet(QuietHours(*window, types=["transaction"]))]
    message = make_message(
        1, scheduled_sent=later.strftime("%Y-%m-%dT%H:%M:%SZ"), to_phone="+447911123456"
    )
    sender = FakeSender()
    result = Campaign(
        sender, SendLedger(None), settings, logging.getLogger("test"), guardrails=guardrails
    ).run(ListSource([message]))
    assert result.sent == 0 and sender.batches == []
    [rejected] = result.rejected
    assert rejected["ref"] == "order-1" and rejected["field"] == "scheduled_sent"
    assert f"quiet hours {window[0]}-{window[1]} move it to" in rejected["rule"]
    assert rejected["rule"].endswith("more than 30 days ahead")


def test_time_objects_work_as_well_as_text():
    assert QuietHours(time(21), time(8)).label == "21:00-08:00"


def test_suppressed_ids_are_offloaded_with_the_rest_and_loaded_back(tmp_path):
    messages = [make_message(n) for n in range(1, 31)]
    suppressed = {e164_digits(m["to_phone"]) for m in messages[::3]}  # 10 of them
    settings = CampaignSettings(xcom_inline_limit=5, results_path=f"file://{tmp_path}/r.jsonl")
    campaign = Campaign(
        FakeSender(),
        SendLedger(None),
        settings,
        logging.getLogger("test"),
        guardrails=[Suppress(PhoneSet(n for n in suppressed if n is not None).seal())],
    )
    result = campaign.run(ListSource(messages))
    xcom = result.to_xcom()
    assert (xcom["sent"], xcom["suppressed"]) == (20, 10)
    assert xcom["messages"] is None and xcom["suppressed_ids"] is None
    loaded = CascadeSendResult.load(xcom)
    assert sorted(loaded.suppressed_ids or []) == sorted(m["tracking_id"] for m in messages[::3])
    assert len(loaded.messages or []) == 20 and len(list(loaded.iter_messages())) == 20


def test_duplicates_and_held_messages_are_offloaded_too(tmp_path):
    # Ten messages to one number: the first goes, nine are duplicates; one Russian promo is
    # held (its sixteen zones share no time outside 18:00-10:00).
    messages = [make_message(n, to_phone="+380501234567") for n in range(1, 11)]
    messages.append(make_message(11, to_phone="+79161234567", message_type="promo"))
    settings = CampaignSettings(xcom_inline_limit=3, results_path=f"file://{tmp_path}/r.jsonl")
    guardrails = [Dedupe("phone"), KeepQuiet(QuietHours("18:00", "10:00"))]
    result = Campaign(
        FakeSender(), SendLedger(None), settings, logging.getLogger("test"), guardrails=guardrails
    ).run(ListSource(messages))
    xcom = result.to_xcom()
    assert (xcom["sent"], xcom["duplicate_count"], xcom["held_count"]) == (1, 9, 1)
    assert xcom["duplicates"] is None and xcom["held"] is None
    loaded = CascadeSendResult.load(xcom)
    assert loaded.duplicates == [
        {"tracking_id": f"order-{n}", "duplicate_of": "order-1"} for n in range(2, 11)
    ]
    assert [entry["tracking_id"] for entry in loaded.held or []] == ["order-11"]
    assert [m["tracking_id"] for m in loaded.messages or []] == ["order-1"]
