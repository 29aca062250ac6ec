"""Send a campaign and announce it as an asset event: ``campaign_asset_consumer`` (scheduled
on the asset) starts the follow-up with the send's figures, read from the event's
``extra`` (``sent``, ``rejected``, ``in_doubt``, ``suppressed``, ``route``, ``dry_run``,
``results_path``; never phones or texts)."""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import Asset, dag

from airflow_provider_cascade.operators.cascade import CascadeSendOperator

#: The campaign as other DAGs see it.
WINTER_PROMO = Asset("cascade://campaigns/winter_promo")


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["cascade"],
)
def campaign_asset_producer() -> None:
    CascadeSendOperator(
        task_id="send_promo",
        messages=[
            {"tracking_id": f"winter-{n}", "to_phone": f"+38063{n:07d}", "text": "Winter sale"}
            for n in range(1, 31)
        ],
        from_name="YourBrand",
        message_type="promo",
        outlets=[WINTER_PROMO],
    )


campaign_asset_producer()
