"""Send, wait for delivery in the triggerer (no worker slot held), then report per channel."""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import dag, task

from airflow_provider_cascade.operators.cascade import CascadeSendOperator
from airflow_provider_cascade.sensors.cascade import CascadeDeliverySensor


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["cascade"],
)
def send_and_track() -> None:
    @task(show_return_value_in_logs=False)
    def build_notices() -> list[dict[str, object]]:
        return [
            {
                "tracking_id": f"account-update-{n}",
                "to_phone": f"+38050777{n:04d}",
                "text": "Your account details were updated. Not you? Call us.",
            }
            for n in range(20)
        ]

    send = CascadeSendOperator(
        task_id="send",
        messages=build_notices(),
        from_name="YourBank",
        message_type="transaction",
        route="tg_viber",
    )

    wait = CascadeDeliverySensor(
        task_id="wait_for_delivery",
        send_result=send.output,
        deferrable=True,
        poke_interval=1,
        timeout=600,
    )

    @task
    def report(delivery: dict[str, object]) -> None:
        print(f"{delivery['total']} message(s): {delivery['by_status']}")
        for channel, count in sorted(delivery["by_channel"].items()):
            print(f"  delivered by {channel}: {count}")

    report(wait.output)


send_and_track()
