"""Where messages come from: a list (XCom, literal), SQL rows streamed, or what a
``@task.cascade`` function yields. Each :class:`Source` yields :class:`RawBatch` es of at
most ``batch_size`` raw items, numbered so that an error can name ``message 7`` or ``row
20417``; none validates (the send loop's job, :class:`~airflow_provider_cascade.send.
campaign.Campaign`).
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from itertools import islice
from operator import itemgetter
from typing import Any, Protocol

from airflow_provider_cascade.constants import MARK_SENT_PARAMETERS
from airflow_provider_cascade.exceptions import CascadeValidationError, Problem
from airflow_provider_cascade.messages import CascadeMessage, field_for_key, unknown_key_rule
from airflow_provider_cascade.sql import execute_and_commit, sql_hook
from airflow_provider_cascade.statements import check_statement
from airflow_provider_cascade.validation import FIELDS


@dataclass(frozen=True)
class RawBatch:
    """Items as the source gave them; ``start`` is the 1-based position of the first.

    :param spelling: rows in field order (:data:`~airflow_provider_cascade.validation.FIELDS`,
        None where no column): field name -> the column as the query named it, for errors.
    :param checked: the items are messages this send has checked already.
    """

    label: str
    start: int
    items: Sequence[Mapping[str, Any] | CascadeMessage | list[Any]]
    spelling: Mapping[str, str] | None = None
    checked: bool = False


class Source(Protocol):
    """Where a send's messages come from."""

    @property
    def total(self) -> int | None:
        """How many messages there are, if known before reading them (progress, ETA)."""

    def batches(self, batch_size: int) -> Iterator[RawBatch]:
        """The messages, ``batch_size`` at a time."""

    def count(self) -> int | None:
        """How many messages there are, counted before reading them (``max_messages``);
        None if they cannot be (a generator)."""


class ListSource:
    """An in-memory list (XCom, a literal, ``send_messages``); ``checked``: already checked."""

    def __init__(
        self, messages: Sequence[Mapping[str, Any] | CascadeMessage], *, checked: bool = False
    ) -> None:
        self.messages = messages
        self.checked = checked

    def count(self) -> int:
        return len(self.messages)

    total = property(count)

    def batches(self, batch_size: int) -> Iterator[RawBatch]:
        messages = self.messages
        for start in range(0, len(messages), batch_size):
            yield RawBatch(
                "message", start + 1, messages[start : start + batch_size], checked=self.checked
            )


class IterSource:
    """An iterable's messages (a generator's), ``batch_size`` at a time: one batch held."""

    total = None  # unknown until read

    def __init__(self, messages: Iterable[Any]) -> None:
        self.messages = messages

    def count(self) -> None:
        return None

    def batches(self, batch_size: int) -> Iterator[RawBatch]:
        items = iter(self.messages)
        position = 1
        while batch := list(islice(items, batch_size)):
            yield RawBatch("message", position, batch)
            position += len(batch)


