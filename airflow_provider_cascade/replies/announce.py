"""Which stored replies the replies asset has not had an event for yet, and marking them.

The receiver, in the API server or on its own, only writes to the user's database; a
trigger in the triggerer (:class:`~airflow_provider_cascade.triggers.replies.CascadeRepliesTrigger`,
an ``AssetWatcher`` of the asset ``cascade://<conn_id>/replies``) asks this module what is
new and gives the asset an event for it. A reply is marked (``announced_at``) after its
event is handed to Airflow, so a triggerer that dies in between announces it again: an
event may repeat, a stored reply is never left without one. Works on the provider's own
``cascade_replies`` table.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from airflow_provider_cascade.exceptions import CascadeError
from airflow_provider_cascade.replies.store import dialect_of, placeholder

__all__ = ["MAX_ANNOUNCED", "Pending", "mark_announced", "pending_replies"]

#: Replies counted in one event at most (the rest go in the next one, a poll later).
MAX_ANNOUNCED = 10_000


@dataclass(frozen=True)
class Pending:
    """Replies stored but not yet announced: their ids (to mark) and what the event says."""

    reply_ids: list[str]
    first_received_at: str | None
    last_received_at: str | None

    def payload(self, cascade_conn_id: str) -> dict[str, Any]:
        """The asset event's ``extra``: counts and times, never a phone or a text."""
        return {
            "cascade_conn_id": cascade_conn_id,
            "replies": len(self.reply_ids),
            "first_received_at": self.first_received_at,
            "last_received_at": self.last_received_at,
        }


def _style(conn: Any) -> str:
    driver, dialect, style = dialect_of(conn)
    if dialect is None or style is None:
        raise CascadeError(f"the replies asset watches the provider's table, not on {driver}")
    return style


def pending_replies(conn: Any, cascade_conn_id: str) -> Pending:
    """The replies of ``cascade_conn_id`` not yet announced, oldest first (at most
    :data:`MAX_ANNOUNCED`). A table not made yet holds none."""
    style = _style(conn)
    sql = (
        "SELECT reply_id, received_at FROM cascade_replies WHERE announced_at IS NULL"
        f" AND cascade_conn_id = {placeholder(style, 'cascade_conn_id')} ORDER BY received_at"
    )
    with closing(conn.cursor()) as cursor:
        try:
            cursor.execute(sql, {"cascade_conn_id": cascade_conn_id})
            rows = cursor.fetchmany(MAX_ANNOUNCED)
        except Exception as error:
            if "cascade_replies" not in str(error).lower():
                raise
            rows = []
    conn.rollback()
    times = [_text(when) for _, when in rows]
    return Pending(
        [str(reply_id) for reply_id, _ in rows], min(times, default=None), max(times, default=None)
    )


def mark_announced(conn: Any, reply_ids: list[str]) -> None:
    """Mark ``reply_ids`` announced, committed."""
    if not reply_ids:
        return
    style = _style(conn)
    now = datetime.now(timezone.utc)
    _, dialect, _ = dialect_of(conn)
    when: Any = now if dialect == "postgres" else now.replace(tzinfo=None)
    if dialect == "sqlite":
        when = now.isoformat(timespec="milliseconds")
    sql = (
        f"UPDATE cascade_replies SET announced_at = {placeholder(style, 'at')}"
        f" WHERE reply_id = {placeholder(style, 'reply_id')}"
    )
    with closing(conn.cursor()) as cursor:
        cursor.executemany(sql, [{"at": when, "reply_id": reply_id} for reply_id in reply_ids])
    conn.commit()


def _text(value: Any) -> str:
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=timezone.utc)
        return aware.astimezone(timezone.utc).isoformat(timespec="milliseconds")
    return str(value)
