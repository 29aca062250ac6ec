"""The ``cascade`` connection form for Airflow before 3.2, built from the declaration.

Airflow 3.2+ reads the form from ``get_provider_info()`` (``conn-fields`` and
``ui-field-behaviour``) without importing the hook. Older versions ask the hook instead:
the 2.x web UI renders WTForms fields, and the 3.0/3.1 UI reads the same fields through
mocked WTForms. Both shapes come from :data:`CONN_FIELDS` and :data:`UI_FIELD_BEHAVIOUR`,
so the two forms cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_cascade.get_provider_info import CONN_FIELDS, UI_FIELD_BEHAVIOUR


def form_widgets(fields: Mapping[str, Mapping[str, Any]] = CONN_FIELDS) -> dict[str, Any]:
    """WTForms fields for each declared extra: secrets as password fields, numbers as text
    checked to be positive (a rate such as ``0.5`` is valid, which an integer field is not).

    :raises ImportError: WTForms is not installed (Airflow then leaves the extras out).
    """
    from wtforms import PasswordField, StringField
    from wtforms.validators import Optional

    text_widget, password_widget = _bootstrap_widgets()
    widgets: dict[str, Any] = {}
    for name, spec in fields.items():
        schema = spec["schema"]
        secret = schema.get("format") == "password"
        numeric = "number" in schema["type"]
        default = schema.get("default")
        widget = password_widget if secret else text_widget
        widgets[name] = (PasswordField if secret else StringField)(
            spec["label"],
            validators=[Optional(), _positive_number] if numeric else [Optional()],
            description=spec.get("description", ""),
            default=None if default is None else str(default),
            widget=widget() if widget else None,
        )
    return widgets


def field_behaviour(behaviour: Mapping[str, Any] = UI_FIELD_BEHAVIOUR) -> dict[str, Any]:
    """The declared ``ui-field-behaviour`` with the keys older Airflow expects
    (``hidden_fields`` where the declaration says ``hidden-fields``)."""
    return {key.replace("-", "_"): value for key, value in behaviour.items()}


def _bootstrap_widgets() -> tuple[Any, Any]:
    """Flask-AppBuilder's styled widgets where the 2.x UI has them; WTForms' plain inputs
    otherwise (the 3.0/3.1 UI only reads the fields' data)."""
    try:
        from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget, BS3TextFieldWidget
    except ImportError:
        return None, None
    return BS3TextFieldWidget, BS3PasswordFieldWidget


def _positive_number(form: Any, field: Any) -> None:
    from wtforms.validators import ValidationError

    if field.data in (None, ""):
        return
    try:
        valid = float(field.data) > 0
    except (TypeError, ValueError):
        valid = False
    if not valid:
        raise ValidationError(f"{field.label.text} must be a positive number")
