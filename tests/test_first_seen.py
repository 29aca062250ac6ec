"""dedupe's memory of the first tracking id per recipient: exact keys, compact."""

from __future__ import annotations

import tracemalloc

from airflow_provider_cascade.send.guardrails.first_seen import FirstSeen


def test_the_first_id_per_recipient_is_kept_exactly():
    seen = FirstSeen(capacity=8)  # grows many times on the way
    numbers = [380_500_000_000 + n for n in range(10_000)]
    assert all(seen.first(n, f"o-{n}") == f"o-{n}" for n in numbers)
    assert all(seen.first(n, "later") == f"o-{n}" for n in numbers)
    assert len(seen) == 10_000
    # Neighbouring keys, and a key and its type-shifted form, are different recipients.
    assert seen.first(380_500_000_000 * 4 + 1, "typed") == "typed"
    assert seen.first(0, "zero") == "zero" and seen.first(0, "again") == "zero"


def test_ids_of_any_text_come_back_as_given():
    seen = FirstSeen()
    seen.first(1, "заказ-№1")
    seen.first(2, "x" * 255)
    assert seen.first(1, "?") == "заказ-№1" and seen.first(2, "?") == "x" * 255


def test_ten_million_recipients_fit_in_about_400_mb():
    """Measured on 300,000 recipients with ten-character ids (the cost is per entry)."""
    ids = [f"order{n:05d}" for n in range(300_000)]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    seen = FirstSeen()
    for n, tracking_id in enumerate(ids):
        seen.first(380_670_000_000 + n, tracking_id)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    per_recipient = held / len(ids)
    print(f"dedupe: {per_recipient:.0f} bytes a recipient, {per_recipient * 10:.0f} MB per 10M")
    assert per_recipient < 45  # a dict of int -> str: about 150
