"""Order confirmations: build transaction messages from today's orders and send them."""

from __future__ import annotations

import pendulum
from airflow.sdk import dag, task

from airflow_provider_cascade.hooks.cascade import CascadeHook


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["cascade"],
)
def order_confirmations() -> None:
    # The messages hold phone numbers: keep them out of the task log.
    @task(show_return_value_in_logs=False)
    def build_messages() -> list[dict[str, object]]:
        orders = [(12345 + n, f"+38050{1000000 + n:07d}") for n in range(5)]
        return [
            {
                "tracking_id": f"order-{order_id}",
                "from_name": "YourStore",
                "to_phone": phone,
                "message_type": "transaction",
                "text": f"Your order #{order_id} has been confirmed.",
                "ttl": 86_400,
            }
            for order_id, phone in orders
        ]

    @task
    def send(messages: list[dict[str, object]]) -> list[str]:
        return [sent.message_id for sent in CascadeHook().send(messages)]

    send(build_messages())


order_confirmations()
