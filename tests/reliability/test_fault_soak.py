"""A large send under 20% injected faults, counted against the sandbox's record.

CI sends 10,000 messages; ``make soak`` sends 100,000 (CASCADE_SOAK_MESSAGES)."""

from __future__ import annotations

import os
from collections import Counter

import pytest

from airflow_provider_cascade.send.options import CascadeRequests, CascadeResults
from tests.fakes import MemoryStore
from tests.reliability._helpers import FAST, messages, send_with_retries

pytestmark = pytest.mark.integration

SOAK = int(os.environ.get("CASCADE_SOAK_MESSAGES", "10000"))
COMMON = {
    "from_name": "Soak",
    "message_type": "transaction",
    "requests": CascadeRequests(batch_size=100, **FAST),
}


def recorded(sandbox) -> Counter[str]:
    return Counter(m["tracking_id"] for m in sandbox.messages())


def test_every_message_exactly_once_under_faults(sandbox, tmp_path):
    sandbox.set_faults(
        error_rate=0.2, kinds=["429", "429_retry_after", "500", "reset"], latency_ms=5, seed=7
    )
    batch = messages(SOAK)
    result = send_with_retries(
        MemoryStore(),
        messages=batch,
        results=CascadeResults(path=f"file://{tmp_path}/soak.jsonl"),
        **COMMON,
    )
    stats = sandbox.stats()
    assert stats["faults"] >= SOAK // 100 * 0.1  # faults really were injected
    counts = recorded(sandbox)
    assert set(counts) == {m["tracking_id"] for m in batch}  # none missing
    assert max(counts.values()) == 1 and stats["duplicate_tracking_ids"] == 0  # none twice
    assert result["sent"] == stats["accepted"] == SOAK
    assert result["in_doubt"] == [] and result["rejected"] == []


def test_lost_replies_at_most_once_reports_every_id_in_doubt(sandbox, tmp_path):
    sandbox.set_faults(error_rate=0.2, kinds=["response_lost"], seed=11)
    result = send_with_retries(
        MemoryStore(),
        messages=messages(SOAK),
        on_uncertain="skip",
        results=CascadeResults(path=f"file://{tmp_path}/skip.jsonl"),
        **COMMON,
    )
    record = sandbox.messages()
    lost = {m["tracking_id"] for m in record if m["reply_lost"]}
    assert lost and set(result["in_doubt"]) == lost  # every id in doubt is reported
    assert sandbox.stats()["duplicate_tracking_ids"] == 0  # and none was sent twice
    assert result["sent"] + len(result["in_doubt"]) == SOAK == len(record)


def test_lost_replies_at_least_once_duplicates_exactly_the_ids_in_doubt(sandbox, tmp_path):
    sandbox.set_faults(error_rate=0.2, kinds=["response_lost"], seed=13)
    result = send_with_retries(
        MemoryStore(),
        messages=messages(SOAK),
        on_uncertain="resend",
        results=CascadeResults(path=f"file://{tmp_path}/resend.jsonl"),
        **COMMON,
    )
    record = sandbox.messages()
    counts = Counter(m["tracking_id"] for m in record)
    assert len(counts) == SOAK and result["sent"] == SOAK  # none missing
    duplicated = {tracking_id for tracking_id, n in counts.items() if n > 1}
    lost = {m["tracking_id"] for m in record if m["reply_lost"]}
    assert duplicated and duplicated == lost
