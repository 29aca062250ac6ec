"""Sampling a campaign's delivery: the sample, and the intervals it gives."""

from __future__ import annotations

from collections import Counter

import pytest

from airflow_provider_cascade.delivery.sampling import estimate, reservoir, wilson


def test_the_sample_is_reproducible_uniform_and_streamed():
    sample, population = reservoir(iter(range(10_000)), 100, seed=7)
    assert population == 10_000 and len(sample) == 100 and sample == sorted(sample)
    assert reservoir(iter(range(10_000)), 100, seed=7)[0] == sample
    assert reservoir(iter(range(10_000)), 100, seed=8)[0] != sample
    # Uniform: over many seeds each tenth of the items gets about a tenth of the picks.
    picks = Counter(
        item // 1_000 for seed in range(200) for item in reservoir(range(10_000), 50, seed)[0]
    )
    assert all(800 <= count <= 1_200 for count in picks.values()), picks


def test_fewer_items_than_the_sample_size_are_all_taken():
    assert reservoir(["a", "b"], 5, seed=0) == (["a", "b"], 2)


@pytest.mark.parametrize(
    ("hits", "trials", "low", "high"),
    [
        (40, 400, 0.0743, 0.1333),
        (0, 400, 0.0, 0.0095),
        (400, 400, 0.9905, 1.0),
        (5, 10, 0.2366, 0.7634),
    ],
)
def test_wilson_intervals(hits, trials, low, high):
    found = wilson(hits, trials)
    assert found == (pytest.approx(low, abs=1e-4), pytest.approx(high, abs=1e-4))


def test_the_estimate_has_a_share_and_an_interval_per_status_and_channel():
    found = estimate({"delivered": 360, "undeliverable": 40}, {"viber": 200}, 400, 1_000_000)
    assert found["population"] == 1_000_000 and found["sample_size"] == 400
    assert found["by_status"]["undeliverable"] == {"share": 0.1, "low": 0.074299, "high": 0.133311}
    assert found["by_channel"]["viber"]["share"] == 0.5
