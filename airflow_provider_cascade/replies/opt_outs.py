"""Reading the opt-outs a connection's replies recorded, for a send's suppression
(``Suppression(opt_outs="cascade_default")``) and for erasure."""

from __future__ import annotations

from contextlib import closing
from typing import Any

from airflow_provider_cascade.exceptions import CascadeError
from airflow_provider_cascade.phones import PhoneSet, e164_digits
from airflow_provider_cascade.replies.settings import ReplySettings, reply_settings
from airflow_provider_cascade.replies.store import dialect_of, opted_out_query

__all__ = ["load_opt_outs", "settings_of"]


def settings_of(cascade_conn_id: str) -> ReplySettings:
    """The reply settings of a ``cascade`` connection, read as a task reads connections."""
    from airflow.providers.common.compat.sdk import BaseHook

    return reply_settings(BaseHook.get_connection(cascade_conn_id))


def load_opt_outs(cascade_conn_id: str) -> dict[str, PhoneSet]:
    """The numbers opted out on ``cascade_conn_id``, by message type (each type its
    settings' ``opt_out_message_types`` names; a type no opt-out covers is absent).

    :raises CascadeError: the connection stores no replies (no ``replies_conn_id``), or
        stores opt-outs with its own statements (read them with ``Suppression(sql=...)``).
    """
    settings = settings_of(cascade_conn_id)
    if settings.store_conn_id is None:
        raise CascadeError(
            f"Suppression(opt_outs={cascade_conn_id!r}): the connection has no "
            "replies_conn_id, so no opt-outs are recorded for it"
        )
    if settings.opt_out_sql or settings.opt_in_sql:
        raise CascadeError(
            f"Suppression(opt_outs={cascade_conn_id!r}): the connection records opt-outs "
            "with its own opt_out_sql/opt_in_sql; read them with Suppression(sql=..., "
            "conn_id=...)"
        )
    from airflow_provider_cascade.sql import sql_hook

    by_type: dict[str, PhoneSet] = {}
    with closing(sql_hook(settings.store_conn_id, "replies_conn_id").get_conn()) as conn:
        _, dialect, style = dialect_of(conn)
        if dialect is None or style is None:
            raise CascadeError(
                f"Suppression(opt_outs={cascade_conn_id!r}): the provider's opt-out table "
                "exists on SQLite, PostgreSQL and MySQL/MariaDB only"
            )
        with closing(conn.cursor()) as cursor:
            for kind in settings.opt_out_types:
                numbers = PhoneSet()
                try:
                    cursor.execute(
                        opted_out_query(style),
                        {"cascade_conn_id": cascade_conn_id, "message_type": kind},
                    )
                except Exception as error:
                    if _missing_table(error):  # nothing received yet
                        conn.rollback()
                        return {kind: PhoneSet().seal() for kind in settings.opt_out_types}
                    raise
                for (phone,) in _rows(cursor):
                    number = e164_digits(phone)
                    if number is not None:
                        numbers.add(number)
                by_type[kind] = numbers.seal()
    return by_type


def _rows(cursor: Any, size: int = 10_000) -> Any:
    while True:
        rows = cursor.fetchmany(size)
        if not rows:
            return
        yield from rows


def _missing_table(error: Exception) -> bool:
    text = str(error).lower()
    return "cascade_opt_outs" in text and (
        "no such table" in text or "does not exist" in text or "doesn't exist" in text
    )
