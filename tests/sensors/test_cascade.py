from __future__ import annotations

import pytest

from airflow_provider_cascade.exceptions import CascadeError
from airflow_provider_cascade.sensors.cascade import CascadeDeliverySensor


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({}, "exactly one input"),
        ({"message_ids": ["m"], "send_result": {"route": "standard"}}, "exactly one input"),
        ({"message_ids": ["m"], "success_when": "most"}, "success_when"),
    ],
)
def test_misuse_is_refused(kwargs, words):
    with pytest.raises(ValueError, match=words):
        CascadeDeliverySensor(task_id="wait", **kwargs)


def test_inputs_become_watched_pairs(tmp_path):
    sensor = CascadeDeliverySensor(task_id="wait", message_ids=["m1", "m2"])
    assert sensor._watched() == [("m1", None, None), ("m2", None, None)]
    result = {"route": "standard", "messages": [{"message_id": "m1", "tracking_id": "a"}]}
    assert CascadeDeliverySensor(task_id="w", send_result=result)._watched() == [("m1", "a", None)]
    with pytest.raises(CascadeError, match="must be a list"):
        CascadeDeliverySensor(task_id="w", message_ids="m1")._watched()
