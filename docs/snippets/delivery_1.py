from airflow.providers.common.compat.sdk import DAG

from airflow_provider_cascade.operators.cascade import CascadeSendOperator
from airflow_provider_cascade.sensors.cascade import CascadeDeliverySensor

with DAG("send_and_wait", schedule=None):
    send = CascadeSendOperator(
        task_id="send",
        messages=[{"tracking_id": "order-1", "to_phone": "+380501234567", "text": "Confirmed"}],
        from_name="Shop",
        message_type="transaction",
    )
    wait = CascadeDeliverySensor(task_id="wait", send_result=send.output, deferrable=True)
