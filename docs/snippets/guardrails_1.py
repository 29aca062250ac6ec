from airflow_provider_cascade.operators.cascade import CascadeSendOperator
from airflow_provider_cascade.send import CascadeGuardrails, QuietHours, Suppression

CascadeSendOperator(
    task_id="send_promo",
    sql="SELECT id, to_phone, text FROM outbox WHERE message_id IS NULL",
    sql_conn_id="shop_db",
    message_type="promo",
    from_name="YourBrand",
    on_invalid="skip",
    guardrails=CascadeGuardrails(
        max_messages=200_000,  # a query missing its WHERE fails before sending
        max_reject_ratio=0.05,  # stop when more than 5% of the first 100+ are bad
        dedupe="phone",  # one message per recipient
        suppress=Suppression(sql="SELECT phone FROM opt_outs UNION SELECT phone FROM complaints"),
        quiet_hours=QuietHours("21:00", "08:00"),  # promos wait for the recipient's morning
    ),
    mark_sent_sql="UPDATE outbox SET message_id = %(message_id)s WHERE id = %(tracking_id)s",
)
