"""``CascadePlugin``: the provider's views in the Airflow UI (3.1+), registered through
``get_provider_info()["plugins"]``.

A "Cascade" tab on every task instance page (a send's or a delivery check's figures and
charts; other tasks say they have none) and on every run page (the run's Cascade tasks).
Before Airflow 3.1 the UI has no plugin views: the tabs are absent there and nothing else
changes (docs/compatibility.md).

The replies receiver (``POST /cascade/replies/{conn_id}?token=...``) is served by the API
server from Airflow 3.0; on 2.11 it runs on its own (``cascade-replies``).
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from airflow_provider_cascade.version_compat import AIRFLOW_V_3_0_PLUS, AIRFLOW_V_3_1_PLUS

#: Where the views' app is mounted on the API server.
URL_PREFIX = "/cascade"


def _views() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if not AIRFLOW_V_3_0_PLUS:
        return [], []
    if not AIRFLOW_V_3_1_PLUS:
        from airflow_provider_cascade.replies.receiver import create_app

        return [{"app": create_app(prefix=""), "url_prefix": URL_PREFIX, "name": "Cascade"}], []
    from airflow_provider_cascade.plugins.report_view import app

    fastapi_apps = [{"app": app, "url_prefix": URL_PREFIX, "name": "Cascade reports"}]
    external_views = [
        {
            "name": "Cascade",
            "href": URL_PREFIX + "/ti/{DAG_ID}/{RUN_ID}/{TASK_ID}?map_index={MAP_INDEX}",
            "destination": "task_instance",
            "url_route": "cascade",
        },
        {
            "name": "Cascade",
            "href": URL_PREFIX + "/run/{DAG_ID}/{RUN_ID}",
            "destination": "dag_run",
            "url_route": "cascade-run",
        },
    ]
    return fastapi_apps, external_views


class CascadePlugin(AirflowPlugin):
    """The SMSBAT Cascade provider's UI views."""

    name = "cascade"
    fastapi_apps, external_views = _views()
