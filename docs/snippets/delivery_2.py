from airflow.providers.common.compat.sdk import DAG

from airflow_provider_cascade.delivery import CascadeSample, CascadeWriteBack
from airflow_provider_cascade.operators.cascade import CascadeSendOperator
from airflow_provider_cascade.send import CascadeResults
from airflow_provider_cascade.sensors.cascade import CascadeDeliverySensor

with DAG("promo_campaign", schedule=None):
    send = CascadeSendOperator(
        task_id="send",
        sql="SELECT id, to_phone, text FROM promo_outbox WHERE message_id IS NULL",
        sql_conn_id="my_postgres",
        mark_sent_sql="UPDATE promo_outbox SET message_id = %(message_id)s WHERE id = %(tracking_id)s",
        from_name="YourBrand",
        message_type="promo",
        results=CascadeResults(path="s3://my-bucket/cascade/{{ run_id }}/sent.jsonl"),
    )
    CascadeDeliverySensor(
        task_id="measure",
        send_result=send.output,
        sample=CascadeSample(size=400),  # the campaign's shares, +- a few points, in seconds
        deferrable=True,
        timeout=6 * 3600,
    )
    CascadeDeliverySensor(
        task_id="write_back",
        send_result=send.output,
        write_back=CascadeWriteBack(  # every row gets its final status and channel
            sql="UPDATE promo_outbox SET status = %(status)s, channel = %(channel)s,"
            " cost = %(cost)s WHERE message_id = %(message_id)s",
            conn_id="my_postgres",
        ),
        wait_for_scheduled=False,
        deferrable=True,
        timeout=24 * 3600,
    )
