"""Shipping notices from a generator, their delivery waited for in the triggerer, and the
on-call person paged when the campaign is not done 30 minutes after its run was queued.

- ``@task.cascade``: the function yields the messages (read as it goes, never all in
  memory); they are checked, guarded and sent in the same task, each tracking id stable so
  a retry sends nothing twice.
- ``CascadeDeliverySensor``: the wait, deferred to the triggerer.
- ``DeadlineAlert`` (Airflow 3.1+): the scheduler notices the missed deadline; the
  triggerer awaits ``CascadeNotifier`` (its ``async_notify``, on the async hook), so the
  page never blocks the triggerer's event loop. The alert's text is rendered against the
  deadline's context (``dag_run``, ``deadline``). Before 3.1 the DAG runs without it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import dag, task

from airflow_provider_cascade.notifications.cascade import CascadeNotifier
from airflow_provider_cascade.sensors.cascade import CascadeDeliverySensor
from airflow_provider_cascade.version_compat import AIRFLOW_V_3_1_PLUS

#: Who is paged when the campaign misses its deadline.
ONCALL_PHONES = ["+380501110001"]
#: How long after its run was queued the campaign should be done.
DEADLINE = timedelta(minutes=30)


def missed_deadline_alert(interval: timedelta = DEADLINE) -> dict[str, Any]:
    """``deadline=`` for the DAG (Airflow 3.1+), or nothing where Airflow has no deadlines."""
    if not AIRFLOW_V_3_1_PLUS:
        return {}
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    return {
        "deadline": DeadlineAlert(
            reference=DeadlineReference.DAGRUN_QUEUED_AT,
            interval=interval,
            callback=AsyncCallback(
                CascadeNotifier,
                kwargs={
                    "to_phones": ONCALL_PHONES,
                    "from_name": "Airflow",
                    "text": "{{ dag_run.dag_id }}: delivery not done in time "
                    "(run {{ dag_run.dag_run_id }})",
                },
            ),
        )
    }


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["cascade"],
    **missed_deadline_alert(),
)
def delivery_deadline() -> None:
    @task.cascade(from_name="YourShop", message_type="transaction")
    def shipping_notices() -> Iterator[dict[str, Any]]:
        for order in range(1, 51):  # e.g. rows of a query, read as they come
            yield {
                "tracking_id": f"shipped-{order}",  # the same on every try
                "to_phone": f"+38063555{order:04d}",
                "text": f"Order {order} has shipped",
            }

    CascadeDeliverySensor(
        task_id="wait_for_delivery",
        send_result=shipping_notices(),
        deferrable=True,
        poke_interval=1,
        timeout=600,
    )


delivery_deadline()
