from __future__ import annotations

import logging

from airflow_provider_cascade.ledger import IN_DOUBT, NOT_SENT, SendLedger
from airflow_provider_cascade.messages import CascadeMessage, SentMessage
from tests.conftest import make_message
from tests.fakes import MemoryStore


def batch(*numbers: int) -> list[CascadeMessage]:
    return [CascadeMessage.from_mapping(make_message(n)) for n in numbers]


def test_events_are_written_together_when_flushed():
    store = MemoryStore()
    ledger = SendLedger(store)
    assert not ledger.resumed
    first = ledger.begin(batch(1, 2))
    ledger.flush()
    assert store["cascade_send.log.0"] == {
        "events": [{"batch": 0, "state": "in_flight", "tracking_ids": ["order-1", "order-2"]}]
    }
    ledger.accept(first, [SentMessage("m1", "order-1"), SentMessage("m2", "order-2")])
    second = ledger.begin(batch(3))
    ledger.flush()
    assert [e["state"] for e in store["cascade_send.log.1"]["events"]] == ["accepted", "in_flight"]
    assert store.writes == 2  # one write per flush, whatever it holds
    ledger.finish(second, batch(3), NOT_SENT)
    ledger.flush()
    ledger.flush()  # nothing pending: no write
    assert store.writes == 3


def test_a_retry_restores_accepted_and_knows_what_is_uncertain():
    store = MemoryStore()
    ledger = SendLedger(store)
    ledger.accept(
        ledger.begin(batch(1, 2)), [SentMessage("m1", "order-1"), SentMessage("m2", "order-2")]
    )
    ledger.begin(batch(3, 4))  # the worker died here: left in flight
    ledger.finish(ledger.begin(batch(5)), batch(5), IN_DOUBT)
    ledger.finish(ledger.begin(batch(6)), batch(6), NOT_SENT)
    ledger.flush()

    retry = SendLedger(store)
    assert retry.resumed
    assert retry.accepted == {"order-1": "m1", "order-2": "m2"}
    assert retry.uncertain == {"order-3", "order-4", "order-5"}
    assert retry.begin(batch(7)) == 4  # numbering goes on after the earlier try's batches


def test_a_message_resent_and_accepted_is_no_longer_uncertain():
    store = MemoryStore()
    ledger = SendLedger(store)
    ledger.finish(ledger.begin(batch(1)), batch(1), IN_DOUBT)
    ledger.flush()
    ledger.accept(ledger.begin(batch(1)), [SentMessage("m1", "order-1")])
    ledger.flush()
    retry = SendLedger(store)
    assert retry.accepted == {"order-1": "m1"} and retry.uncertain == set()


def test_unflushed_events_are_lost_like_a_killed_worker_s():
    store = MemoryStore()
    ledger = SendLedger(store)
    ledger.begin(batch(1))
    ledger.flush()
    ledger.accept(0, [SentMessage("m1", "order-1")])  # killed before the next flush
    assert SendLedger(store).uncertain == {"order-1"}


def test_log_entries_are_read_until_the_first_missing_number():
    store = MemoryStore()
    ledger = SendLedger(store)
    ledger.accept(ledger.begin(batch(1)), [SentMessage("m1", "order-1")])
    ledger.flush()
    store["cascade_send.log.5"] = {
        "events": [{"batch": 9, "state": "accepted", "tracking_ids": ["x"], "message_ids": ["y"]}]
    }
    retry = SendLedger(store)
    assert retry.accepted == {"order-1": "m1"}
    retry.accept(retry.begin(batch(2)), [SentMessage("m2", "order-2")])
    retry.flush()
    assert store["cascade_send.log.1"]["events"][-1]["message_ids"] == ["m2"]


def test_at_least_once_saves_the_in_flight_writes():
    store = MemoryStore()
    ledger = SendLedger(store)
    number = ledger.begin(batch(1), in_flight=False)
    ledger.flush()
    assert store.writes == 0
    ledger.accept(number, [SentMessage("m1", "order-1")])
    ledger.flush()
    assert store.writes == 1 and SendLedger(store).accepted == {"order-1": "m1"}


def test_without_a_state_store_it_warns_and_works(caplog):
    log = logging.getLogger("test")
    with caplog.at_level(logging.WARNING):
        ledger = SendLedger.from_context({}, log)
    from airflow import __version__

    assert f"Airflow {__version__} has no task state store (it needs 3.3+)" in caplog.text
    assert "may send them again" in caplog.text
    ledger.accept(ledger.begin(batch(1)), [SentMessage("m1", "order-1")])
    ledger.flush()
    assert not ledger.resumed and ledger.accepted == {}
