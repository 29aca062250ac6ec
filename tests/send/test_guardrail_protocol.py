"""Each guardrail through the protocol alone (``Guardrail.start/screen/checked/figures``),
without the send loop; and a guardrail the loop has never seen, used through it."""

from __future__ import annotations

import logging
from datetime import datetime, timezone

import pytest

from airflow_provider_cascade.exceptions import CascadeGuardrailError
from airflow_provider_cascade.messages import CascadeMessage
from airflow_provider_cascade.send.campaign import Campaign
from airflow_provider_cascade.send.guardrails import FIGURES, CascadeGuardrails
from airflow_provider_cascade.send.guardrails.base import Batch, Guardrail, Screened, Start, Tally
from airflow_provider_cascade.send.guardrails.caps import InlineLimit, MaxMessages, MaxRejectRatio
from airflow_provider_cascade.send.guardrails.dedupe import Dedupe
from airflow_provider_cascade.send.guardrails.quiet_hours import KeepQuiet, QuietHours
from airflow_provider_cascade.send.guardrails.suppression import PhoneSet, Suppress
from airflow_provider_cascade.send.ledger import SendLedger
from airflow_provider_cascade.send.settings import CampaignSettings
from airflow_provider_cascade.send.sources import ListSource
from tests.conftest import make_message

log = logging.getLogger("test")
NOON = datetime(2026, 12, 3, 10, 0, tzinfo=timezone.utc)  # 12:00 in Kyiv


def batch(*messages: CascadeMessage) -> Batch:
    return Batch(list(messages), [m.tracking_id for m in messages])


def message(n: int, **fields: object) -> CascadeMessage:
    return CascadeMessage.from_mapping(make_message(n, **fields), recommended_ttl=True)


def kept_ids(screened: Screened) -> list[str]:
    return [m.tracking_id for m in screened.kept.messages]


def test_suppress_leaves_out_the_numbers_it_holds():
    step = Suppress(PhoneSet([380500000002]).seal())
    screened = step.screen(batch(message(1), message(2)), NOON)
    assert kept_ids(screened) == ["order-1"] and screened.kept.keys == ["order-1"]
    assert screened.left_out == [{"message_id": None, "tracking_id": "order-2", "suppressed": True}]
    assert step.figures() == {"suppressed": 1}


def test_dedupe_remembers_the_first_across_batches():
    step = Dedupe("phone")
    step.screen(batch(message(1, to_phone="+380500000009")), NOON)
    screened = step.screen(batch(message(2, to_phone="+380500000009")), NOON)
    assert kept_ids(screened) == []
    assert screened.left_out[0]["duplicate_of"] == "order-1"
    assert step.figures() == {"duplicate_count": 1}


def test_quiet_hours_move_or_hold_only_their_types():
    step = KeepQuiet(QuietHours("11:00", "13:00"))  # noon in Kyiv is inside
    promo = message(1, message_type="promo", to_phone="+380501234567")
    order = message(2, to_phone="+380501234567")
    screened = step.screen(batch(promo, order), NOON)
    assert kept_ids(screened) == ["order-1", "order-2"]
    assert screened.kept.messages[0].scheduled_sent == "2026-12-03T11:00:00Z"
    assert screened.kept.messages[1].scheduled_sent is None
    assert step.figures() == {"rescheduled": 1, "held_count": 0}
    skip = KeepQuiet(QuietHours("11:00", "13:00", policy="skip"))
    held = skip.screen(batch(promo), NOON)
    assert kept_ids(held) == [] and "until 2026-12-03T11:00:00Z" in held.left_out[0]["held"]


def test_the_caps_stop_before_or_while_sending():
    start = Start(ListSource([make_message(n) for n in range(5)]), dry_run=False, log=log)
    with pytest.raises(CascadeGuardrailError, match="more than max_messages=4"):
        MaxMessages(4).start(start)
    MaxMessages(5).start(start)
    with pytest.raises(CascadeGuardrailError, match="more than xcom_inline_limit=3"):
        InlineLimit(3).start(start)
    dry = MaxMessages(4)
    dry.start(Start(start.source, dry_run=True, log=log))
    assert dry.figures() == {"counted": 5}
    brake = MaxRejectRatio(0.1)
    rejected = [{"ref": "order-1", "field": "to_phone", "rule": "is bad", "code": "X"}] * 20
    brake.checked(Tally(seen=99, rejected=rejected, sent=0))  # under 100 read: no verdict
    with pytest.raises(CascadeGuardrailError, match=r"20 of the first 100 .* order-1: to_phone"):
        brake.checked(Tally(seen=100, rejected=rejected, sent=0))


def test_the_registry_names_every_figure_and_builds_the_steps_in_order():
    assert FIGURES == {
        "suppressed": "suppressed",
        "duplicate_count": "duplicates",
        "rescheduled": "scheduled_by_quiet_hours",
        "held_count": "held",
    }
    guardrails = CascadeGuardrails(
        max_messages=10,
        max_reject_ratio=0.5,
        dedupe="phone",
        quiet_hours=QuietHours("1:00", "2:00"),
    )
    names = [step.name for step in guardrails.steps(log)]
    assert names == ["max_messages", "dedupe", "quiet_hours", "max_reject_ratio"]


class EvenOnly(Guardrail):
    """A guardrail the send loop does not know: leaves out odd-numbered orders."""

    name = "even_only"

    def screen(self, batch: Batch, now: datetime) -> Screened:
        kept = Batch([], [])
        screened = Screened(kept)
        for m, key in zip(batch.messages, batch.keys, strict=True):
            if int(m.tracking_id.split("-")[1]) % 2:
                screened.left_out.append(
                    {"message_id": None, "tracking_id": m.tracking_id, "held": "odd"}
                )
            else:
                kept.messages.append(m)
                kept.keys.append(key)
        return screened


def test_a_new_guardrail_needs_nothing_of_the_loop():
    from tests.fakes import FakeSender

    sender = FakeSender()
    result = Campaign(
        sender, SendLedger(None), CampaignSettings(), log, guardrails=[EvenOnly()]
    ).run(ListSource([make_message(n) for n in range(6)]))
    assert sender.batches == [["order-0", "order-2", "order-4"]]
    assert [h["tracking_id"] for h in result.held or []] == ["order-1", "order-3", "order-5"]
