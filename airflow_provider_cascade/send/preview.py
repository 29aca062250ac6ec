"""What the UI (Rendered Templates) and the logs show of a send's messages: phones masked,
texts by their size, nothing else of a message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence, Sized
from typing import Any

from airflow_provider_cascade.privacy import mask_phone

__all__ = ["Messages", "Unrendered", "masked_preview"]

#: Fields a preview shows as they are (neither personal nor bulky); to_phone is masked, the
#: text and survey options shown by their size, any other key counted.
_PREVIEW_KEPT = frozenset({"tracking_id", "from_name", "message_type", "ttl", "scheduled_sent"})


class Messages:
    """The ``messages`` argument as the operator holds it: rendered in place by Airflow
    (its ``value`` is its one template field: a list, a JSON text, an upstream task's
    output), and shown (Rendered Templates, logs) only as :func:`masked_preview`.

    Until rendered, ``value`` is an :class:`Unrendered` that Airflow calls to render it: if
    a template in a message fails, Airflow logs the field's value, and that value then shows
    itself masked (a plain list would be logged with every phone in full)."""

    template_fields: Sequence[str] = ("value",)

    def __init__(self, value: Any) -> None:
        self.value: Any = value if isinstance(value, Unrendered) else Unrendered(value)

    @property
    def current(self) -> Any:
        """The messages as they are now: rendered, or as given when nothing rendered them."""
        return self.value.raw if isinstance(self.value, Unrendered) else self.value

    def serialize(self) -> Any:
        """Its rendered form: phones masked, texts by their size."""
        return masked_preview(self.current)

    def __repr__(self) -> str:
        return json.dumps(self.serialize(), ensure_ascii=False, default=str)


class Unrendered:
    """Messages as given, rendered when Airflow calls this (a callable template field is
    called with the context and the Jinja environment), by the task's own renderer: Jinja
    strings, nested lists and dicts, an upstream task's output. Its ``repr`` is masked.
    ``raw`` is declared a template field so that Airflow finds an upstream task's output in
    it (the task's dependency); Airflow calls this object rather than rendering ``raw``."""

    template_fields: Sequence[str] = ("raw",)

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def __call__(self, context: Any, jinja_env: Any = None) -> Any:
        """The messages rendered.

        :raises CascadeValidationError: a template failed, naming the message (its tracking
            id, else its position) and Jinja's reason. Raised here, once every frame that
            held a message is gone: a traceback that shows its frames' variables (Airflow
            3.0's does) then shows no message.
        """
        outcome = _render(self.raw, context, jinja_env)
        if isinstance(outcome, _Failed):
            raise outcome.error
        return outcome

    def __repr__(self) -> str:
        return json.dumps(masked_preview(self.raw), ensure_ascii=False, default=str)


def masked_preview(messages: Any, limit: int = 20) -> Any:
    """What the UI shows of ``messages``: the known fields of the first ``limit``, phones
    masked, texts and survey options as their size, and how many other keys each had (a
    misnamed key's value is never shown: ``phone`` may hold a number)."""
    from airflow_provider_cascade.messages import field_for_key

    if isinstance(messages, str):
        return f"<{len(messages)} characters>"
    if isinstance(messages, Mapping):  # refused when sent; shown masked all the same
        return masked_preview([messages], limit)
    if not isinstance(messages, Sequence):
        return f"<{type(messages).__name__}>"
    preview: list[Any] = []
    for item in messages[:limit]:
        if isinstance(item, Mapping):
            shown = {}
            for key, value in item.items():
                field = field_for_key(str(key))
                if field in _PREVIEW_KEPT:
                    shown[key] = value
                elif field == "to_phone":
                    shown[key] = mask_phone(value)
                elif field is not None:  # text, survey_options: their size only
                    size = len(value) if isinstance(value, Sized) else 1
                    shown[key] = f"<{size} {'characters' if field == 'text' else 'options'}>"
            others = len(item) - len(shown)
            if others:
                shown["<other keys>"] = others
            preview.append(shown)
        else:
            preview.append(repr(item))
    if len(messages) > limit:
        preview.append(f"... and {len(messages) - limit} more")
    return preview


class _Failed:
    def __init__(self, error: Exception) -> None:
        self.error = error


def _render(raw: Any, context: Any, jinja_env: Any) -> Any:
    """``raw`` rendered by the task's renderer, or a :class:`_Failed` naming each message
    whose template failed (never raised from here: see :meth:`Unrendered.__call__`)."""
    from airflow_provider_cascade.exceptions import CascadeValidationError, Problem

    render = context["task"].render_template
    items = raw if isinstance(raw, list) else [raw]
    rendered, problems = [], []
    for position, item in enumerate(items):
        try:
            rendered.append(render(item, context, jinja_env))
        except Exception as error:
            text = str(error).splitlines()[0] if str(error) else ""
            rule = f"did not render as a template ({type(error).__name__}: {text})"
            name = _name(item, position) if isinstance(raw, list) else "messages"
            problems.append(Problem(name, "message", rule, "TEMPLATE"))
    if problems:
        return _Failed(CascadeValidationError(problems))
    return rendered if isinstance(raw, list) else rendered[0]


def _name(item: Any, position: int) -> str:
    tracking_id = item.get("tracking_id") if isinstance(item, Mapping) else None
    if isinstance(tracking_id, str) and "{" not in tracking_id:
        return tracking_id
    return f"message {position + 1}"
