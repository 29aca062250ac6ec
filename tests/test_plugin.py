"""The UI plugin: registered where Airflow looks, empty where the UI has no plugin views."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

from airflow_provider_cascade.get_provider_info import get_provider_info
from airflow_provider_cascade.plugins.cascade import CascadePlugin
from airflow_provider_cascade.version_compat import AIRFLOW_V_3_0_PLUS


def test_the_plugin_is_declared_as_airflow_expects():
    [declared] = get_provider_info()["plugins"]
    assert declared["plugin-class"] == "airflow_provider_cascade.plugins.cascade.CascadePlugin"
    [entry] = [e for e in entry_points(group="airflow.plugins") if e.name == "cascade"]
    assert entry.load() is CascadePlugin


@pytest.mark.compat("ui")
def test_it_adds_a_tab_to_task_instances_and_runs():
    destinations = {view["destination"]: view for view in CascadePlugin.external_views}
    assert set(destinations) == {"task_instance", "dag_run"}
    assert destinations["task_instance"]["href"].startswith("/cascade/ti/{DAG_ID}/{RUN_ID}/")
    [mounted] = CascadePlugin.fastapi_apps
    assert mounted["url_prefix"] == "/cascade"


@pytest.mark.compat("ui", supported=False)
def test_before_airflow_3_1_the_plugin_has_no_views_only_the_replies_receiver_from_3_0():
    assert CascadePlugin.external_views == []
    if not AIRFLOW_V_3_0_PLUS:  # Airflow 2.11: no plugin apps; cascade-replies runs alone
        assert CascadePlugin.fastapi_apps == []
        return
    [mounted] = CascadePlugin.fastapi_apps
    assert mounted["url_prefix"] == "/cascade"
    paths = {route.path for route in mounted["app"].routes}
    assert paths == {"/replies/{conn_id}"}  # no docs, no schema, nothing else


@pytest.mark.compat("ui")
def test_the_views_app_serves_the_replies_receiver_and_no_open_docs():
    [mounted] = CascadePlugin.fastapi_apps
    paths = {route.path for route in mounted["app"].routes}
    assert "/replies/{conn_id}" in paths
    assert not paths & {"/docs", "/redoc", "/openapi.json"}
