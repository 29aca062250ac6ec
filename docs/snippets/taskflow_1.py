from collections.abc import Iterator

import pendulum
from airflow.providers.common.compat.sdk import dag, task


@dag(schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False)
def shipping() -> None:
    @task.cascade(
        from_name="YourShop",
        message_type="transaction",
        sql_conn_id="shop_db",
        mark_sent_sql="UPDATE orders SET message_id = :message_id WHERE id = :tracking_id",
    )
    def shipping_notices(ds=None) -> Iterator[dict]:
        for order in range(1, 51):  # e.g. a query's rows, read as they come
            yield {"tracking_id": order, "to_phone": f"+38063555{order:04d}", "text": "Shipped"}

    shipping_notices()


shipping()
