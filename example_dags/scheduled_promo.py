"""A scheduled promo: delivered two hours after the run's data interval ends (UTC)."""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import dag

from airflow_provider_cascade.operators.cascade import CascadeSendOperator


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["cascade"],
)
def scheduled_promo() -> None:
    CascadeSendOperator(
        task_id="schedule_promo",
        messages=[
            {
                "tracking_id": "promo-weekend-{{ ds_nodash }}-1",
                "to_phone": "+380931234561",
                "text": "Weekend deal: free delivery on every order until Sunday.",
            },
            {
                "tracking_id": "promo-weekend-{{ ds_nodash }}-2",
                "to_phone": "+380931234562",
                "text": "Weekend deal: free delivery on every order until Sunday.",
            },
        ],
        from_name="YourBrand",
        message_type="promo",
        ttl=3_600,
        # Rendered per run and normalised to UTC ("...Z"); at most 30 days ahead.
        scheduled_sent="{{ data_interval_end.add(hours=2) }}",
    )


scheduled_promo()
