from __future__ import annotations

import logging

from airflow_provider_cascade.ledger import ACCEPTED, IN_DOUBT, NOT_SENT, SendLedger
from airflow_provider_cascade.messages import CascadeMessage, SentMessage
from tests.conftest import make_message


class MemoryStore(dict):
    def set(self, key, value):
        self[key] = value


def batch(*numbers: int) -> list[CascadeMessage]:
    return [CascadeMessage.from_mapping(make_message(n)) for n in numbers]


def test_a_new_ledger_records_each_batch_before_and_after():
    store = MemoryStore()
    ledger = SendLedger(store)
    assert not ledger.resumed
    first = ledger.begin(batch(1, 2))
    assert store["cascade_send.batch.0"] == {
        "state": "in_flight",
        "tracking_ids": ["order-1", "order-2"],
    }
    ledger.accept(first, [SentMessage("m1", "order-1"), SentMessage("m2", "order-2")])
    assert store["cascade_send.batch.0"]["state"] == ACCEPTED
    second = ledger.begin(batch(3))
    ledger.finish(second, batch(3), NOT_SENT)
    assert sorted(store) == ["cascade_send.batch.0", "cascade_send.batch.1"]


def test_a_retry_restores_accepted_and_knows_what_is_uncertain():
    store = MemoryStore()
    ledger = SendLedger(store)
    ledger.accept(
        ledger.begin(batch(1, 2)), [SentMessage("m1", "order-1"), SentMessage("m2", "order-2")]
    )
    ledger.begin(batch(3, 4))  # the worker died here: left in flight
    ledger.finish(ledger.begin(batch(5)), batch(5), IN_DOUBT)
    ledger.finish(ledger.begin(batch(6)), batch(6), NOT_SENT)

    retry = SendLedger(store)
    assert retry.resumed
    assert retry.accepted == {"order-1": "m1", "order-2": "m2"}
    assert retry.uncertain == {"order-3", "order-4", "order-5"}


def test_a_message_resent_and_accepted_is_no_longer_uncertain():
    store = MemoryStore()
    ledger = SendLedger(store)
    ledger.finish(ledger.begin(batch(1)), batch(1), IN_DOUBT)
    ledger.accept(ledger.begin(batch(1)), [SentMessage("m1", "order-1")])
    retry = SendLedger(store)
    assert retry.accepted == {"order-1": "m1"} and retry.uncertain == set()


def test_records_are_read_until_the_first_missing_number():
    store = MemoryStore()
    ledger = SendLedger(store)
    ledger.accept(ledger.begin(batch(1)), [SentMessage("m1", "order-1")])
    store["cascade_send.batch.5"] = {
        "state": "accepted",
        "tracking_ids": ["x"],
        "message_ids": ["y"],
    }
    retry = SendLedger(store)
    assert retry.accepted == {"order-1": "m1"}
    retry.accept(retry.begin(batch(2)), [SentMessage("m2", "order-2")])
    assert store["cascade_send.batch.1"]["message_ids"] == ["m2"]


def test_without_a_state_store_it_warns_and_works(caplog):
    log = logging.getLogger("test")
    with caplog.at_level(logging.WARNING):
        ledger = SendLedger.from_context({}, log)
    assert "may send them again" in caplog.text
    ledger.accept(ledger.begin(batch(1)), [SentMessage("m1", "order-1")])
    assert not ledger.resumed and ledger.accepted == {}
