"""Phone verification by flash call, on the Telegram-Viber priority route, with a 300 s TTL.

A flash call carries no text: the code is the calling number's last digits."""

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
def otp_flashcall() -> None:
    CascadeSendOperator(
        task_id="verify_phone",
        # In a real DAG: the sign-ups awaiting verification, e.g. from an upstream task.
        messages=[{"tracking_id": "verify-user-123", "to_phone": "+380501234567"}],
        from_name="YourApp",
        message_type="flashcall",
        ttl=300,  # a verification is worthless after five minutes
        route="tg_viber",
    )


otp_flashcall()
