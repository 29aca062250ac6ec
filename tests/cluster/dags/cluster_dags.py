"""The DAGs tests/cluster runs on the real deployment (scripts/cluster.sh, Celery workers).

Connections come from the harness: ``cascade_default`` (its sandbox) and
``cascade_cluster_pg`` (PostgreSQL, set by the tests and passed to every process), and
``cascade_replies`` (the sandbox again, with a replies token; replies stored on
``cascade_cluster_pg``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import Asset, dag, task

from airflow_provider_cascade.assets.replies import replies_asset
from airflow_provider_cascade.notifications.cascade import CascadeNotifier
from airflow_provider_cascade.operators.cascade import CascadeSendOperator
from airflow_provider_cascade.partitions import id_ranges
from airflow_provider_cascade.send import CascadeGuardrails, Suppression
from airflow_provider_cascade.send.options import CascadeRequests
from airflow_provider_cascade.sensors.cascade import CascadeDeliverySensor

DB = "cascade_cluster_pg"
START = pendulum.datetime(2026, 1, 1, tz="UTC")
MARK_SENT = (
    "UPDATE {table} SET message_id = %(message_id)s, sent_at = %(sent_at)s"
    " WHERE id = %(tracking_id)s"
)
OUTBOX_SELECT = "SELECT id, to_phone, text FROM cluster_outbox WHERE message_id IS NULL ORDER BY id"
FAST_RETRIES = {"retry_wait": 0.2, "max_retries": 1}


@dag(schedule=None, start_date=START, catchup=False, max_active_runs=1)
def cluster_mapped_campaign() -> None:
    """60,000 rows of ``cluster_audience`` in 6 partitions; 3 send at once, each at a
    third of the connection's budget."""

    @task
    def partitions() -> list[dict[str, int]]:
        return id_ranges(DB, "cluster_audience", parts=6)

    CascadeSendOperator.partial(
        task_id="send_partition",
        sql=(
            "SELECT id, to_phone, text FROM cluster_audience"
            " WHERE id BETWEEN %(low)s AND %(high)s AND message_id IS NULL ORDER BY id"
        ),
        sql_conn_id=DB,
        mark_sent_sql=MARK_SENT.format(table="cluster_audience"),
        from_name="Shop",
        message_type="promo",
        requests=CascadeRequests(batch_size=50),
        max_active_tis_per_dagrun=3,
    ).expand(parameters=partitions())


def _outbox_send(
    max_in_flight: int, hook_retries: dict[str, Any] | None = None, **send_kwargs: Any
) -> CascadeSendOperator:
    """The unsent rows of ``cluster_outbox`` in batches of 100, written back; one retry."""
    retries = hook_retries or {}
    return CascadeSendOperator(
        task_id="send",
        sql=OUTBOX_SELECT,
        sql_conn_id=DB,
        mark_sent_sql=MARK_SENT.format(table="cluster_outbox"),
        from_name="Shop",
        message_type="promo",
        requests=CascadeRequests(batch_size=100, max_in_flight=max_in_flight, **retries),
        retries=1,
        retry_delay=timedelta(seconds=0),
        **send_kwargs,
    )


def _killable(dag_id: str, on_uncertain: str):
    @dag(dag_id=dag_id, schedule=None, start_date=START, catchup=False)
    def killable() -> None:
        """3,000 outbox rows in batches of 100, slowly (the sandbox's latency): a worker is
        killed mid-send, and the scheduler's retry finishes on the other one."""
        _outbox_send(max_in_flight=2, on_uncertain=on_uncertain)

    return killable()


cluster_killed_skip = _killable("cluster_killed_skip", "skip")
cluster_killed_resend = _killable("cluster_killed_resend", "resend")


@dag(schedule=None, start_date=START, catchup=False)
def cluster_killed_decorated() -> None:
    """As cluster_killed_skip, the messages yielded by a ``@task.cascade`` function (the
    outbox's rows, keyed by id) and written back to the outbox."""

    @task.cascade(
        task_id="send",
        sql_conn_id=DB,
        mark_sent_sql=MARK_SENT.format(table="cluster_outbox"),
        from_name="Shop",
        message_type="promo",
        on_uncertain="skip",
        requests=CascadeRequests(batch_size=100, max_in_flight=2),
        retries=1,
        retry_delay=timedelta(seconds=0),
    )
    def outbox_rows() -> Iterator[dict[str, Any]]:
        for n in range(1, 3_001):
            yield {"id": n, "to_phone": f"+38067{n:07d}", "text": f"Winter sale, customer {n}"}

    outbox_rows()


cluster_killed_decorated()


#: Who the missed deadline pages.
ONCALL = "+380501110002"


def _missed_deadline() -> Any:
    from airflow.sdk import AsyncCallback, DeadlineAlert, DeadlineReference

    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(seconds=10),
        callback=AsyncCallback(
            CascadeNotifier,
            kwargs={
                "to_phones": [ONCALL],
                "from_name": "Airflow",
                "text": "{{ dag_run.dag_id }}: delivery not done in time",
            },
        ),
    )


