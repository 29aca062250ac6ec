"""Any common-sql connection, as the provider uses it: its ``DbApiHook`` (refusing another
type by name), a statement checked on it, and statements run once per row and committed
(the send's ``mark_sent_sql`` and the delivery side's ``mark_delivered_sql``)."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from contextlib import closing
from typing import Any

from airflow_provider_cascade.exceptions import CascadeError
from airflow_provider_cascade.statements import check_statement

__all__ = [
    "RowWriter",
    "check_statement_on",
    "execute_and_commit",
    "execute_many",
    "sql_hook",
    "write_rows",
]


def sql_hook(conn_id: str, argument: str) -> Any:
    """The ``DbApiHook`` of a common-sql connection.

    :raises CascadeError: the connection is of another type, named with the fix.
    """
    from airflow.providers.common.compat.sdk import BaseHook
    from airflow.providers.common.sql.hooks.sql import DbApiHook

    connection = BaseHook.get_connection(conn_id)
    hook = connection.get_hook()  # type: ignore[no-untyped-call]
    if not isinstance(hook, DbApiHook):
        raise CascadeError(
            f"connection {conn_id!r} is of type {connection.conn_type!r} ({type(hook).__name__}), "
            f"not a SQL database: {argument} needs a common-sql connection (postgres, mysql, "
            "sqlite...)"
        )
    return hook


def check_statement_on(conn_id: str, sql: str, given: Sequence[str], what: str, log: Any) -> None:
    """Check a statement on its own connection of ``conn_id``, before anything is sent or
    waited for (:func:`~airflow_provider_cascade.statements.check_statement`)."""
    with closing(sql_hook(conn_id, f"{what}=").get_conn()) as conn:
        check_statement(conn, sql, given, what=what, conn_id=conn_id, log=log)


def write_rows(
    conn_id: str, sql: str, rows: Sequence[Mapping[str, Any]], chunk_size: int = 1_000
) -> None:
    """Run ``sql`` once per row (named parameters) on any common-sql connection, committed
    per chunk: the delivery side's write-back, as ``mark_sent_sql`` is the send side's."""
    with closing(sql_hook(conn_id, "mark_delivered_sql=").get_conn()) as conn:
        for start in range(0, len(rows), chunk_size):
            execute_and_commit(conn, sql, rows[start : start + chunk_size])


def execute_and_commit(conn: Any, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """``sql`` once per row (named parameters), then commit: every write-back's step."""
    with closing(conn.cursor()) as cursor:
        execute_many(cursor, sql, rows)
    conn.commit()


#: Rows per round trip where the driver's executemany makes one per row (psycopg2).
PAGE_SIZE = 100


def execute_many(cursor: Any, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """``sql`` once per row, in as few round trips as the driver allows.

    psycopg2's ``executemany`` sends one statement per round trip; its ``execute_batch``
    sends :data:`PAGE_SIZE` in one (the same statements, run in the same order, in the
    same transaction): a quarter of the client's CPU and twice the rows/s
    (``benchmarks/write_back.py``). Other drivers batch in ``executemany``
    already (psycopg 3 pipelines it: the PostgresHook's driver where it is installed;
    sqlite3) or have no such helper (MySQL's for ``UPDATE``).
    """
    psycopg2 = sys.modules.get("psycopg2")  # not imported: not a psycopg2 cursor
    if psycopg2 is not None and isinstance(cursor, psycopg2.extensions.cursor):
        from psycopg2.extras import execute_batch

        execute_batch(cursor, sql, rows, page_size=PAGE_SIZE)
    else:
        cursor.executemany(sql, rows)


class RowWriter:
    """A statement run once per row (named parameters) on a connection of its own, each
    call committed: ``mark_sent_sql`` for a source that is not that database (a
    ``@task.cascade`` function). Use as a context manager; :meth:`check` it before the
    first message is sent."""

    def __init__(self, conn_id: str, sql: str, what: str) -> None:
        self.conn_id = conn_id
        self.sql = sql
        self.what = what
        self._conn: Any = None

    def __enter__(self) -> RowWriter:
        self._conn = sql_hook(self.conn_id, f"{self.what}=").get_conn()
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def check(self, given: Sequence[str], log: Any) -> None:
        """:func:`~airflow_provider_cascade.statements.check_statement` on this connection."""
        check_statement(self._conn, self.sql, given, what=self.what, conn_id=self.conn_id, log=log)

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> None:
        execute_and_commit(self._conn, self.sql, rows)
