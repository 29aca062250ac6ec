"""The provider as Airflow sees it: entry point, connection form, CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from airflow_provider_cascade.get_provider_info import get_provider_info
from airflow_provider_cascade.hooks.cascade import CascadeHook
from airflow_provider_cascade.version_compat import AIRFLOW_V_3_0_PLUS, AIRFLOW_V_3_2_PLUS


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


@pytest.mark.compat("connection_form")
def test_hook_form_for_older_airflow_is_the_declared_form():
    """Before 3.2 Airflow asks the hook; it must say what the declaration says."""
    declared = get_provider_info()["connection-types"][0]
    widgets = CascadeHook.get_connection_form_widgets()
    assert list(widgets) == list(declared["conn-fields"])
    for name, spec in declared["conn-fields"].items():
        field = widgets[name]
        assert field.args[0] == spec["label"]
        secret = spec["schema"].get("format") == "password"
        assert (field.field_class.widget.input_type == "password") is secret, name
    behaviour = CascadeHook.get_ui_field_behaviour()
    assert behaviour["hidden_fields"] == declared["ui-field-behaviour"]["hidden-fields"]
    assert behaviour["relabeling"] == declared["ui-field-behaviour"]["relabeling"]
    assert behaviour["placeholders"] == declared["ui-field-behaviour"]["placeholders"]


@pytest.mark.parametrize(
    ("value", "valid"), [("", True), ("0.5", True), ("30", True), ("0", False), ("abc", False)]
)
def test_hook_form_rejects_a_number_extra_that_is_not_positive(value, valid):
    from wtforms import Form
    from wtforms.validators import ValidationError

    field = type("F", (Form,), CascadeHook.get_connection_form_widgets())(
        data={"max_requests_per_second": value}
    ).max_requests_per_second
    errors = []
    for validator in field.validators[1:]:
        try:
            validator(None, field)
        except ValidationError as error:
            errors.append(str(error))
    assert (not errors) is valid, errors
    if not valid:
        assert errors == ["Max requests per second must be a positive number"]


@pytest.mark.compat("connection_form")
def test_providers_manager_builds_the_form():
    """3.2+ from ``conn-fields`` without importing the hook; older versions from the hook."""
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    widgets = manager.connection_form_widgets
    assert widgets["extra__cascade__tg_bot_key"].is_sensitive
    assert widgets["extra__cascade__viber_auth_token"].is_sensitive
    assert not widgets["extra__cascade__timeout"].is_sensitive
    behaviour = manager.field_behaviours["cascade"]
    assert behaviour["relabeling"]["password"] == "API key (X-Authorization-Key)"
    assert manager.hooks["cascade"].hook_class_name.endswith("CascadeHook")


@pytest.mark.skipif(
    not AIRFLOW_V_3_0_PLUS or AIRFLOW_V_3_2_PLUS,
    reason="the 3.0/3.1 UI reads hook widgets through mocked WTForms; other versions do not",
)
def test_airflow_3_0_ui_reads_the_hook_form():
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    (meta,) = [m for m in HookMetaService.hook_meta_data() if m.connection_type == "cascade"]
    extras = meta.extra_fields
    assert extras["tg_bot_key"]["schema"]["format"] == "password"
    assert extras["viber_auth_token"]["schema"]["format"] == "password"
    assert extras["timeout"]["value"] == "30"
    assert meta.standard_fields.host.title == "Base URL"
    assert meta.standard_fields.password.title == "API key (X-Authorization-Key)"
    assert meta.standard_fields.login.hidden


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
    # Airflow 3.0 prints its own log lines on stdout before the JSON.
    (conn,) = json.loads(shown.stdout[shown.stdout.index("[{") :])
    assert conn["conn_type"] == "cascade"
