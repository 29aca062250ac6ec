"""A promo campaign from an outbox table: rows are streamed from SQL and each accepted
batch is written back, so a re-run (or a retry) sends nothing that was already sent.

Uses the SQL connection ``cascade_outbox_db`` (the demo points it at a SQLite file)."""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import dag, task
from airflow.providers.sqlite.hooks.sqlite import SqliteHook

from airflow_provider_cascade.operators.cascade import CascadeSendOperator
from airflow_provider_cascade.send import CascadeRequests

OUTBOX_DB = "cascade_outbox_db"


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["cascade"],
)
def sql_campaign_outbox() -> None:
    @task
    def fill_outbox() -> None:
        """Create the outbox and queue the campaign once (a re-run queues nothing new)."""
        hook = SqliteHook(sqlite_conn_id=OUTBOX_DB)
        hook.run(
            "CREATE TABLE IF NOT EXISTS promo_outbox ("
            " id INTEGER PRIMARY KEY, to_phone TEXT NOT NULL, text TEXT NOT NULL,"
            " message_id TEXT, sent_at TEXT)"
        )
        if hook.get_first("SELECT COUNT(*) FROM promo_outbox")[0] == 0:
            audience = [
                (n, f"+38067{n:07d}", f"Summer sale: -20% on everything, customer #{n}")
                for n in range(1, 2_501)
            ]
            hook.insert_rows("promo_outbox", audience, target_fields=["id", "to_phone", "text"])

    send = CascadeSendOperator(
        task_id="send_campaign",
        sql="SELECT id, to_phone, text FROM promo_outbox WHERE message_id IS NULL ORDER BY id",
        sql_conn_id=OUTBOX_DB,
        # Run after every accepted batch, one parameter set per message, then committed.
        mark_sent_sql=(
            "UPDATE promo_outbox SET message_id = :message_id, sent_at = :sent_at"
            " WHERE id = :tracking_id"
        ),
        from_name="YourBrand",
        message_type="promo",
        requests=CascadeRequests(batch_size=500),
    )

    fill_outbox() >> send


sql_campaign_outbox()
