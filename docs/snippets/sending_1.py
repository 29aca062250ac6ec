import pendulum
from airflow.providers.common.compat.sdk import dag, task

from airflow_provider_cascade.operators.cascade import CascadeSendOperator


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"))
def confirmations():
    @task(show_return_value_in_logs=False)  # the messages hold phone numbers
    def build():
        return [
            {
                "tracking_id": "order-12345",
                "to_phone": "+380501234567",
                "text": "Your order #12345 has been confirmed.",
            }
        ]

    CascadeSendOperator(
        task_id="send",
        messages=build(),  # an upstream task's output: resolved, and a dependency
        from_name="YourStore",
        message_type="transaction",  # ttl: the recommendation for the type (86,400 s)
    )


confirmations()
