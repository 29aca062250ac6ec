"""The compact table of what earlier tries accepted: exact 128-bit keys, UUIDs packed."""

from __future__ import annotations

import tracemalloc
import uuid

from airflow_provider_cascade.send.accepted_ids import AcceptedIds, digest


def test_every_entry_is_found_exactly_and_nothing_else():
    table = AcceptedIds()
    ids = {f"order-{n}": str(uuid.UUID(int=n * 7919 + 1)) for n in range(20_000)}
    for tracking_id, message_id in ids.items():
        table.add(digest(tracking_id), message_id)
    assert len(table) == 20_000
    assert all(table.get(digest(t)) == m for t, m in ids.items())
    assert table.get(digest("order-20000")) is None and digest("order-x") not in table


def test_ids_that_are_not_uuids_and_overwrites():
    table = AcceptedIds()
    table.add(digest("a"), "not-a-uuid")
    table.add(digest("b"), "3FA85F64-5717-4562-B3FC-2C963F66AFA6")  # not canonical: as text
    table.add(digest("a"), "00000000-0000-4000-8000-000000000001")
    assert len(table) == 2
    assert table.get(digest("a")) == "00000000-0000-4000-8000-000000000001"
    assert table.get(digest("b")) == "3FA85F64-5717-4562-B3FC-2C963F66AFA6"


def test_keys_differing_in_their_last_bits_are_two_entries():
    """The slot comes from the key's low word: keys sharing it must still be told apart
    by the whole 128 bits (a truncated hash would take them for one)."""
    table = AcceptedIds()
    first = bytes(8) + (5).to_bytes(8, "big")
    second = (1).to_bytes(8, "big") + (5).to_bytes(8, "big")
    table.add(first, str(uuid.UUID(int=1)))
    table.add(second, str(uuid.UUID(int=2)))
    assert table.get(first) == str(uuid.UUID(int=1)) and table.get(second) == str(uuid.UUID(int=2))


def test_a_million_entries_fit_in_well_under_100_mb():
    keys = [digest(f"order-{n}") for n in range(200_000)]
    message_ids = [str(uuid.UUID(int=n + 1)) for n in range(200_000)]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    table = AcceptedIds()
    for key, message_id in zip(keys, message_ids, strict=True):
        table.add(key, message_id)
    assert table.get(keys[0]) == message_ids[0]  # placed once, on the first look-up
    held, peak = (value - before for value in tracemalloc.get_traced_memory())
    tracemalloc.stop()
    print(f"accepted ids: peak {peak / len(keys):.0f} bytes an entry while placed")
    assert peak / len(keys) < 110  # staged (32) and placed (44) at once, never more
    per_entry = held / len(keys)
    print(f"accepted ids: {per_entry:.0f} bytes an entry")
    assert per_entry < 60  # about 45: 1,000,000 earlier-accepted messages in ~45 MB
    assert table.get(keys[123_456]) == message_ids[123_456]
