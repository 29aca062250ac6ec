"""Order confirmations: a TaskFlow task builds transaction messages, the operator sends them,
and a downstream task reads the message ids from the result."""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import dag, task

from airflow_provider_cascade.operators.cascade import CascadeSendOperator
from airflow_provider_cascade.results import CascadeSendResult


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["cascade"],
)
def order_confirmations() -> None:
    # The messages hold phone numbers: keep the return value out of the task log.
    @task(show_return_value_in_logs=False)
    def build_messages() -> list[dict[str, object]]:
        # In a real DAG: today's confirmed orders from your database or an API.
        orders = [{"id": 12_345 + n, "phone": f"+38050{1_000_000 + n:07d}"} for n in range(25)]
        return [
            {
                "tracking_id": f"order-{order['id']}",
                "to_phone": order["phone"],
                "text": f"Your order #{order['id']} has been confirmed and will arrive tomorrow.",
            }
            for order in orders
        ]

    send = CascadeSendOperator(
        task_id="send_confirmations",
        messages=build_messages(),
        from_name="YourStore",
        message_type="transaction",  # ttl defaults to the recommendation: 86,400 s
    )

    @task
    def record_message_ids(result: dict[str, object]) -> int:
        sent = CascadeSendResult.load(result)
        for message in sent.iter_messages():
            print(f"{message.tracking_id} -> {message.message_id}")
        return sent.sent

    record_message_ids(send.output)


order_confirmations()
