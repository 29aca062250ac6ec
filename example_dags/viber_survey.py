"""A Viber survey: 2 to 5 answer options, and a question of at most 85 characters."""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import dag

from airflow_provider_cascade.operators.cascade import CascadeSendOperator

QUESTION = "How satisfied are you with our service?"  # 39 characters: within the 85 allowed
OPTIONS = ["Very satisfied", "Satisfied", "Neutral", "Dissatisfied", "Very dissatisfied"]


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["cascade"],
)
def viber_survey() -> None:
    CascadeSendOperator(
        task_id="send_survey",
        messages=[
            {
                "tracking_id": f"survey-satisfaction-{n}",
                "to_phone": f"+38063{n:07d}",
                "text": QUESTION,
                "survey_options": OPTIONS,
            }
            for n in range(1, 6)
        ],
        from_name="YourBrand",
        message_type="viber_survey",  # ttl defaults to the recommendation: 604,800 s
    )


viber_survey()
