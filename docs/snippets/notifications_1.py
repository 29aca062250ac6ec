from airflow_provider_cascade.notifications.cascade import CascadeNotifier

page_on_call = CascadeNotifier(
    to_phones=["+380501234567"],
    text="{{ dag.dag_id }}.{{ ti.task_id }} failed",
    from_name="Airflow",
    route="tg_viber",
)
# @task(on_failure_callback=page_on_call), DAG(on_failure_callback=...), deadline callbacks...