def as_message_list(value: Any) -> list[Any]:
    """The ``messages`` argument as a real list.

    Lists pulled through string templates arrive as their JSON text (Airflow #11983):
    that is parsed. A single dict, or text that is not a JSON array, is refused.
    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            rule = f"is text but not a JSON array ({len(value)} characters rendered"
            if value.lstrip().startswith(("[{'", "({'", "[(")):
                rule += ": it looks like a Python repr; render the list with '| tojson'"
            raise CascadeValidationError(
                [Problem("messages", "messages", rule + ")", "INVALID_BODY")]
            ) from None
    if isinstance(value, Mapping) or not isinstance(value, Sequence) or isinstance(value, bytes):
        raise CascadeValidationError(
            [
                Problem(
                    "messages",
                    "messages",
                    f"must be a list of messages, not {type(value).__name__}",
                    "INVALID_BODY",
                )
            ]
        )
    return list(value)


class SqlSource:
    """Rows of ``sql`` on any common-sql connection, fetched ``batch_size`` at a time.

    Columns map to message fields by name (``id``/``tracking_id``, ``from_name``,
    ``to_phone``, ``message_type``, ``text``, ``ttl``, ``scheduled_sent``,
    ``survey_options``; any case; the API's own names work too), once per query; errors
    name the column as the query did. A column that names no field is an error before
    anything is sent, with the nearest field suggested.

    Where the driver would otherwise load the whole result into memory before the first
    ``fetchmany`` (psycopg 2 and 3, mysqlclient, PyMySQL), rows come through a server-side
    cursor, and ``mark_sent_sql`` runs on a second connection, committed per batch, so
    that writing back neither disturbs the stream nor waits for it to end. Other drivers
    (SQLite...) stream with ``fetchmany`` and write back on the same connection.
    """

    total = None  # a query's size is not known before it is read

    def __init__(self, conn_id: str, sql: str, parameters: Any = None) -> None:
        self.conn_id = conn_id
        self.sql = sql
        self.parameters = parameters
        self._hook: Any = None
        self._conn: Any = None
        self._writer: Any = None
        self._server_side = False
        self._stream: Generator[RawBatch, None, None] | None = None

    def __enter__(self) -> SqlSource:
        self._hook = sql_hook(self.conn_id, "sql=")
        self._conn = self._hook.get_conn()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._stream is not None:
            self._stream.close()  # its cursor first, in this thread, while the connection lives
            self._stream = None
        for conn in (self._writer, self._conn):
            if conn is not None:
                conn.close()
        self._conn = self._writer = None

    @property
    def driver(self) -> str:
        """The DB-API module of the connection: ``psycopg2``, ``psycopg``, ``MySQLdb``..."""
        return type(self._conn).__module__.split(".")[0]

    def _stream_cursor(self) -> tuple[Any, bool]:
        """A cursor that streams, and whether it is server-side."""
        driver = self.driver
        if driver in ("psycopg2", "psycopg"):
            return self._conn.cursor(name="cascade_send_stream"), True
        if driver == "MySQLdb":
            from MySQLdb.cursors import SSCursor

            return self._conn.cursor(SSCursor), True
        if driver == "pymysql":
            from pymysql.cursors import SSCursor as PyMySQLSSCursor

            return self._conn.cursor(PyMySQLSSCursor), True
        return self._conn.cursor(), False

    def count(self) -> int:
        """``SELECT COUNT(*) FROM (<sql>) AS q`` with the same parameters, on the same
        connection, before the rows are streamed."""
        with closing(self._conn.cursor()) as cursor:
            query = f"SELECT COUNT(*) FROM ({self.sql.strip().rstrip(';')}) AS q"
            if self.parameters:
                cursor.execute(query, self.parameters)
            else:
                cursor.execute(query)
            return int(cursor.fetchone()[0])

    def batches(self, batch_size: int) -> Generator[RawBatch, None, None]:
        """The rows, ``batch_size`` at a time, in field order (see :class:`RawBatch`)."""
        self._stream = self._batches(batch_size)
        return self._stream

    def _batches(self, batch_size: int) -> Generator[RawBatch, None, None]:
        cursor, server_side = self._stream_cursor()
        self._server_side = server_side
        with closing(cursor):
            if self.parameters:
                cursor.execute(self.sql, self.parameters)
            else:
                cursor.execute(self.sql)
            # A server-side cursor may only describe its columns once rows were fetched.
            rows = cursor.fetchmany(batch_size)
            names = [str(column[0]) for column in cursor.description or ()]
            fields = _message_fields(names)
            spelling = dict(zip(fields, names, strict=True))
            # Each field's value, by its column's position; a field without a column reads
            # the None appended to every row (position -1). Mapped once, applied in C.
            in_field_order = itemgetter(
                *(fields.index(name) if name in fields else -1 for name in FIELDS)
            )
            position = 1
            while rows:
                yield RawBatch(
                    "row",
                    position,
                    [list(in_field_order((*row, None))) for row in rows],
                    spelling=spelling,
                )
                position += len(rows)
                rows = cursor.fetchmany(batch_size)

    def check_write_back(self, sql: str, log: Any) -> None:
        """Check ``mark_sent_sql`` on this connection before anything is sent
        (:mod:`~airflow_provider_cascade.statements`)."""
        check_statement(
            self._conn,
            sql,
            MARK_SENT_PARAMETERS,
            what="mark_sent_sql",
            conn_id=self.conn_id,
            log=log,
        )

    def write_back(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run ``sql`` once per row (named parameters) and commit."""
        conn = self._conn
        if self._server_side:
            if self._writer is None:
                self._writer = self._hook.get_conn()
            conn = self._writer
        execute_and_commit(conn, sql, rows)


def first_column(
    conn_id: str, sql: str, parameters: Any = None, batch_size: int = 10_000
) -> Iterator[tuple[str, Any]]:
    """The first column of each row of ``sql``, as ``(column name, value)``: streamed as
    :class:`SqlSource` streams (server-side where the driver would load it all)."""
    with SqlSource(conn_id, sql, parameters) as source:
        cursor, _ = source._stream_cursor()
        with closing(cursor):
            if parameters:
                cursor.execute(sql, parameters)
            else:
                cursor.execute(sql)
            rows = cursor.fetchmany(batch_size)
            name = str(cursor.description[0][0]) if cursor.description else "?"
            while rows:
                for row in rows:
                    yield name, row[0]
                rows = cursor.fetchmany(batch_size)


def _message_fields(names: Sequence[str]) -> list[str]:
    """The message field each column names, or ONE error naming every column that names none."""
    problems: list[Problem] = []
    fields: list[str] = []
    for name in names:
        field = field_for_key(name)
        if field is None:
            problems.append(
                Problem(
                    "sql",
                    name,
                    unknown_key_rule(name, "is a column that names no message field"),
                    "UNKNOWN_FIELD",
                )
            )
        elif field in fields:
            problems.append(
                Problem("sql", name, f"is a second column for {field}", "DUPLICATE_FIELD")
            )
        else:
            fields.append(field)
    if problems:
        raise CascadeValidationError(problems)
    return fields
