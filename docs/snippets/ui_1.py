from airflow.providers.common.compat.sdk import Asset, dag, task

WINTER_PROMO = Asset("cascade://campaigns/winter_promo")


@dag(schedule=[WINTER_PROMO])
def after_the_promo():
    @task
    def size_the_delivery_check(triggering_asset_events=None):
        [event] = triggering_asset_events[WINTER_PROMO]
        return event.extra["sent"]  # also rejected, in_doubt, suppressed, results_path

    size_the_delivery_check()
