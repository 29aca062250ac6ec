from __future__ import annotations

import re

import pytest

from airflow_provider_cascade.delivery import CascadeSample, CascadeWriteBack
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


def watched(sensor: CascadeDeliverySensor) -> list:
    return sensor._the_watch().watched()


def test_inputs_become_watched_pairs(tmp_path):
    sensor = CascadeDeliverySensor(task_id="wait", message_ids=["m1", "m2"])
    assert watched(sensor) == [("m1", None, None), ("m2", None, None)]
    result = {"route": "standard", "messages": [{"message_id": "m1", "tracking_id": "a"}]}
    assert watched(CascadeDeliverySensor(task_id="w", send_result=result)) == [("m1", "a", None)]
    with pytest.raises(CascadeError, match="must be a list"):
        watched(CascadeDeliverySensor(task_id="w", message_ids="m1"))


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("sample_size", "sample=CascadeSample(size=...)"),
        ("mark_delivered_sql", "write_back=CascadeWriteBack(sql=...)"),
        ("results_path", "results=CascadeResults(path=...)"),
    ],
)
def test_the_flat_arguments_of_0_2_name_their_group(name, hint):
    with pytest.raises(TypeError, match=re.escape(hint)):
        CascadeDeliverySensor(task_id="w", message_ids=["m"], **{name: 1})


def test_a_misspelled_group_field_names_the_nearest():
    with pytest.raises(TypeError, match="seed"):
        CascadeSample(size=10, sead=3)
    with pytest.raises(TypeError, match="conn_id"):
        CascadeWriteBack(sql="UPDATE t SET s = :status", conn_idd="db")


def test_a_group_where_another_is_expected_is_refused():
    with pytest.raises(TypeError, match=r"sample= takes a CascadeSample"):
        CascadeDeliverySensor(task_id="w", message_ids=["m"], sample=400)
