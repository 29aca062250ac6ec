"""Replies and opt-outs written to the user's database: once each, committed before the
callback is answered.

A callback's replies are written in one transaction: each reply (a repeated ``idUuid``
changes nothing), then, for a new reply that is an opt-out or opt-in keyword, one row per
message type it concerns. Only after the commit does the receiver answer ``200``; any
failure rolls back and answers ``503`` so that SMSBAT sends it again.

The provider's own tables (SQLite, PostgreSQL, MySQL/MariaDB; created when first needed):

- ``cascade_replies``: ``reply_id`` (the key), ``cascade_conn_id``, ``phone`` (E.164),
  ``alpha_name``, ``text``, ``received_at``, ``stored_at``, ``announced_at`` (when the
  replies asset got an event for it: :mod:`~airflow_provider_cascade.replies.announce`);
- ``cascade_opt_outs``: one row per ``(cascade_conn_id, phone, message_type)`` with
  ``opted_out`` (1 or 0), ``changed_at`` (the reply's ``dt``) and ``reply_id``. A keyword
  changes the row only when it is newer than what set it: a STOP that arrives after a
  later START (retries reorder callbacks) does not win.

A repeated reply is not stored again: ``ON CONFLICT DO NOTHING`` (PostgreSQL, SQLite),
``ON DUPLICATE KEY UPDATE reply_id = reply_id`` on MySQL/MariaDB (not ``INSERT IGNORE``,
which would also turn a too-long text into a silent truncation).

``received_at``/``changed_at`` are bound as an aware UTC ``datetime`` for PostgreSQL
drivers, a naive UTC ``datetime`` for MySQL drivers (which refuse aware ones) and ISO 8601
text (``2025-01-20T14:30:00.000+00:00``) for SQLite and others.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal

from airflow_provider_cascade.exceptions import CascadeError
from airflow_provider_cascade.privacy import mask_phone
from airflow_provider_cascade.replies.keywords import Meaning
from airflow_provider_cascade.replies.payload import Reply
from airflow_provider_cascade.replies.settings import ReplySettings
from airflow_provider_cascade.statements import DRIVER_STYLES, check_placeholders

__all__ = [
    "OPT_OUT_PARAMETERS",
    "REPLY_PARAMETERS",
    "Dialect",
    "ReplyStore",
    "Stored",
    "dialect_of",
]

log = logging.getLogger(__name__)

Dialect = Literal["sqlite", "postgres", "mysql"]

REPLY_PARAMETERS = ("reply_id", "phone", "alpha_name", "text", "received_at", "cascade_conn_id")
OPT_OUT_PARAMETERS = ("phone", "message_type", "reply_id", "changed_at", "cascade_conn_id")

_DRIVER_DIALECTS: dict[str, Dialect] = {
    "sqlite3": "sqlite",
    "psycopg2": "postgres",
    "psycopg": "postgres",
    "MySQLdb": "mysql",
    "pymysql": "mysql",
    "mysql": "mysql",
}

_TIME = {"sqlite": "VARCHAR(32)", "postgres": "TIMESTAMPTZ", "mysql": "DATETIME(3)"}
_NOW = {
    "sqlite": "(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
    "postgres": "CURRENT_TIMESTAMP",
    "mysql": "CURRENT_TIMESTAMP(3)",
}
_TEXT = {"sqlite": "TEXT", "postgres": "TEXT", "mysql": "TEXT CHARACTER SET utf8mb4"}
_TABLE_END = {"sqlite": "", "postgres": "", "mysql": " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"}


def _tables(dialect: Dialect) -> list[str]:
    time, text, end = _TIME[dialect], _TEXT[dialect], _TABLE_END[dialect]
    return [
        "CREATE TABLE IF NOT EXISTS cascade_replies ("
        " reply_id VARCHAR(128) NOT NULL PRIMARY KEY,"
        " cascade_conn_id VARCHAR(250) NOT NULL,"
        " phone VARCHAR(16) NOT NULL,"
        " alpha_name VARCHAR(64) NOT NULL,"
        f" text {text} NOT NULL,"
        f" received_at {time} NOT NULL,"
        f" stored_at {time} NOT NULL DEFAULT {_NOW[dialect]},"
        f" announced_at {time} NULL"
        f"){end}",
        "CREATE INDEX IF NOT EXISTS cascade_replies_phone ON cascade_replies (phone)",
        "CREATE INDEX IF NOT EXISTS cascade_replies_received_at ON cascade_replies (received_at)",
        "CREATE TABLE IF NOT EXISTS cascade_opt_outs ("
        " cascade_conn_id VARCHAR(250) NOT NULL,"
        " phone VARCHAR(16) NOT NULL,"
        " message_type VARCHAR(32) NOT NULL,"
        " opted_out SMALLINT NOT NULL,"
        f" changed_at {time} NOT NULL,"
        " reply_id VARCHAR(128) NOT NULL,"
        " PRIMARY KEY (cascade_conn_id, phone, message_type)"
        f"){end}",
    ]


def placeholder(style: str, name: str) -> str:
    """The named parameter ``name`` in a driver's ``paramstyle`` (pyformat or named)."""
    return f"%({name})s" if style == "pyformat" else f":{name}"


