"""A weekly promo whose next run honours the STOPs its recipients sent back.

Recipients answer the campaign (a Viber bot, SMS...); SMSBAT forwards each reply to the
provider's receiver (``POST /cascade/replies/cascade_default?token=...``), which stores it
and, for STOP (СТОП, UNSUBSCRIBE...), records an opt-out of promos and surveys for that
number. One setting makes the send read them: ``Suppression(opt_outs="cascade_default")``.
A STOP does not block one-time codes or order confirmations: ``order_update`` still
reaches a customer who opted out of promos.

Needs the ``cascade_default`` connection's extras ``replies_token`` and
``replies_conn_id`` (here the SQL connection ``cascade_outbox_db``, where the receiver
keeps ``cascade_replies`` and ``cascade_opt_outs``).
"""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import dag, task
from airflow.providers.sqlite.hooks.sqlite import SqliteHook

from airflow_provider_cascade.operators.cascade import CascadeSendOperator
from airflow_provider_cascade.send import CascadeGuardrails, Suppression

OUTBOX_DB = "cascade_outbox_db"
#: The recipients' opt-outs, as the receiver recorded them for this connection.
HONOUR_STOPS = Suppression(opt_outs="cascade_default")


@dag(
    schedule="@weekly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["cascade", "replies"],
)
def replies_to_optouts() -> None:
    @task
    def customers() -> None:
        """The audience, made once."""
        hook = SqliteHook(sqlite_conn_id=OUTBOX_DB)
        hook.run(
            "CREATE TABLE IF NOT EXISTS spring_customers ("
            " id INTEGER PRIMARY KEY, phone TEXT NOT NULL, name TEXT NOT NULL)"
        )
        if hook.get_first("SELECT COUNT(*) FROM spring_customers")[0] == 0:
            hook.insert_rows(
                "spring_customers",
                [(n, f"+38093{n:07d}", f"customer {n}") for n in range(1, 6)],
                target_fields=["id", "phone", "name"],
            )

    promo = CascadeSendOperator(
        task_id="promo",
        # One tracking id per customer and run (a retry of this run never re-sends); the
        # run id, since a manual run on Airflow 3 has no logical date.
        sql=(
            "SELECT 'promo-{{ run_id | replace('+', '.') }}-' || id AS id, phone AS to_phone,"
            " 'Spring sale: -20% this week. Reply STOP to opt out.' AS text"
            " FROM spring_customers ORDER BY id"
        ),
        sql_conn_id=OUTBOX_DB,
        from_name="YourBrand",
        message_type="promo",
        guardrails=CascadeGuardrails(suppress=HONOUR_STOPS),
    )
    order_update = CascadeSendOperator(
        task_id="order_update",
        messages=[
            {
                "tracking_id": "order-{{ run_id | replace('+', '.') }}-2",
                "to_phone": "+380930000002",
                "text": "Your order 2 has shipped.",
            }
        ],
        from_name="YourBrand",
        message_type="transaction",
        guardrails=CascadeGuardrails(suppress=HONOUR_STOPS),
    )
    customers() >> [promo, order_update]


replies_to_optouts()
