"""Starts when ``campaign_asset_producer`` sent the campaign (scheduled on its asset) and
uses the figures the send put in the asset event, e.g. to size a delivery check or a
report."""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import Asset, dag, task

WINTER_PROMO = Asset("cascade://campaigns/winter_promo")


@dag(
    schedule=[WINTER_PROMO],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["cascade"],
)
def campaign_asset_consumer() -> None:
    @task
    def report(**context: Any) -> dict[str, Any]:
        """The figures of the send that triggered this run (Airflow 2 names the events
        ``triggering_dataset_events``, keyed by URI)."""
        events = context.get("triggering_asset_events") or context["triggering_dataset_events"]
        key = WINTER_PROMO if WINTER_PROMO in events else WINTER_PROMO.uri
        event = events[key][-1]
        figures = dict(event.extra)
        print(
            f"{figures['sent']} sent, {figures['rejected']} rejected, "
            f"{figures['in_doubt']} in doubt ({figures['route']} route)"
        )
        return figures

    report()


campaign_asset_consumer()
