"""Runs when recipients' replies are stored: pages support for each "help", and keeps
replies no longer than 90 days.

Scheduled on the replies asset ``cascade://cascade_default/replies`` (Airflow 3.0+): its
watcher, in the triggerer, gives the asset an event when the receiver has stored new
replies, whichever receiver stored them (the API server's or ``cascade-replies``). The
event's ``extra`` holds counts and times only; the replies themselves are read from the
table. On Airflow 2.11 (no asset watchers) the DAG runs every 10 minutes instead.

A reply is linked to a recipient by phone number and time: SMSBAT's callback names no
message it answers.

Needs the ``cascade_default`` connection's ``replies_conn_id`` (here ``cascade_outbox_db``).
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import dag, task
from airflow.providers.sqlite.hooks.sqlite import SqliteHook

from airflow_provider_cascade.notifications.cascade import CascadeNotifier
from airflow_provider_cascade.privacy import mask_phone
from airflow_provider_cascade.replies.keywords import normalise
from airflow_provider_cascade.version_compat import AIRFLOW_V_3_0_PLUS

OUTBOX_DB = "cascade_outbox_db"
SUPPORT_PHONE = "+380501110001"
HELP_WORDS = {"help", "допомога", "помощь"}
KEEP_DAYS = 90

if AIRFLOW_V_3_0_PLUS:
    from airflow_provider_cascade.assets.replies import replies_asset

    SCHEDULE: Any = [replies_asset("cascade_default")]
else:
    SCHEDULE = "*/10 * * * *"


@dag(
    schedule=SCHEDULE,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["cascade", "replies"],
)
def answer_replies() -> None:
    @task
    def page_support_for_help(**context: Any) -> int:
        """One page to support per reply asking for help (the number masked, no text);
        each reply is paged once (``paged_replies`` keeps which)."""
        hook = SqliteHook(sqlite_conn_id=OUTBOX_DB)
        hook.run("CREATE TABLE IF NOT EXISTS paged_replies (reply_id TEXT PRIMARY KEY)")
        waiting = hook.get_records(
            "SELECT reply_id, phone, text FROM cascade_replies"
            " WHERE cascade_conn_id = 'cascade_default'"
            " AND reply_id NOT IN (SELECT reply_id FROM paged_replies) ORDER BY received_at"
        )
        asking = [(rid, phone) for rid, phone, text in waiting if normalise(text) in HELP_WORDS]
        for reply_id, phone in asking:
            CascadeNotifier(
                to_phones=SUPPORT_PHONE,
                text=f"Customer {mask_phone(phone)} asked for help (reply {reply_id[:8]}).",
                from_name="YourBrand",
            ).notify(context)
        hook.insert_rows("paged_replies", [(rid,) for rid, _, _ in waiting], replace=True)
        return len(asking)

    @task
    def forget_old_replies() -> int:
        """Replies are personal data: those older than KEEP_DAYS go (opt-outs stay)."""
        from airflow_provider_cascade.replies.retention import delete_replies_older_than

        return delete_replies_older_than("cascade_default", KEEP_DAYS)

    page_support_for_help() >> forget_old_replies()


answer_replies()
