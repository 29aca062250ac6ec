from airflow.providers.common.compat.sdk import DAG, task

from airflow_provider_cascade.operators.cascade import CascadeSendOperator
from airflow_provider_cascade.partitions import id_ranges
from airflow_provider_cascade.send import CascadeResults

with DAG("big_campaign", schedule=None):

    @task
    def ranges() -> list[dict[str, int]]:
        # [{"low": 1, "high": 50_000}, {"low": 50_001, "high": 100_000}, ...]
        return id_ranges("audience_db", "audience", size=50_000)

    sends = CascadeSendOperator.partial(
        task_id="send_partition",
        sql="SELECT id, to_phone, text FROM audience WHERE id BETWEEN :low AND :high"
        " AND message_id IS NULL ORDER BY id",
        sql_conn_id="audience_db",
        mark_sent_sql="UPDATE audience SET message_id = :message_id WHERE id = :tracking_id",
        from_name="YourShop",
        message_type="promo",
        max_active_tis_per_dagrun=3,  # three partitions at once share the account's budget
        results=CascadeResults(path="s3://my-bucket/cascade/{{ run_id }}/{{ ti.map_index }}.jsonl"),
    ).expand(parameters=ranges())
