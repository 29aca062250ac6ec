"""A large campaign spread over Airflow's own workers: the audience is split into id ranges,
and one mapped ``CascadeSendOperator`` task instance sends each range. On the Celery or
Kubernetes executor the partitions run in parallel on different workers; each streams its
rows, writes back what was accepted, and resumes on retry without re-sending.

Run it with ``audience_size`` 1,000,000 and ``partition_size`` 50,000 for a real campaign;
the defaults are small so that it runs in seconds."""

from __future__ import annotations

import pendulum
from airflow.providers.common.compat.sdk import Param, dag, task
from airflow.providers.sqlite.hooks.sqlite import SqliteHook

from airflow_provider_cascade.operators.cascade import CascadeSendOperator
from airflow_provider_cascade.partitions import id_ranges
from airflow_provider_cascade.results import CascadeSendResult
from airflow_provider_cascade.send import CascadeResults

AUDIENCE_DB = "cascade_outbox_db"
# Shared storage in production (every worker writes there), e.g. "s3://my-bucket/cascade".
RESULTS = "file:///tmp/cascade-results"


@dag(
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["cascade"],
    params={
        "audience_size": Param(5_000, type="integer", minimum=1),
        "partition_size": Param(1_000, type="integer", minimum=1),
    },
)
def large_campaign_mapped() -> None:
    @task
    def prepare_audience(params: dict[str, int]) -> None:
        """Stand-in for your CRM export: the audience table, filled once."""
        hook = SqliteHook(sqlite_conn_id=AUDIENCE_DB)
        hook.run(
            "CREATE TABLE IF NOT EXISTS audience ("
            " id INTEGER PRIMARY KEY, to_phone TEXT NOT NULL, text TEXT NOT NULL,"
            " message_id TEXT, sent_at TEXT)"
        )
        if hook.get_first("SELECT COUNT(*) FROM audience")[0] == 0:
            hook.insert_rows(
                "audience",
                (
                    (n, f"+38099{n:07d}", "Black Friday starts now: up to -50% in the app.")
                    for n in range(1, params["audience_size"] + 1)
                ),
                target_fields=["id", "to_phone", "text"],
                commit_every=10_000,
            )

    @task
    def partition(params: dict[str, int]) -> list[dict[str, int]]:
        """Id ranges of ``partition_size`` rows: one mapped send each."""
        return id_ranges(AUDIENCE_DB, "audience", size=params["partition_size"])

    ranges = partition()
    prepare_audience() >> ranges

    sends = CascadeSendOperator.partial(
        task_id="send_partition",
        sql=(
            "SELECT id, to_phone, text FROM audience"
            " WHERE id BETWEEN :low AND :high AND message_id IS NULL ORDER BY id"
        ),
        sql_conn_id=AUDIENCE_DB,
        mark_sent_sql=(
            "UPDATE audience SET message_id = :message_id, sent_at = :sent_at"
            " WHERE id = :tracking_id"
        ),
        from_name="YourShop",
        message_type="promo",
        # Three partitions send at once; each paces at a third of the connection's
        # max_requests_per_second (the account's budget), with no arithmetic here.
        max_active_tis_per_dagrun=3,
        # Past 10,000 messages a partition's id mapping goes here instead of XCom.
        results=CascadeResults(path=RESULTS + "/{{ run_id }}/{{ ti.map_index }}.jsonl"),
    ).expand(parameters=ranges)

    @task
    def total(results: list[dict[str, object]]) -> int:
        sent = sum(CascadeSendResult.from_xcom(result).sent for result in results)
        print(f"campaign sent {sent} message(s) in {len(results)} partition(s)")
        return sent

    total(sends.output)


large_campaign_mapped()
