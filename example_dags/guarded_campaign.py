"""A promo campaign with every guardrail, and a person between the plan and the send.

1. ``dry_run``: the real query with every guardrail, nothing sent; its ``forecast`` says
   how many messages of which type go to which calling codes, the SMS parts if they fell
   back to SMS, and how many each guardrail suppresses, de-duplicates, holds or schedules.
2. ``approve``: Airflow's ``ApprovalOperator`` (3.1+, the standard provider) shows that
   summary in the UI ("Required actions") and waits for Approve or Reject. The approver
   is paged on their phone (``CascadeNotifier.for_approval``): the figures and the link to
   the approval page, which needs Airflow's ``[api] base_url`` (e.g.
   ``AIRFLOW__API__BASE_URL=https://airflow.example.com``). A page that fails is logged;
   the approval waits all the same.
3. ``send``: the same send for real, once approved (Reject skips it).

On Airflow before 3.1 there is no approval step: the DAG stops after the dry run and
sends nothing (a campaign nobody approved is not sent).

Uses the SQL connection ``cascade_outbox_db`` (the demo points it at a SQLite file).
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import dag, task
from airflow.providers.sqlite.hooks.sqlite import SqliteHook

from airflow_provider_cascade.notifications.cascade import CascadeNotifier
from airflow_provider_cascade.operators.cascade import CascadeSendOperator
from airflow_provider_cascade.send import CascadeGuardrails, QuietHours, Suppression

try:
    from airflow.providers.standard.operators.hitl import ApprovalOperator
except ImportError:  # Airflow before 3.1 (or a standard provider without it)
    ApprovalOperator = None
except Exception as error:  # AirflowOptionalProviderFeatureException: "needs Airflow 3.1+"
    if type(error).__name__ != "AirflowOptionalProviderFeatureException":
        raise
    ApprovalOperator = None

OUTBOX_DB = "cascade_outbox_db"
#: Who approves the campaign (their phone, paged when the approval waits).
APPROVER_PHONES = ["+380501119999"]
#: One campaign, twice: a dry run, then (approved) the real send.
CAMPAIGN: dict[str, Any] = {
    "sql": "SELECT id, to_phone, text FROM winter_outbox WHERE message_id IS NULL ORDER BY id",
    "sql_conn_id": OUTBOX_DB,
    "from_name": "YourBrand",
    "message_type": "promo",
}


def guardrails() -> CascadeGuardrails:
    """The campaign's guardrails (each send gets its own: Airflow renders them in place)."""
    return CascadeGuardrails(
        max_messages=10_000,  # a query that lost its WHERE stops here
        dedupe="phone",
        suppress=Suppression(sql="SELECT phone FROM opt_outs"),
        quiet_hours=QuietHours("21:00", "08:00"),  # the recipient's local time
    )


SUMMARY = """\
{% set plan = ti.xcom_pull(task_ids='dry_run') %}
**{{ plan.sent }} messages** would go out: {{ plan.forecast.by_type }}.

- by calling code: {{ plan.forecast.by_calling_code }}
- SMS parts if every one fell back to SMS: {{ plan.forecast.sms.parts }}
  ({{ plan.forecast.sms.gsm7_messages }} GSM-7, {{ plan.forecast.sms.ucs2_messages }} UCS-2)
- opted out (not sent): {{ plan.suppressed }}
- repeated numbers (not sent): {{ plan.forecast.duplicates }}
- scheduled to the end of quiet hours: {{ plan.forecast.scheduled_by_quiet_hours }}
- held (no time zone to go by): {{ plan.forecast.held }}
- rejected as invalid: {{ plan.forecast.rejected }}
"""


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["cascade"],
)
def guarded_campaign() -> None:
    @task
    def fill_outbox() -> None:
        """The audience (with a repeated number) and the opt-out list, queued once."""
        hook = SqliteHook(sqlite_conn_id=OUTBOX_DB)
        hook.run(
            "CREATE TABLE IF NOT EXISTS winter_outbox ("
            " id INTEGER PRIMARY KEY, to_phone TEXT NOT NULL, text TEXT NOT NULL,"
            " message_id TEXT, sent_at TEXT)"
        )
        hook.run("CREATE TABLE IF NOT EXISTS opt_outs (phone TEXT NOT NULL)")
        if hook.get_first("SELECT COUNT(*) FROM winter_outbox")[0] == 0:
            audience = [
                (n, f"+38067{n % 95:07d}", f"Winter sale: -30% until Sunday, customer #{n}")
                for n in range(1, 101)
            ]  # customers 96-100 share a number with 1-5
            hook.insert_rows("winter_outbox", audience, target_fields=["id", "to_phone", "text"])
            # Opt-outs as people typed them: +380 67 000 0010 is customer 10.
            hook.insert_rows(
                "opt_outs", [("+380 67 000 0010",), ("380670000020",)], target_fields=["phone"]
            )

    dry_run = CascadeSendOperator(
        task_id="dry_run", dry_run=True, guardrails=guardrails(), **CAMPAIGN
    )
    if ApprovalOperator is None:  # no approval step: no real send
        fill_outbox() >> dry_run
        return
    send = CascadeSendOperator(
        task_id="send",
        mark_sent_sql=(
            "UPDATE winter_outbox SET message_id = :message_id, sent_at = :sent_at"
            " WHERE id = :tracking_id"
        ),
        guardrails=guardrails(),
        **CAMPAIGN,
    )
    approve = ApprovalOperator(
        task_id="approve",
        subject="Send the winter promo?",
        body=SUMMARY,
        defaults="Reject",  # nobody answered in a day: not sent
        response_timeout=pendulum.duration(days=1),
        notifiers=[
            CascadeNotifier.for_approval(
                to_phones=APPROVER_PHONES, from_name="Airflow", forecast_task_id="dry_run"
            )
        ],
    )
    fill_outbox() >> dry_run >> approve >> send


guarded_campaign()