def _reply_insert(dialect: Dialect, style: str) -> str:
    values = ", ".join(placeholder(style, name) for name in REPLY_PARAMETERS)
    insert = (
        "INSERT INTO cascade_replies (reply_id, phone, alpha_name, text, received_at, "
        f"cascade_conn_id) VALUES ({values})"
    )
    if dialect == "mysql":
        return insert + " ON DUPLICATE KEY UPDATE reply_id = reply_id"
    return insert + " ON CONFLICT (reply_id) DO NOTHING"


def _opt_out_upsert(dialect: Dialect, style: str, opted_out: int) -> str:
    names = ("cascade_conn_id", "phone", "message_type", "changed_at")
    values = ", ".join(placeholder(style, name) for name in names)
    insert = (
        "INSERT INTO cascade_opt_outs (cascade_conn_id, phone, message_type, changed_at, "
        f"opted_out, reply_id) VALUES ({values}, {opted_out}, {placeholder(style, 'reply_id')})"
    )
    if dialect == "mysql":  # assignments run left to right: changed_at last
        newer = "VALUES(changed_at) > changed_at"
        return (
            f"{insert} ON DUPLICATE KEY UPDATE"
            f" opted_out = IF({newer}, VALUES(opted_out), opted_out),"
            f" reply_id = IF({newer}, VALUES(reply_id), reply_id),"
            " changed_at = GREATEST(changed_at, VALUES(changed_at))"
        )
    return (
        f"{insert} ON CONFLICT (cascade_conn_id, phone, message_type) DO UPDATE SET"
        " opted_out = excluded.opted_out, changed_at = excluded.changed_at,"
        " reply_id = excluded.reply_id"
        " WHERE cascade_opt_outs.changed_at < excluded.changed_at"
    )


def opted_out_query(dialect_style: str) -> str:
    """The numbers opted out of a message type on a connection, from the default table."""
    return (
        "SELECT phone FROM cascade_opt_outs WHERE opted_out = 1"
        f" AND cascade_conn_id = {placeholder(dialect_style, 'cascade_conn_id')}"
        f" AND message_type = {placeholder(dialect_style, 'message_type')}"
    )


def dialect_of(conn: Any) -> tuple[str, Dialect | None, str | None]:
    """The DB-API connection's driver module, its dialect (None: not one the provider
    has tables for) and its named-parameter style (None: unknown)."""
    raw = getattr(conn, "driver_connection", None) or conn
    driver = type(raw).__module__.split(".")[0]
    return driver, _DRIVER_DIALECTS.get(driver), DRIVER_STYLES.get(driver)


@dataclass
class Stored:
    """What one callback's storing did."""

    new: int = 0
    repeated: int = 0
    opted_out: int = 0
    opted_in: int = 0
    #: Masked numbers whose subscription changed (for the log line; never the text).
    changed: list[str] = field(default_factory=list)


