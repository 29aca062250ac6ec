from airflow_provider_cascade.operators.cascade import CascadeSendOperator
from airflow_provider_cascade.send import (
    CascadeGuardrails,
    CascadeRequests,
    CascadeResults,
    QuietHours,
    Suppression,
)

CascadeSendOperator(
    task_id="send_promo",
    sql="SELECT id, to_phone, text FROM outbox WHERE message_id IS NULL ORDER BY id",
    sql_conn_id="shop_db",
    from_name="YourBrand",
    message_type="promo",
    guardrails=CascadeGuardrails(
        max_messages=200_000,
        dedupe="phone",
        suppress=Suppression(sql="SELECT phone FROM opt_outs"),
        quiet_hours=QuietHours("21:00", "08:00"),
    ),
    requests=CascadeRequests(batch_size=500, max_requests_per_second=40),
    results=CascadeResults(path="s3://my-bucket/cascade/{{ run_id }}.jsonl"),
)
