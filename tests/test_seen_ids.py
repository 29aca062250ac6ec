"""The tracking ids of a send: exact (a number and its digits are one id, nothing else is),
a batch added whole or not at all, and a million numbered ids in a few megabytes."""

from __future__ import annotations

import random
import tracemalloc

import pytest

from airflow_provider_cascade.seen_ids import SeenIds


def test_a_number_and_its_digits_are_one_id_and_nothing_else_is():
    seen = SeenIds()
    assert seen.add_new([42, 43])
    assert "42" in seen and "43" in seen
    assert "042" not in seen and "42.0" not in seen and "+42" not in seen and "4_2" not in seen
    assert not seen.add_new(["42"])  # the key 42 and the id "42" are one id on the wire
    assert seen.add_new(["042", "order-42", "-42"])
    assert not seen.add_new(["order-42"]) and "order-42" in seen
    assert len(seen) == 5


def test_a_batch_that_repeats_an_id_or_meets_an_earlier_one_adds_nothing():
    seen = SeenIds()
    assert seen.add_new(list(range(1, 101)))
    for batch in ([200, 201, 200], [300, 50], ["a", "b", "a"], [400, "50"], ["x", 7]):
        assert not seen.add_new(batch)
    assert len(seen) == 100 and "200" not in seen and "300" not in seen and "x" not in seen
    assert seen.add_new([])


@pytest.mark.parametrize("large", [10**18, 10**25, -1])
def test_integers_outside_a_word_are_kept_as_their_digits(large):
    seen = SeenIds()
    assert seen.add_new([large])
    assert str(large) in seen
    assert not seen.add_new([str(large)])


def test_it_agrees_with_a_set_of_the_ids_in_any_order():
    """Random batches (in order, shuffled, overlapping, of numbers, digits and names)
    decide as a plain set of the ids' text decides."""
    rng = random.Random(7)
    seen, reference = SeenIds(), set()
    next_number = 1
    for _ in range(2_000):
        kind = rng.choice(["ascending", "shuffled", "repeat", "text", "mixed", "one"])
        if kind == "ascending":
            batch: list[int | str] = list(range(next_number, next_number + rng.randint(1, 30)))
            next_number += len(batch) + rng.randint(0, 3)
        elif kind == "shuffled":
            batch = rng.sample(range(1, next_number + 50), rng.randint(1, 10))
        elif kind == "repeat":
            batch = [rng.choice(sorted(reference))] if reference else [1]
        elif kind == "text":
            batch = [f"id-{rng.randint(0, 5_000)}" for _ in range(rng.randint(1, 5))]
        elif kind == "mixed":
            batch = [rng.randint(0, next_number), str(rng.randint(0, next_number)), "0"]
        else:
            tracking_id = str(rng.randint(0, next_number + 10))
            assert (tracking_id in seen) == (tracking_id in reference)
            seen.add(tracking_id)
            reference.add(tracking_id)
            continue
        texts = [str(key) for key in batch]
        fresh = len(set(texts)) == len(texts) and reference.isdisjoint(texts)
        assert seen.add_new(batch) == fresh, batch
        if fresh:
            reference.update(texts)
    assert len(seen) == len(reference)
    assert all(tracking_id in seen for tracking_id in reference)


def test_a_million_numbered_ids_in_order_take_about_8_mb():
    seen = SeenIds()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for start in range(1, 1_000_001, 1_000):
        assert seen.add_new(range(start, start + 1_000))
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    print(f"seen ids: {held / 1_000_000:.1f} bytes a numbered id")
    assert held / 1_000_000 < 10  # a set of their text: ~97 bytes each
    assert "1000000" in seen and "1000001" not in seen and "500000" in seen
