"""The provider's metrics as a deployment receives them: statsd on for every process of
the harness (tests/cluster/conftest.py), a send, a deferred wait and replies (the
deferred_delivery fixture), and what arrived on the statsd port meanwhile."""

from __future__ import annotations

import pytest

from airflow_provider_cascade.metrics import METRICS
from tests.airflow_runs import PHONE_SHAPED
from tests.cluster.conftest import DeferredRun
from tests.cluster.statsd import provider_metrics

pytestmark = [pytest.mark.integration, pytest.mark.compat("cluster")]


def test_a_send_a_wait_and_replies_emit_their_metrics_without_a_phone(
    deferred_delivery: DeferredRun,
) -> None:
    lines = deferred_delivery.statsd
    ours = provider_metrics(lines)
    names = {m["name"] for m in ours}
    assert names <= set(METRICS), names - set(METRICS)

    def total(name: str, **tags: str) -> float:
        return sum(
            float(m["value"])
            for m in ours
            if m["name"] == name and all(m.get(k) == v for k, v in tags.items())
        )

    sent = {"dag_id": "cluster_deferred_delivery", "task_id": "send"}
    assert total("cascade.send.sent", **sent) == 20
    assert total("cascade.status.lookups", conn_id="cascade_default") >= 20
    waited = {"dag_id": "cluster_deferred_delivery", "task_id": "wait_for_delivery"}
    assert total("cascade.delivery.final", **waited) == 20
    shares = [m for m in ours if m["name"] == "cascade.delivery.share"]
    assert shares and abs(sum(float(m["value"]) for m in shares) - 1.0) < 1e-6
    assert total("cascade.replies.received", conn_id="cascade_replies") == 1
    assert total("cascade.replies.refused", http_status="404") == 1
    # No phone, no text, no tracking id in any line of the provider's.
    provider_lines = [line for line in lines if "cascade." in line]
    assert not [line for line in provider_lines if PHONE_SHAPED.search(line)]
    assert not [line for line in provider_lines if "metrics test reply" in line]
