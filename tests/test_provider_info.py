"""The provider as Airflow sees it: entry point, connection form, CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from airflow_provider_cascade.get_provider_info import get_provider_info


def test_provider_info_declares_the_cascade_connection():
    info = get_provider_info()
    assert info["package-name"] == "airflow-provider-cascade"
    (conn,) = info["connection-types"]
    assert conn["connection-type"] == "cascade"
    assert conn["hook-class-name"] == "airflow_provider_cascade.hooks.cascade.CascadeHook"
    fields = conn["conn-fields"]
    assert fields["viber_auth_token"]["schema"]["format"] == "password"
    assert fields["tg_bot_key"]["schema"]["format"] == "password"
    assert {"timeout", "max_requests_per_second", "status_path"} <= set(fields)
    assert conn["ui-field-behaviour"]["relabeling"]["password"] == "API key (X-Authorization-Key)"


def test_providers_manager_builds_the_form_from_the_declaration():
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    widgets = manager.connection_form_widgets
    assert widgets["extra__cascade__tg_bot_key"].is_sensitive
    assert widgets["extra__cascade__viber_auth_token"].is_sensitive
    assert not widgets["extra__cascade__timeout"].is_sensitive
    behaviour = manager.field_behaviours["cascade"]
    assert behaviour["relabeling"]["password"] == "API key (X-Authorization-Key)"
    assert manager.hooks["cascade"].hook_class_name.endswith("CascadeHook")


@pytest.mark.integration
def test_airflow_cli_lists_the_provider_and_adds_a_cascade_connection(airflow_db):
    listed = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "airflow-provider-cascade" in listed.stdout
    subprocess.run(
        [
            sys.executable,
            "-m",
            "airflow",
            "connections",
            "add",
            "cli_cascade",
            "--conn-type",
            "cascade",
            "--conn-host",
            "http://127.0.0.1:8765",
            "--conn-password",
            "k",
            "--conn-extra",
            json.dumps({"tg_bot_key": "t"}),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    shown = subprocess.run(
        [sys.executable, "-m", "airflow", "connections", "get", "cli_cascade", "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    (conn,) = json.loads(shown.stdout)
    assert conn["conn_type"] == "cascade"