class ReplyStore:
    """Writes replies for one connection's settings, on a DB-API connection it is given.

    :param settings: the ``cascade`` connection's reply settings.
    :param driver: the DB-API driver module name (``dialect_of``), which decides the
        placeholder style and the provider's tables.
    :raises CascadeError: no statement given and no provider table for this database, or a
        statement whose placeholders do not fit the driver.
    """

    def __init__(self, settings: ReplySettings, driver: str) -> None:
        self.settings = settings
        self.dialect: Dialect | None = _DRIVER_DIALECTS.get(driver)
        style = DRIVER_STYLES.get(driver)
        self.style = style
        store = settings.store_conn_id or "?"
        own = {
            "replies_sql": settings.replies_sql,
            "opt_out_sql": settings.opt_out_sql,
            "opt_in_sql": settings.opt_in_sql,
        }
        if style is None and any(sql is None for sql in own.values()):
            raise CascadeError(
                f"replies on connection {settings.cascade_conn_id!r}: the database of "
                f"{store!r} ({driver}) has no provider tables; set replies_sql, opt_out_sql "
                "and opt_in_sql"
            )
        if self.dialect is None and any(sql is None for sql in own.values()):
            raise CascadeError(
                f"replies on connection {settings.cascade_conn_id!r}: the provider's tables "
                f"exist for SQLite, PostgreSQL and MySQL/MariaDB, not {driver}; set "
                "replies_sql, opt_out_sql and opt_in_sql"
            )
        if style is not None:
            for what, sql in own.items():
                if sql is not None:
                    given = REPLY_PARAMETERS if what == "replies_sql" else OPT_OUT_PARAMETERS
                    check_placeholders(sql, style, given, what=what, conn_id=store, driver=driver)
        self.driver = driver
        assert style is not None or all(own.values())
        pstyle = style or "named"
        dialect = self.dialect or "sqlite"
        self.reply_sql = settings.replies_sql or _reply_insert(dialect, pstyle)
        self.opt_out_sql = settings.opt_out_sql or _opt_out_upsert(dialect, pstyle, 1)
        self.opt_in_sql = settings.opt_in_sql or _opt_out_upsert(dialect, pstyle, 0)
        self.uses_own_tables = self.dialect is not None and not all(own.values())

    def create_tables(self, conn: Any) -> None:
        """Create the provider's tables where its statements use them (idempotent)."""
        if not self.uses_own_tables or self.dialect is None:
            return
        with closing(conn.cursor()) as cursor:
            for statement in _tables(self.dialect):
                cursor.execute(statement)
        conn.commit()

    def store(self, conn: Any, replies: Sequence[Reply]) -> Stored:
        """Write ``replies`` and what they ask, then commit; roll back on any failure.

        :raises Exception: whatever the database raised (after the rollback).
        """
        outcome = Stored()
        try:
            with closing(conn.cursor()) as cursor:
                for reply in replies:
                    cursor.execute(self.reply_sql, self._reply_row(reply))
                    # A repeated reply id inserts nothing: rowcount 0. A user statement
                    # whose driver cannot tell (-1) is taken as new: keywords are then
                    # applied again, which the newer-wins rows make harmless.
                    if cursor.rowcount == 0:
                        outcome.repeated += 1
                        continue
                    outcome.new += 1
                    meaning = self.settings.keywords.meaning(reply.text)
                    if meaning is None:
                        continue
                    sql = self.opt_out_sql if meaning is Meaning.OPT_OUT else self.opt_in_sql
                    for kind in self.settings.opt_out_types:
                        cursor.execute(sql, self._opt_out_row(reply, kind))
                    if meaning is Meaning.OPT_OUT:
                        outcome.opted_out += 1
                    else:
                        outcome.opted_in += 1
                    outcome.changed.append(f"{mask_phone(reply.phone)} {meaning.value}")
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
        return outcome

    def _time(self, moment: datetime) -> Any:
        if self.dialect == "postgres":
            return moment
        if self.dialect == "mysql":
            return moment.astimezone(timezone.utc).replace(tzinfo=None)
        return moment.isoformat(timespec="milliseconds")

    def _reply_row(self, reply: Reply) -> dict[str, Any]:
        row = reply.row()
        row["received_at"] = self._time(reply.received_at)
        row["cascade_conn_id"] = self.settings.cascade_conn_id
        return row

    def _opt_out_row(self, reply: Reply, message_type: str) -> dict[str, Any]:
        return {
            "phone": reply.phone,
            "message_type": message_type,
            "reply_id": reply.reply_id,
            "changed_at": self._time(reply.received_at),
            "cascade_conn_id": self.settings.cascade_conn_id,
        }
