from airflow_provider_cascade.operators.cascade import CascadeSendOperator

send_campaign = CascadeSendOperator(
    task_id="send_campaign",
    sql="SELECT id, to_phone, text FROM promo_outbox WHERE message_id IS NULL ORDER BY id",
    sql_conn_id="my_postgres",
    mark_sent_sql="UPDATE promo_outbox SET message_id = %(message_id)s, sent_at = %(sent_at)s"
    " WHERE id = %(tracking_id)s",
    from_name="YourBrand",
    message_type="promo",
    scheduled_sent="{{ data_interval_end.add(hours=2) }}",
)
