"""What Airflow's providers manager reads about this package (no import of the hook needed)."""

from __future__ import annotations

from typing import Any

from airflow_provider_cascade import __version__
from airflow_provider_cascade.constants import (
    DEFAULT_BASE_URL,
    DEFAULT_CONN_ID,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_REQUESTS_PER_SECOND,
    DEFAULT_STATUS_PATH,
    DEFAULT_STATUS_REQUESTS_PER_SECOND,
    DEFAULT_TIMEOUT,
)
from airflow_provider_cascade.wire import API_KEY_HEADER, EXTRA_CREDENTIAL_HEADERS

__all__ = ["CONN_FIELDS", "DEFAULT_CONN_ID", "UI_FIELD_BEHAVIOUR", "get_provider_info"]

_INTEGRATION = "SMSBAT Cascade"


def _text(label: str, description: str, *, secret: bool = False) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": ["string", "null"]}
    if secret:
        schema["format"] = "password"
    return {"label": label, "description": description, "schema": schema}


def _number(label: str, description: str, default: float) -> dict[str, Any]:
    # A whole default is shown as one (the form shows "30", not "30.0").
    shown = int(default) if float(default).is_integer() else default
    return {
        "label": label,
        "description": description,
        "schema": {"type": ["number", "null"], "default": shown, "exclusiveMinimum": 0},
    }


#: The ``cascade`` connection form: extras, as Airflow 3.2+ declares them.
CONN_FIELDS: dict[str, dict[str, Any]] = {
    "viber_auth_token": _text(
        f"Viber bot token ({EXTRA_CREDENTIAL_HEADERS['viber_auth_token']})",
        "Optional Viber bot credential.",
        secret=True,
    ),
    "tg_bot_key": _text(
        f"Telegram bot key ({EXTRA_CREDENTIAL_HEADERS['tg_bot_key']})",
        "Optional Telegram bot credential.",
        secret=True,
    ),
    "timeout": _number("Read timeout (s)", "Seconds to wait for an answer.", DEFAULT_TIMEOUT),
    "connect_timeout": _number(
        "Connect timeout (s)", "Seconds to wait for a connection.", DEFAULT_CONNECT_TIMEOUT
    ),
    "max_requests_per_second": _number(
        "Max requests per second",
        "Client-side pacing, below the service's published 100 requests/s.",
        DEFAULT_MAX_REQUESTS_PER_SECOND,
    ),
    "status_requests_per_second": _number(
        "Status look-ups per second",
        "The status budget that delivery waits share, below the published 50/s data limit.",
        DEFAULT_STATUS_REQUESTS_PER_SECOND,
    ),
    "status_path": _text(
        "Status path",
        f"Delivery-status path, '{{message_id}}' replaced (default {DEFAULT_STATUS_PATH}).",
    ),
    "replies_token": _text(
        "Replies token",
        "The secret in the reply callback URL given to SMSBAT "
        "(.../cascade/replies/<conn id>?token=...). Empty: no replies are taken.",
        secret=True,
    ),
    "replies_token_previous": _text(
        "Replies token (previous)",
        "A second token accepted while SMSBAT is given a new one.",
        secret=True,
    ),
    "replies_conn_id": _text(
        "Replies database connection", "The SQL connection replies and opt-outs are stored on."
    ),
    "replies_sql": _text(
        "Replies statement",
        "Stores one reply (reply_id, phone, alpha_name, text, received_at); default: the "
        "table cascade_replies.",
    ),
    "opt_out_sql": _text(
        "Opt-out statement",
        "Run per message type for a STOP (phone, message_type, reply_id, changed_at); "
        "default: the table cascade_opt_outs.",
    ),
    "opt_in_sql": _text(
        "Opt-in statement",
        "Run per message type for a START; default: the table cascade_opt_outs.",
    ),
    "opt_out_message_types": _text(
        "Opt-out message types", "Comma-separated types a STOP stops (default promo,viber_survey)."
    ),
    "opt_out_keywords": _text(
        "Opt-out keywords", "Comma-separated, replacing the defaults (STOP, СТОП, ...)."
    ),
    "opt_in_keywords": _text(
        "Opt-in keywords", "Comma-separated, replacing the defaults (START, СТАРТ, ...)."
    ),
}

#: How the standard connection fields are shown for ``cascade``.
UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden-fields": ["schema", "port", "login", "extra"],
    "relabeling": {"host": "Base URL", "password": f"API key ({API_KEY_HEADER})"},
    "placeholders": {"host": DEFAULT_BASE_URL},
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
                "python-modules": [
                    "airflow_provider_cascade.triggers.cascade",
                    "airflow_provider_cascade.triggers.replies",
                ],
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
        "task-decorators": [
            {
                "name": "cascade",
                "class-name": "airflow_provider_cascade.decorators.cascade.cascade_task",
            }
        ],
        # The "Cascade" views of a task instance and a run (Airflow 3.1+).
        "plugins": [
            {
                "name": "cascade",
                "plugin-class": "airflow_provider_cascade.plugins.cascade.CascadePlugin",
            }
        ],
    }
