"""The send ledger: coordination state in the task state store, written off the send loop.

Each test names the invariant of ``airflow_provider_cascade/ledger.py`` it checks.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid

import pytest

from airflow_provider_cascade.exceptions import CascadeError
from airflow_provider_cascade.results import SentMessage
from airflow_provider_cascade.send.ledger import (
    IN_DOUBT,
    LINGER_SECONDS,
    LOG_KEY,
    MAX_VALUE_BYTES,
    NOT_SENT,
    PartStore,
    SendLedger,
)
from tests.fakes import MemoryStore


def sent(*numbers: int, prefix: str = "order-") -> list[SentMessage]:
    return [SentMessage(str(uuid.UUID(int=n + 1)), f"{prefix}{n}") for n in numbers]


def ids(messages: list[SentMessage]) -> list[str]:
    return [m.tracking_id for m in messages]


class SlowStore(MemoryStore):
    """Each write takes a while, as over the execution API; counts them."""

    def __init__(self, delay: float = 0.05) -> None:
        super().__init__()
        self.delay = delay
        self.threads: set[str] = set()

    def set(self, key, value):
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)
        super().set(key, value)


def test_accepted_batches_are_restored_by_tracking_id():  # invariant 1
    store = MemoryStore()
    ledger = SendLedger(store)
    first, second = sent(0, 1), sent(2)
    ledger.accept(ledger.begin(), first)
    ledger.accept(ledger.begin(), second)
    ledger.close()
    retry = SendLedger(store)
    assert retry.resumed and retry.accepted_count == 3
    assert retry.accepted_id("order-0") == first[0].message_id
    assert retry.accepted_id("order-2") == second[0].message_id
    assert retry.accepted_id("order-9") is None
    assert retry.begin() == 2  # numbering goes on after the earlier try's batches


def test_ids_that_are_not_uuids_are_kept_as_text():
    store = MemoryStore()
    ledger = SendLedger(store)
    ledger.accept(ledger.begin(), [SentMessage("not-a-uuid", "a"), SentMessage("X" * 80, "b")])
    ledger.close()
    retry = SendLedger(store)
    assert (retry.accepted_id("a"), retry.accepted_id("b")) == ("not-a-uuid", "X" * 80)


def test_in_flight_in_doubt_and_not_sent():  # invariant 2
    store = MemoryStore()
    ledger = SendLedger(store)
    left = ledger.begin()
    ledger.wait(ledger.mark_sending(left, ["order-3", "order-4"]))  # killed mid-request
    doubt = ledger.begin()
    ledger.mark_sending(doubt, ["order-5"])
    ledger.finish(doubt, IN_DOUBT)
    refused = ledger.begin()
    ledger.mark_sending(refused, ["order-6"])
    ledger.finish(refused, NOT_SENT)
    answered = ledger.begin()
    ledger.mark_sending(answered, ["order-7"])
    ledger.accept(answered, sent(7))
    ledger.close()
    retry = SendLedger(store)
    assert [retry.was_uncertain(f"order-{n}") for n in range(3, 8)] == [
        True,
        True,
        True,
        False,
        False,
    ]
    assert retry.uncertain_count == 3


def test_writes_leave_the_send_loop_and_are_grouped():
    store = SlowStore(delay=0.05)
    ledger = SendLedger(store)
    started = time.monotonic()
    tickets = [ledger.accept(ledger.begin(), sent(n)) for n in range(20)]
    assert time.monotonic() - started < 0.05  # the caller did not wait for one write
    ledger.wait(tickets[-1])
    ledger.close()
    assert store.writes < 20  # group commits: events that waited went together
    assert store.threads == {"cascade-ledger"}
    assert SendLedger(store).accepted_count == 20


def test_a_failed_write_is_reported_to_whoever_waits():
    class BreakingStore(MemoryStore):
        """Takes ``good`` writes, then refuses every one (the API server went down)."""

        good = 1

        def set(self, key, value):
            if self.good == 0:
                raise RuntimeError("API server down")
            self.good -= 1
            super().set(key, value)

    ledger = SendLedger(BreakingStore())
    ledger.wait(ledger.accept(ledger.begin(), sent(1, 2, 3)))
    ticket = ledger.accept(ledger.begin(), sent(4, 5))
    message = (
        r"could not record the send's progress in the task state store, so no further batch"
        r" was sent: 3 message\(s\) accepted and recorded, 2 accepted but not recorded .*"
        r"The state store said: API server down"
    )
    with pytest.raises(CascadeError, match=message):
        ledger.wait(ticket)
    with pytest.raises(CascadeError, match=message):
        ledger.close()


def test_log_entries_are_read_until_the_first_missing_number():  # invariant 4
    store = MemoryStore()
    ledger = SendLedger(store)
    ledger.accept(ledger.begin(), sent(1))
    ledger.close()
    store[LOG_KEY.format(5)] = {"events": [{"b": 9, "s": "accepted", "h": "", "ids": []}]}
    retry = SendLedger(store)
    assert retry.accepted_count == 1 and retry.begin() == 1
    retry.accept(1, sent(2))
    retry.close()
    assert LOG_KEY.format(1) in store


def test_every_value_is_small_whatever_the_ids_look_like():
    """1,000-message batches of 255-character tracking ids: every value under 64 KB."""
    store = MemoryStore()
    ledger = SendLedger(store)
    long = [SentMessage(str(uuid.uuid4()), f"a{n:0254d}") for n in range(1_000)]
    text_ids = [SentMessage(f"message-{n:040d}", f"b{n:0254d}") for n in range(1_000)]
    again = [SentMessage(str(uuid.uuid4()), f"c{n:0254d}") for n in range(1_000)]
    for batch in (long, text_ids, again):
        number = ledger.begin()
        ledger.mark_sending(number, ids(batch))
        ledger.accept(number, batch)
    ledger.close()
    sizes = [len(json.dumps(value)) for value in store.values()]
    assert max(sizes) <= MAX_VALUE_BYTES < 65_535
    retry = SendLedger(store)
    assert retry.accepted_id(text_ids[999].tracking_id) == text_ids[999].message_id


def test_parts_hold_the_ids_and_the_store_only_pointers(tmp_path):
    results_path = f"file://{tmp_path}/run/result.jsonl"
    store = MemoryStore()
    ledger = SendLedger(store, parts=PartStore(results_path))
    batch = sent(*range(1_000))
    number = ledger.begin()
    ledger.wait(ledger.mark_sending(number, ids(batch)))
    ledger.accept(number, batch, ledger.accepted_part(number, batch))
    ledger.close()
    assert max(len(json.dumps(value)) for value in store.values()) < 200
    assert sorted(p.name for p in (tmp_path / "run" / "result.jsonl.parts").iterdir()) == [
        "00000000.accepted.jsonl",
        "00000000.sending.jsonl",
    ]
    retry = SendLedger(store, parts=PartStore(results_path))
    assert retry.accepted_count == 1_000 and retry.uncertain_count == 0
    assert retry.accepted_id("order-999") == batch[999].message_id


def test_a_removed_part_is_read_back_from_the_results_file(tmp_path):
    results_path = f"file://{tmp_path}/result.jsonl"
    store = MemoryStore()
    parts = PartStore(results_path)
    ledger = SendLedger(store, parts=parts)
    batch = sent(1, 2)
    ledger.accept(ledger.begin(), batch, ledger.accepted_part(0, batch))
    ledger.close()
    (tmp_path / "result.jsonl").write_text("".join(json.dumps(s.to_json()) + "\n" for s in batch))
    parts.remove()
    assert (
        SendLedger(store, parts=PartStore(results_path)).accepted_id("order-2")
        == batch[1].message_id
    )
    (tmp_path / "result.jsonl").unlink()
    with pytest.raises(CascadeError, match="not sending anything rather than sending twice"):
        SendLedger(store, parts=PartStore(results_path))


def test_without_a_state_store_it_warns_and_works(caplog):
    log = logging.getLogger("test")
    with caplog.at_level(logging.WARNING):
        ledger = SendLedger.from_context({}, log)
    from airflow import __version__

    assert f"Airflow {__version__} has no task state store (it needs 3.3+)" in caplog.text
    assert "may send them again" in caplog.text
    assert ledger.accept(ledger.begin(), sent(1)) == 0
    ledger.close()
    assert not ledger.resumed and ledger.accepted_count == 0


def test_an_event_nobody_waits_for_is_written_within_the_linger():
    store = MemoryStore()
    ledger = SendLedger(store)
    ledger.accept(ledger.begin(), sent(1))
    time.sleep(LINGER_SECONDS + 0.3)
    assert store.writes == 1  # written by the writer on its own, not by close()
    ledger.close()
