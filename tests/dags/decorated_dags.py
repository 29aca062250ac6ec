"""``@task.cascade`` DAGs the integration tests run with dag.test() (tests/integration/
test_decorator_runs.py). Connections as in cascade_test_dags.py: ``cascade_default`` (the
sandbox) and ``cascade_test_sqlite`` (a SQLite file with an ``outbox`` table)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_cascade.send import CascadeGuardrails, CascadeRequests
from tests.dags.cascade_test_dags import MARK_SENT, START

#: How many messages the generator DAG yields; the test sets it through the DAG's params.
GENERATED = 100_000


def confirmation(n: int) -> dict[str, Any]:
    """Message n of a generated send: keyed by the outbox's own integer id."""
    return {"tracking_id": n, "to_phone": f"+38050{n:07d}", "text": f"Order {n} is confirmed"}


with DAG(
    "cascade_decorated_generator", schedule=None, start_date=START, params={"count": GENERATED}
) as generator:

    @task.cascade(
        from_name="YourStore",
        message_type="transaction",
        sql_conn_id="cascade_test_sqlite",
        mark_sent_sql=MARK_SENT,
    )
    def confirmations(params: Any = None) -> Iterator[dict[str, Any]]:
        for n in range(1, params["count"] + 1):
            yield confirmation(n)

    confirmations()


with DAG("cascade_decorated_list", schedule=None, start_date=START) as from_a_list:

    @task
    def customers() -> list[int]:
        return [1, 2, 3]

    @task.cascade(from_name="YourStore", message_type="transaction", route="tg_viber")
    def receipts(numbers: list[int], ti: Any = None) -> list[dict[str, Any]]:
        return [
            {"id": f"{ti.task_id}-{n}", "to_phone": f"+38067{n:07d}", "text": f"Receipt {n}"}
            for n in numbers
        ]

    receipts(customers())


with DAG("cascade_decorated_none", schedule=None, start_date=START) as returns_none:

    @task.cascade(from_name="YourStore", message_type="transaction")
    def forgot_to_return() -> None:
        messages = [{"id": "lost", "to_phone": "+380671234567", "text": "never sent"}]
        print(len(messages))  # built, then not returned

    forgot_to_return()


with DAG("cascade_decorated_invalid", schedule=None, start_date=START) as invalid:

    @task.cascade(from_name="YourStore", message_type="transaction", retries=2)
    def codes() -> Iterator[dict[str, Any]]:
        for n in range(1, 1_501):
            phone = "0671234567" if n == 1_200 else f"+38067{n:07d}"
            yield {"id": f"code-{n}", "to_phone": phone, "text": "Your code is 1234"}

    codes()


with DAG("cascade_decorated_capped", schedule=None, start_date=START) as capped:

    @task.cascade(
        from_name="YourStore",
        message_type="promo",
        guardrails=CascadeGuardrails(max_messages=2_500),
        requests=CascadeRequests(batch_size=1_000, max_in_flight=1),
    )
    def promo() -> Iterator[dict[str, Any]]:
        for n in range(1, 10_001):
            yield {"id": f"promo-{n}", "to_phone": f"+38067{n:07d}", "text": "Sale"}

    promo()


#: The retried DAG's generator fails after this many messages on its first try.
FAIL_AFTER = 2_500

with DAG("cascade_decorated_retry", schedule=None, start_date=START) as retried:

    @task.cascade(
        from_name="YourStore",
        message_type="transaction",
        requests=CascadeRequests(batch_size=500),
        retries=1,
        retry_delay=timedelta(seconds=0),
    )
    def reminders(ti: Any = None) -> Iterator[dict[str, Any]]:
        for n in range(1, 5_001):
            if n > FAIL_AFTER and ti.try_number == 1:
                raise RuntimeError("the source went away")
            yield {"id": f"reminder-{n}", "to_phone": f"+38067{n:07d}", "text": "Tomorrow 10:00"}

    reminders()
