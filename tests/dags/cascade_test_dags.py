"""DAGs the integration tests run with dag.test() (this folder is the tests' DAG bundle).

Connections come from the environment the tests set: ``cascade_default`` (the sandbox)
and ``cascade_test_sqlite`` (a SQLite file with an ``outbox`` table).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pendulum
from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_cascade.delivery import CascadeSample, CascadeWriteBack
from airflow_provider_cascade.notifications.cascade import CascadeNotifier
from airflow_provider_cascade.operators.cascade import CascadeSendOperator
from airflow_provider_cascade.send import (
    CascadeGuardrails,
    CascadeRequests,
    CascadeResults,
    QuietHours,
    Suppression,
)
from airflow_provider_cascade.sensors.cascade import CascadeDeliverySensor

START = pendulum.datetime(2026, 1, 1, tz="UTC")
FAST_RETRIES = {"retry_wait": 0.01, "max_retries": 1}
OUTBOX_SELECT = (
    "SELECT id, to_phone, text, message_type, survey_options FROM outbox "
    "WHERE message_id IS NULL ORDER BY id"
)
MARK_SENT = "UPDATE outbox SET message_id = :message_id, sent_at = :sent_at WHERE id = :tracking_id"

with DAG("cascade_xcom_send", schedule=None, start_date=START) as xcom_send:

    @task(show_return_value_in_logs=False)
    def build_orders() -> list[dict[str, object]]:
        return [
            {
                "tracking_id": f"order-{n}",
                "to_phone": f"+38050{n:07d}",
                "text": f"Order {n} confirmed",
            }
            for n in range(2_500)
        ]

    send = CascadeSendOperator(
        task_id="send",
        messages=build_orders(),
        from_name="YourStore",
        message_type="transaction",
        route="tg_viber",
    )

    @task
    def read_ids(result: dict[str, object], ti=None) -> int:
        ids = ti.xcom_pull(task_ids="send", key="message_ids")
        assert len(ids) == 2_500 and ids == [m["message_id"] for m in result["messages"]]
        return len(ids)

    read_ids(send.output)


with DAG("cascade_json_string_send", schedule=None, start_date=START) as json_string_send:

    @task(show_return_value_in_logs=False)
    def build_three() -> list[dict[str, object]]:
        return [
            {
                "id": f"otp-{n}",
                "fromName": "App",
                "toPhone": f"+38050{n:07d}",
                "messageType": "flashcall",
            }
            for n in range(3)
        ]

    build_three() >> CascadeSendOperator(
        task_id="send",
        # Pulled through a string template the list arrives as its JSON text (Airflow #11983).
        messages="{{ ti.xcom_pull(task_ids='build_three') | tojson }}",
    )


with DAG("cascade_misnamed_keys", schedule=None, start_date=START) as misnamed_keys:
    # A new user's first message: `phone` for to_phone, `message` for text. It fails
    # validation, and its rendered fields (stored before it runs) must show no number.
    CascadeSendOperator(
        task_id="send",
        messages=[{"tracking_id": "o-1", "phone": "+380501234561", "message": "Order 1 confirmed"}],
        from_name="Shop",
        message_type="transaction",
        guardrails=CascadeGuardrails(
            suppress=Suppression(phones=["+380501234599", "+380501234598"])
        ),
    )


with DAG("cascade_broken_template", schedule=None, start_date=START) as broken_template:
    # A template that fails to render: Airflow logs the field's value; it must show no phone.
    CascadeSendOperator(
        task_id="send",
        messages=[
            {"tracking_id": "b-1", "to_phone": "+380501234571", "text": "Hi {{ customer.name }}"}
        ],
        from_name="Shop",
        message_type="transaction",
    )


def _outbox_send(dag_id: str, **send_kwargs: Any) -> DAG:
    """A promo send from the SQLite outbox (connection cascade_test_sqlite)."""
    with DAG(dag_id, schedule=None, start_date=START) as dag:
        CascadeSendOperator(
            task_id="send",
            sql=OUTBOX_SELECT,
            sql_conn_id="cascade_test_sqlite",
            from_name="YourBrand",
            message_type="promo",
            **send_kwargs,
        )
    return dag


sql_outbox = _outbox_send(
    "cascade_sql_outbox",
    mark_sent_sql=MARK_SENT,
    scheduled_sent="{{ data_interval_end.add(hours=2) }}",
    results=CascadeResults(path="file:///tmp/cascade-test-results/{{ run_id }}.jsonl"),
)
sql_skip_invalid = _outbox_send(
    "cascade_sql_skip_invalid",
    mark_sent_sql=MARK_SENT,
    requests=CascadeRequests(batch_size=100),
    on_invalid="skip",
)
# retries=3: a validation error fails at once, without using them.
sql_fail_invalid = _outbox_send(
    "cascade_sql_fail_invalid",
    mark_sent_sql=MARK_SENT,
    requests=CascadeRequests(batch_size=100),
    retries=3,
    retry_delay=timedelta(seconds=0),
)
# Past xcom_inline_limit without results_path: the outbox holds the ids, the send goes on.
sql_outbox_no_results_path = _outbox_send(
    "cascade_sql_outbox_no_results_path", mark_sent_sql=MARK_SENT
)
# ... and with no outbox either: nothing could hold the ids, so nothing is sent.
sql_no_write_back = _outbox_send("cascade_sql_no_write_back")
dry_run = _outbox_send(
    "cascade_dry_run", dry_run=True, results=CascadeResults(xcom_inline_limit=100_000)
)
capped = _outbox_send(
    "cascade_capped", mark_sent_sql=MARK_SENT, guardrails=CascadeGuardrails(max_messages=500)
)
deduped = _outbox_send(
    "cascade_deduped",
    mark_sent_sql=MARK_SENT,
    guardrails=CascadeGuardrails(dedupe="phone"),
    requests=CascadeRequests(batch_size=4),
)
# Opted-out numbers in a table of the same database and in a list; repeats; write-back.
guarded = _outbox_send(
    "cascade_guarded",
    mark_sent_sql=MARK_SENT,
    guardrails=CascadeGuardrails(
        dedupe="phone",
        suppress=Suppression(sql="SELECT phone FROM optouts", phones=["00380 67 000 0002"]),
    ),
    requests=CascadeRequests(batch_size=4),
)
guarded_dry_run = _outbox_send(
    "cascade_guarded_dry_run",
    dry_run=True,
    guardrails=CascadeGuardrails(
        dedupe="phone",
        suppress=Suppression(sql="SELECT phone FROM optouts"),
        # always quiet: every promo would be scheduled
        quiet_hours=QuietHours("00:00", "23:59"),
    ),
)


def _quiet_window_around_now(**options: Any) -> CascadeGuardrails:
    """Quiet hours from three hours before to three hours after this parse, Kyiv time."""
    now = datetime.now(ZoneInfo("Europe/Kyiv"))
    window = (f"{now - timedelta(hours=3):%H:%M}", f"{now + timedelta(hours=3):%H:%M}")
    return CascadeGuardrails(quiet_hours=QuietHours(*window, **options))


_PROMO = {"message_type": "promo", "text": "Winter sale"}
KYIV_AND_LA = [
    {"tracking_id": "promo-kyiv-1", "to_phone": "+380671234501", **_PROMO},
    {"tracking_id": "promo-kyiv-2", "to_phone": "+380501234502", **_PROMO},
    {
        "tracking_id": "survey-kyiv",
        "to_phone": "+380671234503",
        "message_type": "viber_survey",
        "text": "Happy?",
        "survey_options": ["Yes", "No"],
    },
    {
        "tracking_id": "order-kyiv",
        "to_phone": "+380671234501",
        "message_type": "transaction",
        "text": "Order 7 confirmed",
    },
    {"tracking_id": "otp-kyiv", "to_phone": "+380501234502", "message_type": "flashcall"},
    # Ten hours behind Kyiv: outside the window, so it goes now.
    {"tracking_id": "promo-la", "to_phone": "+14155550123", **_PROMO},
]
RUSSIAN_PROMO = {"tracking_id": "promo-ru", "to_phone": "+79161234567", **_PROMO}


def _quiet_send(dag_id: str, messages: list[dict[str, Any]], **send_kwargs: Any) -> DAG:
    with DAG(dag_id, schedule=None, start_date=START) as dag:
        CascadeSendOperator(task_id="send", messages=messages, from_name="Shop", **send_kwargs)
    return dag


quiet_scheduled = _quiet_send(
    "cascade_quiet_scheduled", KYIV_AND_LA, guardrails=_quiet_window_around_now()
)
quiet_skipped = _quiet_send(
    "cascade_quiet_skipped", KYIV_AND_LA, guardrails=_quiet_window_around_now(policy="skip")
)
# Eight allowed hours a day: the sixteen zones of a Russian mobile (UTC+2 to UTC+12) share none.
quiet_russian = _quiet_send(
    "cascade_quiet_russian",
    [RUSSIAN_PROMO],
    guardrails=CascadeGuardrails(quiet_hours=QuietHours("18:00", "10:00")),
)
quiet_russian_moscow = _quiet_send(
    "cascade_quiet_russian_moscow",
    [RUSSIAN_PROMO],
    guardrails=CascadeGuardrails(
        quiet_hours=QuietHours("18:00", "10:00", zones={"7": "Europe/Moscow"})
    ),
)


def _retrying(dag_id: str, on_uncertain: str) -> DAG:
    with DAG(dag_id, schedule=None, start_date=START) as dag:

        @task(show_return_value_in_logs=False)
        def build_batch() -> list[dict[str, object]]:
            return [
                {"tracking_id": f"retry-{n}", "to_phone": f"+38050{n:07d}", "text": "Your code"}
                for n in range(500)
            ]

        CascadeSendOperator(
            task_id="send",
            messages=build_batch(),
            from_name="App",
            message_type="transaction",
            on_uncertain=on_uncertain,
            # one at a time: the sandbox's fault script counts requests in arrival order
            requests=CascadeRequests(batch_size=100, max_in_flight=1, **FAST_RETRIES),
            retries=2,
            retry_delay=timedelta(seconds=0),
        )
    return dag


retry_resend = _retrying("cascade_retry_resend", "resend")
retry_skip = _retrying("cascade_retry_skip", "skip")


def _send_and_track(dag_id: str, count: int = 10, **sensor_kwargs: Any) -> DAG:
    with DAG(dag_id, schedule=None, start_date=START) as dag:

        @task(show_return_value_in_logs=False)
        def build_ten() -> list[dict[str, object]]:
            # The sandbox decides by the last digit: 0 undeliverable, 1-9 a channel each.
            return [
                {"tracking_id": f"track-{n}", "to_phone": f"+38050{n:07d}", "text": "Hello"}
                for n in range(count)
            ]

        send = CascadeSendOperator(
            task_id="send", messages=build_ten(), from_name="Shop", message_type="transaction"
        )
        sensor_kwargs.setdefault("poke_interval", 0.3)
        sensor_kwargs.setdefault("timeout", 60)
        CascadeDeliverySensor(task_id="wait", send_result=send.output, **sensor_kwargs)
    return dag


track_poke = _send_and_track("cascade_track_poke", mode="poke")
# Polled against a sandbox that limits status look-ups (429s): slowed down, not skipped.
track_rate_limited = _send_and_track(
    "cascade_track_rate_limited", mode="poke", max_requests_per_second=50
)
track_deferred = _send_and_track("cascade_track_deferred", deferrable=True)
# More messages than a trigger's kwargs may hold: the working set goes to results_path.
track_many_deferred = _send_and_track(
    "cascade_track_many_deferred",
    count=2_000,
    deferrable=True,
    timeout=180,  # seconds in a quiet run; room for a loaded CI machine
    max_requests_per_second=400,
    results=CascadeResults(
        path="file:///tmp/cascade-test-results/{{ run_id }}/delivery.jsonl",
        xcom_inline_limit=100_000,
    ),
)
# A campaign's worth of look-ups against a slow status endpoint: concurrency holds the pace.
track_campaign = _send_and_track(
    "cascade_track_campaign",
    count=3_000,
    deferrable=True,
    max_requests_per_second=300,
    # The test's own bound is 150 s (a serial poller needs 300 s): room for three lanes on a
    # loaded 2-core CI machine; benchmarks/delivery_wait.py measures the pace itself.
    timeout=140,
    results=CascadeResults(path="file:///tmp/cascade-test-results/{{ run_id }}/campaign.jsonl"),
)
track_all_delivered = _send_and_track("cascade_track_all_delivered", success_when="all_delivered")


with DAG("cascade_track_timeout", schedule=None, start_date=START) as track_timeout:
    CascadeDeliverySensor(
        task_id="wait",
        message_ids=["00000000-0000-0000-0000-00000000beef"],
        poke_interval=0.2,
        timeout=1,
    )


with DAG(
    "cascade_track_timeout_deferred", schedule=None, start_date=START
) as track_timeout_deferred:
    CascadeDeliverySensor(
        task_id="wait",
        message_ids=["00000000-0000-0000-0000-00000000beef"],
        poke_interval=0.2,
        timeout=1,
        deferrable=True,
    )


with DAG("cascade_failure_alert", schedule=None, start_date=START) as failure_alert:

    @task(
        on_failure_callback=CascadeNotifier(
            to_phones=["+380501112233", "+380671112233"],
            text="{{ dag.dag_id }} failed: {{ ti.task_id }}",
            from_name="Airflow",
            route="tg_viber",
        )
    )
    def load_orders() -> None:
        raise RuntimeError("the orders table is locked")

    load_orders()


def _killable(dag_id: str, **send_kwargs: Any) -> DAG:
    """A slow multi-batch send (the tests add latency) that a test SIGKILLs mid-way."""
    in_flight = send_kwargs.pop("max_in_flight", 1)
    with DAG(dag_id, schedule=None, start_date=START) as dag:
        CascadeSendOperator(
            task_id="send",
            from_name="App",
            message_type="transaction",
            requests=CascadeRequests(batch_size=100, max_in_flight=in_flight),
            **send_kwargs,
        )
    return dag


KILLED_MESSAGES = [
    {"tracking_id": f"kill-{n}", "to_phone": f"+38050{n:07d}", "text": "Your code"}
    for n in range(2_000)
]
killed_skip = _killable("cascade_killed_skip", messages=KILLED_MESSAGES, on_uncertain="skip")
killed_resend = _killable("cascade_killed_resend", messages=KILLED_MESSAGES)
# Four requests at once: up to four batches at risk when the worker dies (ledger invariant 3).
killed_skip_wide = _killable(
    "cascade_killed_skip_wide", messages=KILLED_MESSAGES, on_uncertain="skip", max_in_flight=4
)
killed_resend_wide = _killable(
    "cascade_killed_resend_wide", messages=KILLED_MESSAGES, max_in_flight=4
)
killed_outbox = _killable(
    "cascade_killed_outbox",
    sql=OUTBOX_SELECT,
    sql_conn_id="cascade_test_sqlite",
    mark_sent_sql=MARK_SENT,
)


# The production databases: the same outbox on PostgreSQL and MariaDB/MySQL (both drivers
# take %(name)s parameters). Connections cascade_test_postgres / cascade_test_mysql.
DB_OUTBOX_SELECT = (
    "SELECT id, to_phone, text, ttl, scheduled_sent, survey_options, message_type"
    " FROM cascade_outbox WHERE message_id IS NULL ORDER BY id"
)
DB_MARK_SENT = (
    "UPDATE cascade_outbox SET message_id = %(message_id)s, sent_at = %(sent_at)s"
    " WHERE id = %(tracking_id)s"
)


def _db_outbox(database: str, suffix: str = "", max_in_flight: int = 8, **send_kwargs: Any) -> DAG:
    with DAG(f"cascade_{database}_outbox{suffix}", schedule=None, start_date=START) as dag:
        CascadeSendOperator(
            task_id="send",
            sql=DB_OUTBOX_SELECT,
            sql_conn_id=f"cascade_test_{database}",
            **{
                "mark_sent_sql": DB_MARK_SENT,
                "from_name": "YourBrand",
                "message_type": "promo",
                "results": CascadeResults(
                    path="file:///tmp/cascade-test-results/{{ dag.dag_id }}-{{ run_id }}.jsonl"
                ),
                "requests": CascadeRequests(max_in_flight=max_in_flight, **FAST_RETRIES),
                "retries": 1,
                "retry_delay": timedelta(seconds=0),
                **send_kwargs,
            },
        )
    return dag


postgres_outbox = _db_outbox("postgres")
mysql_outbox = _db_outbox("mysql")
# One request at a time: the sandbox's fault script then hits a known batch.
postgres_outbox_serial = _db_outbox("postgres", "_serial", max_in_flight=1)
mysql_outbox_serial = _db_outbox("mysql", "_serial", max_in_flight=1)


# Opt-outs in a table of the same database, repeated numbers sent once.
def _guards() -> dict[str, Any]:
    return {
        "guardrails": CascadeGuardrails(
            dedupe="phone", suppress=Suppression(sql="SELECT phone FROM cascade_optouts")
        ),
        "requests": CascadeRequests(batch_size=4, **FAST_RETRIES),
    }


postgres_guarded = _db_outbox("postgres", "_guarded", **_guards())
mysql_guarded = _db_outbox("mysql", "_guarded", **_guards())
# The SQLite example's write-back (":name") on PostgreSQL: fails before anything is sent.
postgres_sqlite_style = _db_outbox(
    "postgres", "_sqlite_style", mark_sent_sql=DB_MARK_SENT.replace("%(", ":").replace(")s", "")
)


# A 20,000-message campaign, offloaded, whose delivery is estimated from 400 look-ups.
with DAG("cascade_track_sampled", schedule=None, start_date=START) as track_sampled:
    sampled_send = CascadeSendOperator(
        task_id="send",
        messages=[
            {"tracking_id": f"sample-{n}", "to_phone": f"+38050{n:07d}", "text": "Hi"}
            for n in range(20_000)
        ],
        from_name="Shop",
        message_type="promo",
        results=CascadeResults(path="file:///tmp/cascade-test-results/{{ run_id }}/sampled.jsonl"),
    )
    CascadeDeliverySensor(
        task_id="wait",
        send_result=sampled_send.output,
        sample=CascadeSample(size=400, seed=3),
        poke_interval=0.5,
        timeout=120,
        max_requests_per_second=400,
    )


# Delivery written back to the outbox, poke and deferrable, on any common-sql connection.
MARK_DELIVERED = (
    "UPDATE outbox SET delivery_status = :status, delivered_by = :channel"
    " WHERE message_id = :message_id"
)


def _outbox_tracked(
    dag_id: str, conn_id: str, table: str, marks: tuple[str, str], **sensor_kwargs: Any
) -> DAG:
    mark_sent_sql, mark_delivered_sql = marks
    with DAG(dag_id, schedule=None, start_date=START) as dag:
        send = CascadeSendOperator(
            task_id="send",
            sql=f"SELECT id, to_phone, text FROM {table} WHERE message_id IS NULL ORDER BY id",
            sql_conn_id=conn_id,
            mark_sent_sql=mark_sent_sql,
            from_name="Shop",
            message_type="transaction",
        )
        CascadeDeliverySensor(
            task_id="wait",
            send_result=send.output,
            write_back=CascadeWriteBack(sql=mark_delivered_sql, conn_id=conn_id),
            poke_interval=0.3,
            timeout=60,
            **sensor_kwargs,
        )
    return dag


SQLITE_MARKS = (MARK_SENT, MARK_DELIVERED)
outbox_tracked = _outbox_tracked(
    "cascade_outbox_tracked", "cascade_test_sqlite", "outbox", SQLITE_MARKS
)
outbox_tracked_deferred = _outbox_tracked(
    "cascade_outbox_tracked_deferred",
    "cascade_test_sqlite",
    "outbox",
    SQLITE_MARKS,
    deferrable=True,
)
DB_MARKS = (
    DB_MARK_SENT,
    "UPDATE cascade_outbox SET delivery_status = %(status)s, delivered_by = %(channel)s"
    " WHERE message_id = %(message_id)s",
)
postgres_tracked = _outbox_tracked(
    "cascade_postgres_tracked", "cascade_test_postgres", "cascade_outbox", DB_MARKS
)
mysql_tracked = _outbox_tracked(
    "cascade_mysql_tracked", "cascade_test_mysql", "cascade_outbox", DB_MARKS
)


# Four messages now and a promo two hours ahead; the wait settles the promo as scheduled.
with DAG("cascade_track_scheduled", schedule=None, start_date=START) as track_scheduled:
    mixed = CascadeSendOperator(
        task_id="send",
        messages=[
            *(
                {"tracking_id": f"now-{n}", "to_phone": f"+38050000000{n}", "text": "Hi"}
                for n in (1, 2, 3, 4)
            ),
            {
                "tracking_id": "promo-later",
                "to_phone": "+380500000005",
                "text": "Sale tonight",
                "scheduled_sent": "{{ (macros.datetime.utcnow() + macros.timedelta(hours=2))"
                ".strftime('%Y-%m-%dT%H:%M:%SZ') }}",
            },
        ],
        from_name="Shop",
        message_type="promo",
    )
    CascadeDeliverySensor(
        task_id="wait",
        send_result=mixed.output,
        wait_for_scheduled=False,
        poke_interval=0.3,
        timeout=60,
    )


# Three partitions, two at a time: each paces at half the connection's budget.
with DAG("cascade_mapped_budget", schedule=None, start_date=START) as mapped_budget:
    CascadeSendOperator.partial(
        task_id="send_partition",
        from_name="Shop",
        message_type="transaction",
        max_active_tis_per_dagrun=2,
    ).expand(
        messages=[
            [
                {"tracking_id": f"p{p}-{n}", "to_phone": f"+38050{p}{n:06d}", "text": "Hi"}
                for n in range(5)
            ]
            for p in range(3)
        ]
    )


# An upstream output inside an argument group: a dependency, resolved at run time.
with DAG("cascade_suppress_from_upstream", schedule=None, start_date=START) as suppress_upstream:

    @task(show_return_value_in_logs=False)
    def opted_out() -> list[str]:
        return ["+380500000001"]

    CascadeSendOperator(
        task_id="send",
        messages=[
            {"tracking_id": f"up-{n}", "to_phone": f"+38050{n:07d}", "text": "Hi"} for n in range(3)
        ],
        from_name="Shop",
        message_type="transaction",
        guardrails=CascadeGuardrails(suppress=Suppression(phones=opted_out())),
    )
