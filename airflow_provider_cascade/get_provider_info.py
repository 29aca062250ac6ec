"""What Airflow's providers manager reads about this package (no import of the hook needed)."""

from __future__ import annotations

from typing import Any

from airflow_provider_cascade import __version__

_INTEGRATION = "SMSBAT Cascade"
#: The connection id the hook, operator, sensor and notifier use unless told otherwise.
DEFAULT_CONN_ID = "cascade_default"


def _text(label: str, description: str, *, secret: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": ["string", "null"]}
    if secret:
        schema["format"] = "password"
    return {"label": label, "description": description, "schema": schema}


def _number(label: str, description: str, default: float) -> dict[str, Any]:
    return {
        "label": label,
        "description": description,
        "schema": {"type": ["number", "null"], "default": default, "exclusiveMinimum": 0},
    }


#: The ``cascade`` connection form: extras, as Airflow 3.2+ declares them.
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "viber_auth_token": _text(
        "Viber bot token (X-Viber-Auth-Token)", "Optional Viber bot credential.", secret=True
    ),
    "tg_bot_key": _text(
        "Telegram bot key (X-Tg-Bot-Key)", "Optional Telegram bot credential.", secret=True
    ),
    "timeout": _number("Read timeout (s)", "Seconds to wait for an answer.", 30),
    "connect_timeout": _number("Connect timeout (s)", "Seconds to wait for a connection.", 10),
    "max_requests_per_second": _number(
        "Max requests per second",
        "Client-side pacing, below the service's published 100 requests/s.",
        80,
    ),
    "status_path": _text(
        "Status path",
        "Delivery-status path, '{message_id}' replaced (default /bat/message/{message_id}).",
    ),
}

#: How the standard connection fields are shown for ``cascade``.
UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "port", "login", "extra"],
    "relabeling": {"host": "Base URL", "password": "API key (X-Authorization-Key)"},
    "placeholders": {"host": "https://restapi.smsbat.com"},
}


def get_provider_info() -> dict[str, Any]:
    """Describe the provider to Airflow (entry point ``apache_airflow_provider``)."""
    return {
        "package-name": "airflow-provider-cascade",
        "name": "SMSBAT Cascade",
        "description": "Send Telegram, Viber, RCS and SMS messages through the SMSBAT "
        "Cascade API, one request per batch.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": _INTEGRATION,
                "external-doc-url": "https://smsbat.com",
                "tags": ["service"],
            }
        ],
        "operators": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": ["airflow_provider_cascade.operators.cascade"],
            }
        ],
        "sensors": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": ["airflow_provider_cascade.sensors.cascade"],
            }
        ],
        "triggers": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": ["airflow_provider_cascade.triggers.cascade"],
            }
        ],
        "hooks": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": ["airflow_provider_cascade.hooks.cascade"],
            }
        ],
        "connection-types": [
            {
                "connection-type": "cascade",
                "hook-class-name": "airflow_provider_cascade.hooks.cascade.CascadeHook",
                "hook-name": "SMSBAT Cascade",
                "conn-fields": CONN_FIELDS,
                "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
            }
        ],
        "notifications": ["airflow_provider_cascade.notifications.cascade.CascadeNotifier"],
    }
