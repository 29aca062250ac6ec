from airflow_provider_cascade.hooks.cascade import CascadeHook
from airflow_provider_cascade.send.campaign import send_messages


def send_one():
    sent = send_messages(
        [
            {
                "tracking_id": "order-12345",
                "from_name": "YourStore",
                "to_phone": "+380501234567",
                "message_type": "transaction",
                "text": "Your order #12345 is confirmed.",
            }
        ],
        cascade_conn_id="cascade_default",
        route="tg_viber",
    )
    return CascadeHook(cascade_conn_id="cascade_default").get_message_status(sent[0].message_id)
