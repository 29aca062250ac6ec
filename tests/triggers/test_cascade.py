from __future__ import annotations

import json

from airflow_provider_cascade.triggers.cascade import CascadeDeliveryTrigger


def test_serialize_round_trip_holds_only_json():
    trigger = CascadeDeliveryTrigger(
        cascade_conn_id="cascade_default",
        messages=[["m1", "order-1"], ["m2", None]],
        poll_interval=5,
        max_requests_per_second=20,
        deadline=1234.5,
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_provider_cascade.triggers.cascade.CascadeDeliveryTrigger"
    assert json.loads(json.dumps(kwargs)) == kwargs
    again = CascadeDeliveryTrigger(**kwargs)
    assert again.serialize() == (classpath, kwargs)
