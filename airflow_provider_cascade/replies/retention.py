"""Replies are personal data: keeping them no longer than needed, and erasing one person's.

``delete_replies_older_than(conn_id, days)`` removes the stored replies received more than
``days`` ago (an example DAG runs it daily: ``example_dags/answer_replies.py``); opt-outs
stay, since they are what keeps a number from the next campaign.
``erase_number(conn_id, phone)`` removes a number's replies and its opt-out history, on
the person's request: the number is then no longer known to have opted out. Both work on
the provider's own tables.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from airflow_provider_cascade.exceptions import CascadeError
from airflow_provider_cascade.phones import e164_digits
from airflow_provider_cascade.privacy import mask_phone
from airflow_provider_cascade.replies.opt_outs import settings_of
from airflow_provider_cascade.replies.store import dialect_of, placeholder

__all__ = ["Erased", "delete_replies_older_than", "erase_number"]


@dataclass(frozen=True)
class Erased:
    """How many rows went."""

    replies: int
    opt_outs: int


def _connection(cascade_conn_id: str) -> tuple[Any, str, str]:
    from airflow_provider_cascade.sql import sql_hook

    settings = settings_of(cascade_conn_id)
    if settings.store_conn_id is None:
        raise CascadeError(f"connection {cascade_conn_id!r} stores no replies (no replies_conn_id)")
    conn = sql_hook(settings.store_conn_id, "replies_conn_id").get_conn()
    driver, dialect, style = dialect_of(conn)
    if dialect is None or style is None:
        conn.close()
        raise CascadeError(f"the provider's reply tables are not on {driver}")
    return conn, dialect, style


def delete_replies_older_than(cascade_conn_id: str, days: float) -> int:
    """Delete ``cascade_conn_id``'s replies received more than ``days`` ago; how many went.

    :raises CascadeError: the connection stores no replies in the provider's table.
    """
    if days <= 0:
        raise ValueError("days must be positive")
    conn, dialect, style = _connection(cascade_conn_id)
    cutoff: Any = datetime.now(timezone.utc) - timedelta(days=days)
    if dialect == "mysql":
        cutoff = cutoff.replace(tzinfo=None)
    elif dialect == "sqlite":
        cutoff = cutoff.isoformat(timespec="milliseconds")
    with closing(conn), closing(conn.cursor()) as cursor:
        cursor.execute(
            f"DELETE FROM cascade_replies WHERE cascade_conn_id = {placeholder(style, 'conn_id')}"
            f" AND received_at < {placeholder(style, 'cutoff')}",
            {"conn_id": cascade_conn_id, "cutoff": cutoff},
        )
        deleted = int(cursor.rowcount)
        conn.commit()
    return deleted


def erase_number(cascade_conn_id: str, phone: str) -> Erased:
    """Delete every reply from ``phone`` and its opt-out history on ``cascade_conn_id``.

    :raises ValueError: ``phone`` is not an international number (shown masked).
    """
    digits = e164_digits(phone)
    if digits is None:
        raise ValueError(f"{mask_phone(phone)!r} is not an international phone number")
    conn, _, style = _connection(cascade_conn_id)
    conn_id, phone_value = placeholder(style, "conn_id"), placeholder(style, "phone")
    where = f"cascade_conn_id = {conn_id} AND phone = {phone_value}"
    values = {"conn_id": cascade_conn_id, "phone": f"+{digits}"}
    with closing(conn), closing(conn.cursor()) as cursor:
        cursor.execute(f"DELETE FROM cascade_replies WHERE {where}", values)
        replies = int(cursor.rowcount)
        cursor.execute(f"DELETE FROM cascade_opt_outs WHERE {where}", values)
        opt_outs = int(cursor.rowcount)
        conn.commit()
    return Erased(replies, opt_outs)
