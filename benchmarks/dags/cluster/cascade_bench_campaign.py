"""The 1,000,000-message campaign benchmarks/cluster_campaign.py runs on the cluster harness:
``example_dags/large_campaign_mapped.py`` on PostgreSQL. The audience (``bench_audience``
in the ``cascade_bench_pg`` database) is split into 8 id ranges, one mapped send each, 4
at once over the two Celery workers, each at a quarter of the connection's budget; every
accepted row is written back (``marks`` counts how often, ``marked_at`` says when); then a
sampled deferrable wait on each partition (125 look-ups each: 1,000 in all).

Two DAGs, one per connection: ``cascade_bench_campaign_unpaced`` (no budget to keep) and
``cascade_bench_campaign_paced`` (the published limit, 100 requests/s, on the connection).
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.providers.common.compat.sdk import dag, task

from airflow_provider_cascade.delivery.options import CascadeSample
from airflow_provider_cascade.operators.cascade import CascadeSendOperator
from airflow_provider_cascade.partitions import id_ranges
from airflow_provider_cascade.send.options import CascadeRequests, CascadeResults
from airflow_provider_cascade.sensors.cascade import CascadeDeliverySensor

DB = "cascade_bench_pg"
PARTITIONS = 8
AT_ONCE = 4  # every worker slot of the harness (2 workers, concurrency 2)
#: Messages per request: the published budget is in requests/s, so 100 a request makes
#: 100 requests/s a budget of 10,000 messages/s, one this machine can reach.
BATCH_SIZE = 100
SAMPLE = 1_000
RESULTS = "file:///tmp/cascade-bench/campaign/{{ run_id }}/{{ ti.map_index }}.jsonl"


def _campaign(pace: str) -> Any:
    @dag(
        dag_id=f"cascade_bench_campaign_{pace}",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
        catchup=False,
        max_active_runs=1,
    )
    def campaign() -> None:
        @task
        def partition() -> list[dict[str, int]]:
            return id_ranges(DB, "bench_audience", parts=PARTITIONS)

        sends = CascadeSendOperator.partial(
            task_id="send_partition",
            cascade_conn_id=f"cascade_{pace}",
            sql=(
                "SELECT id, to_phone, text FROM bench_audience"
                " WHERE id BETWEEN %(low)s AND %(high)s AND message_id IS NULL ORDER BY id"
            ),
            sql_conn_id=DB,
            mark_sent_sql=(
                "UPDATE bench_audience SET message_id = %(message_id)s, sent_at = %(sent_at)s,"
                " marks = marks + 1, marked_at = clock_timestamp() WHERE id = %(tracking_id)s"
            ),
            from_name="YourShop",
            message_type="promo",
            requests=CascadeRequests(batch_size=BATCH_SIZE),
            results=CascadeResults(path=RESULTS),
            max_active_tis_per_dagrun=AT_ONCE,
        ).expand(parameters=partition())

        CascadeDeliverySensor.partial(
            task_id="estimate",
            cascade_conn_id=f"cascade_{pace}",
            deferrable=True,
            sample=CascadeSample(size=SAMPLE // PARTITIONS),
            poke_interval=1,
            timeout=1800,
        ).expand(send_result=sends.output)

    return campaign()


cascade_bench_campaign_unpaced = _campaign("unpaced")
cascade_bench_campaign_paced = _campaign("paced")
