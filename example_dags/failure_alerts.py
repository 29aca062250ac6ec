"""Page the on-call engineers through Cascade when a task fails.

The ``check_stock`` task fails on purpose, to show the alert: its ``on_failure_callback``
sends one transaction message per phone, with a tracking id that names the DAG, task, run
and try."""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import dag, task

from airflow_provider_cascade.notifications.cascade import CascadeNotifier

ON_CALL = ["+380501110001", "+380671110002"]

page_on_call = CascadeNotifier(
    to_phones=ON_CALL,
    text="Airflow: {{ dag.dag_id }}.{{ ti.task_id }} failed (try {{ ti.try_number }}).",
    from_name="Airflow",
    route="tg_viber",  # Telegram and Viber first: the fastest to reach a phone
)


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["cascade"],
)
def failure_alerts() -> None:
    @task(on_failure_callback=page_on_call)
    def check_stock() -> None:
        raise RuntimeError("stock feed is 6 hours old")

    check_stock()


failure_alerts()
