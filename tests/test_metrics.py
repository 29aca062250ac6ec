"""The provider's metric names, and that a metric never fails what it counts (the metrics
as a deployment receives them: tests/cluster/test_metrics.py)."""

from __future__ import annotations

import re

import pytest

from airflow_provider_cascade import metrics


def test_every_name_is_a_statsd_name_of_the_provider_with_a_type_and_tags():
    for name, (kind, what, tags) in metrics.METRICS.items():
        assert re.fullmatch(r"cascade(\.[a-z_]+)+", name), name
        assert kind in ("counter", "gauge") and what and tags


def test_an_unknown_name_is_a_programming_error():
    with pytest.raises(ValueError, match="not a metric of the provider"):
        metrics.incr("cascade.send.sent_typo")


def test_a_failing_stats_client_never_fails_the_caller(monkeypatch):
    class Broken:
        def incr(self, *args: object, **kwargs: object) -> None:
            raise OSError("statsd host unresolvable")

    monkeypatch.setattr(metrics, "_stats", Broken)
    metrics.incr("cascade.send.sent", 5, conn_id="cascade_default")  # no exception


def test_nothing_is_emitted_for_zero():
    calls: list[tuple[object, ...]] = []

    class Recording:
        def incr(self, *args: object, **kwargs: object) -> None:
            calls.append(args)

    original = metrics._stats
    try:
        metrics._stats = Recording  # type: ignore[assignment]
        metrics.incr("cascade.send.rejected", 0, conn_id="c")
        metrics.incr("cascade.send.rejected", 2, conn_id="c")
    finally:
        metrics._stats = original  # type: ignore[assignment]
    assert calls == [("cascade.send.rejected", 2)]