@dag(schedule=None, start_date=START, catchup=False, deadline=_missed_deadline())
def cluster_missed_deadline() -> None:
    """A campaign whose wait outlasts its deadline (10 s after the run was queued): the
    scheduler notices, the triggerer awaits the notifier, the on-call phone is paged."""

    @task.cascade(from_name="Shop", message_type="transaction")
    def notices() -> Iterator[dict[str, Any]]:
        for n in range(1, 21):
            yield {"id": f"late-{n}", "to_phone": f"+38063555{n:04d}", "text": "Shipped"}

    @task
    def slow_wait(result: dict[str, Any]) -> int:
        time.sleep(20)  # a wait that takes longer than the deadline allows
        return int(result["sent"])

    slow_wait(notices())


cluster_missed_deadline()


@dag(schedule=None, start_date=START, catchup=False)
def cluster_retried_by_scheduler() -> None:
    """A batch answered 500 until the hook gives up: the task fails, the scheduler retries."""
    _outbox_send(max_in_flight=1, hook_retries=FAST_RETRIES)


@dag(schedule=None, start_date=START, catchup=False)
def cluster_deferred_delivery() -> None:
    """Twenty messages, then their delivery awaited in the triggerer."""
    send = CascadeSendOperator(
        task_id="send",
        messages=[
            {"tracking_id": f"deferred-{n}", "to_phone": f"+38050{n:07d}", "text": "Hi"}
            for n in range(1, 21)
        ],
        from_name="Shop",
        message_type="transaction",
    )
    CascadeDeliverySensor(
        task_id="wait_for_delivery",
        send_result=send.output,
        deferrable=True,
        poke_interval=1,
        timeout=300,
    )


@dag(schedule=None, start_date=START, catchup=False)
def cluster_four_waits() -> None:
    """Four deferrable waits at once on one connection: they share its status budget."""
    send = CascadeSendOperator(
        task_id="send",
        messages=[
            {"tracking_id": f"shared-{n}", "to_phone": f"+38050{n:07d}", "text": "Hi"}
            for n in range(1, 201)
        ],
        from_name="Shop",
        message_type="transaction",
    )
    for number in range(4):
        CascadeDeliverySensor(
            task_id=f"wait_{number}",
            send_result=send.output,
            deferrable=True,
            poke_interval=1,
            timeout=600,
        )


@dag(schedule=None, start_date=START, catchup=False)
def cluster_paged_failure() -> None:
    """A task that fails; its on_failure_callback pages the on-call phone."""

    @task(
        on_failure_callback=CascadeNotifier(
            to_phones=["+380501110001"],
            text="Airflow: {{ dag.dag_id }}.{{ ti.task_id }} failed (try {{ ti.try_number }}).",
            from_name="Airflow",
        )
    )
    def check_stock() -> None:
        raise RuntimeError("stock feed is 6 hours old")

    check_stock()


#: What the producer's send updates, and the consumer is scheduled on.
CAMPAIGN_ASSET = Asset("cascade://cluster/winter_promo")


@dag(schedule=None, start_date=START, catchup=False)
def cluster_asset_producer() -> None:
    """A send whose outlet asset's event carries its figures."""
    CascadeSendOperator(
        task_id="send",
        messages=[
            {"tracking_id": f"asset-{n}", "to_phone": f"+38063{n:07d}", "text": "Sale"}
            for n in range(1, 13)
        ]
        + [{"tracking_id": "asset-bad", "to_phone": "0630000000", "text": "Sale"}],
        from_name="Shop",
        message_type="promo",
        on_invalid="skip",
        outlets=[CAMPAIGN_ASSET],
    )


@dag(schedule=[CAMPAIGN_ASSET], start_date=START, catchup=False)
def cluster_asset_consumer() -> None:
    """Starts when the campaign was sent; returns the figures its event carried."""

    @task
    def follow_up(triggering_asset_events: Any = None) -> dict[str, Any]:
        [event] = triggering_asset_events[CAMPAIGN_ASSET]
        return dict(event.extra)

    follow_up()


#: The connection whose recipients' replies the API server receives.
REPLIES = "cascade_replies"
#: The promo's audience: +38093555000{n}.
REPLIES_AUDIENCE = [f"+38093555{n:04d}" for n in range(1, 6)]


@dag(schedule=None, start_date=START, catchup=False)
def cluster_replies_promo() -> None:
    """A promo that leaves out whoever replied STOP on ``cascade_replies``."""
    CascadeSendOperator(
        task_id="promo",
        messages=[
            # A manual run has no logical date on Airflow 3: the run id names the run.
            {
                "tracking_id": f"spring-{{{{ run_id | replace('+', '.') }}}}-{n}",
                "to_phone": phone,
                "text": "Sale",
            }
            for n, phone in enumerate(REPLIES_AUDIENCE, start=1)
        ],
        cascade_conn_id=REPLIES,
        from_name="Shop",
        message_type="promo",
        guardrails=CascadeGuardrails(suppress=Suppression(opt_outs=REPLIES)),
    )


@dag(schedule=[replies_asset(REPLIES, poll_interval=1)], start_date=START, catchup=False)
def cluster_on_replies() -> None:
    """Started by the replies asset's watcher; returns what its events said."""

    @task
    def received(triggering_asset_events: Any = None) -> list[dict[str, Any]]:
        return [dict(e.extra) for events in triggering_asset_events.values() for e in events]

    received()


cluster_replies_promo()
cluster_on_replies()
cluster_asset_producer()
cluster_asset_consumer()
cluster_mapped_campaign()
cluster_retried_by_scheduler()
cluster_deferred_delivery()
cluster_paged_failure()
cluster_four_waits()
