from __future__ import annotations

import copy
from types import SimpleNamespace

import pytest

from airflow_provider_cascade.messages import CascadeMessage, MessageType
from airflow_provider_cascade.notifications.cascade import (
    CascadeNotifier,
    _cause,
    _tracking_id,
    send_cascade_notification,
)

pytestmark = pytest.mark.compat("notifier")


def test_tracking_ids_trace_the_cause_without_the_phone():
    ti = SimpleNamespace(
        dag_id="etl", task_id="load", run_id="manual__2026-01-01T00:00:00+00:00", try_number=2
    )
    prefix = _cause({"ti": ti, "dag": SimpleNamespace(dag_id="etl"), "run_id": ti.run_id})
    assert prefix == "etl.load.manual__2026-01-01T00:00:00-00:00.try2"
    tracking_id = _tracking_id(prefix, "+380501234567")
    assert "501234567" not in tracking_id
    CascadeMessage(tracking_id, "A", "+380501234567", MessageType.TRANSACTION, text="x")  # valid


def test_very_long_causes_stay_within_255_and_unique():
    first = _tracking_id("d" * 300 + "a", "+380501234567")
    second = _tracking_id("d" * 300 + "b", "+380501234567")
    assert len(first) <= 255 and first != second


def test_function_form_and_templated_fields():
    notifier = send_cascade_notification(
        to_phones="+380501234567", text="{{ dag.dag_id }}", from_name="A"
    )
    assert isinstance(notifier, CascadeNotifier)
    assert set(CascadeNotifier.template_fields) == {"to_phones", "text", "from_name"}


def test_a_notifier_that_has_sent_can_still_be_deep_copied(sandbox):
    """Airflow 3.0's dag.test() deep-copies the DAG, callbacks included: no session or
    lock may stay behind on the notifier after it sent."""
    notifier = CascadeNotifier(to_phones=["+380501234567"], text="failed", from_name="Airflow")
    context = {"ti": SimpleNamespace(dag_id="etl", task_id="load", run_id="r1", try_number=1)}
    notifier.notify(context)
    assert sandbox.stats()["accepted"] == 1
    copy.deepcopy(notifier)
