"""The campaign tests/chaos fails one component of the deployment under: 100,000 rows of
``chaos_outbox`` (PostgreSQL) in 8 mapped partitions, 4 sending at once (every worker slot
of the harness: the other 4 wait queued), written back by ``mark_sent_sql``; then a
sampled deferrable wait on each partition's messages, in the triggerer.

One DAG per ``on_uncertain`` mode: ``chaos_skip`` and ``chaos_resend``. Connections come
from the harness: ``cascade_default`` (its sandbox, 40 requests/s) and
``cascade_cluster_pg`` (the outbox's database, reached directly: when the metadata
database's proxy is cut, the outbox stays reachable).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import dag, task

from airflow_provider_cascade.delivery.options import CascadeSample
from airflow_provider_cascade.operators.cascade import CascadeSendOperator
from airflow_provider_cascade.partitions import id_ranges
from airflow_provider_cascade.send.options import CascadeRequests, CascadeResults
from airflow_provider_cascade.sensors.cascade import CascadeDeliverySensor

DB = "cascade_cluster_pg"
PARTITIONS = 8
#: Results off XCom (12,500 messages a partition), where every worker and the triggerer
#: read them: one machine here, shared storage in production.
RESULTS = "file:///tmp/cascade-chaos/{{ run_id }}/{{ ti.map_index }}.jsonl"


def _campaign(on_uncertain: str) -> Any:
    @dag(
        dag_id=f"chaos_{on_uncertain}",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
        # A try the fault failed is tried again soon; five tries outlast every fault.
        default_args={"retries": 4, "retry_delay": timedelta(seconds=5)},
    )
    def chaos() -> None:
        @task
        def partitions() -> list[dict[str, int]]:
            return id_ranges(DB, "chaos_outbox", parts=PARTITIONS)

        sends = CascadeSendOperator.partial(
            task_id="send_partition",
            sql=(
                "SELECT id, to_phone, text FROM chaos_outbox"
                " WHERE id BETWEEN %(low)s AND %(high)s AND message_id IS NULL ORDER BY id"
            ),
            sql_conn_id=DB,
            mark_sent_sql=(
                "UPDATE chaos_outbox SET message_id = %(message_id)s, sent_at = %(sent_at)s"
                " WHERE id = %(tracking_id)s"
            ),
            from_name="Shop",
            message_type="promo",
            on_uncertain=on_uncertain,
            # A hanging service is given up on after 5 s: the batch is then in doubt.
            requests=CascadeRequests(batch_size=100, timeout=5, retry_wait=0.5),
            results=CascadeResults(path=RESULTS),
            max_active_tis_per_dagrun=4,
        ).expand(parameters=partitions())

        CascadeDeliverySensor.partial(
            task_id="wait",
            deferrable=True,
            sample=CascadeSample(size=100),
            poke_interval=1,
            timeout=600,
        ).expand(send_result=sends.output)

    return chaos()


chaos_skip = _campaign("skip")
chaos_resend = _campaign("resend")
