from airflow_provider_cascade.results import CascadeSendResult

result = CascadeSendResult.load(
    {
        "route": "standard",
        "sent": 1,
        "messages": [
            {"message_id": "3fa85f64-5717-4562-b3fc-2c963f66afa6", "tracking_id": "order-1"}
        ],
    }
)
for sent in result.iter_messages():  # streams from results_path when offloaded
    print(sent.tracking_id, sent.message_id)
