"""The SQL statements the provider runs after sending, checked before the first request.

A write-back (``mark_sent_sql``, ``mark_delivered_sql``) runs only once messages are
accepted: a mistake found then leaves accepted messages unmarked, and the next run of the
DAG selects and sends them again. So each statement is checked on its connection before
anything is sent or waited for:

1. **Placeholders against the driver's style.** Rows are bound by name, so a statement
   takes named parameters in the style of its driver: ``%(message_id)s`` (psycopg 2 and 3,
   mysqlclient, PyMySQL, mysql-connector) or ``:message_id`` (SQLite, Oracle). A statement
   written in another style (``:x``, ``%(x)s``, ``?``, ``%s``), or naming a parameter the
   write-back does not give, fails with the statement as it should be written.
2. **Syntax and names, without side effects**: ``EXPLAIN <statement>`` with every parameter
   NULL, where the database has it (PostgreSQL, MySQL/MariaDB, SQLite): planned, never run,
   so no trigger fires, no sequence advances, and a MyISAM table is never touched. Then
   rolled back. Other databases, and statements EXPLAIN does not take (``CALL``...), get
   the placeholder check only, and the log says so.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from contextlib import closing
from dataclasses import dataclass
from typing import Any, Literal

from airflow_provider_cascade.exceptions import CascadeStatementError

Style = Literal["pyformat", "named"]

#: The placeholder style of each driver's named parameters (DB-API ``paramstyle`` where
#: it is the named one; ``sqlite3`` says ``qmark`` but binds ``:name`` too).
DRIVER_STYLES: dict[str, Style] = {
    "psycopg2": "pyformat",
    "psycopg": "pyformat",
    "MySQLdb": "pyformat",
    "pymysql": "pyformat",
    "mysql": "pyformat",  # mysql.connector
    "pymssql": "pyformat",
    "sqlite3": "named",
    "oracledb": "named",
    "cx_Oracle": "named",
}
#: Drivers whose database plans a statement with ``EXPLAIN`` without running it.
EXPLAINS = frozenset({"psycopg2", "psycopg", "MySQLdb", "pymysql", "mysql", "sqlite3"})
#: The statements those databases EXPLAIN.
_EXPLAINABLE = frozenset({"update", "insert", "delete", "replace", "merge", "select", "with"})

# Strings, quoted names, comments and dollar quotes hold no placeholder; skipped whole.
_SKIPPED = (
    r"'(?:[^'\\]|\\.|'')*'|\"(?:[^\"]|\"\")*\"|`[^`]*`"  # strings, quoted names
    r"|--[^\n]*|/\*.*?\*/|\$(?P<tag>\w*)\$.*?\$(?P=tag)\$"  # comments, dollar quotes
)
_TOKENS = re.compile(
    rf"(?P<skip>{_SKIPPED})"
    r"|%\((?P<pyformat>[^)]*)\)s"
    r"|(?P<format>%s)"
    r"|(?P<cast>::)"
    r"|(?<![\w:]):(?P<named>[A-Za-z_]\w*)"
    r"|(?P<qmark>\?)",
    re.DOTALL,
)


@dataclass(frozen=True)
class Placeholder:
    """One placeholder: its style (``pyformat``, ``named``, ``format``, ``qmark``), its
    name when it has one, and where it stands."""

    style: str
    name: str | None
    start: int
    end: int


def placeholders(sql: str) -> list[Placeholder]:
    """Every placeholder of ``sql``, in order, outside strings, quoted names and comments."""
    found = []
    for match in _TOKENS.finditer(sql):
        for style in ("pyformat", "named", "format", "qmark"):
            if match[style] is not None:
                name = match[style] if style in ("pyformat", "named") else None
                found.append(Placeholder(style, name, *match.span()))
                break
    return found


def _written_as(style: Style, name: str) -> str:
    return f"%({name})s" if style == "pyformat" else f":{name}"


def _rewritten(sql: str, marks: list[Placeholder], style: Style) -> str:
    out, last = [], 0
    for mark in marks:
        out += [sql[last : mark.start], _written_as(style, mark.name or "?")]
        last = mark.end
    return "".join([*out, sql[last:]])


def check_placeholders(
    sql: str, style: Style, given: Collection[str], *, what: str, conn_id: str, driver: str
) -> None:
    """Fail unless ``sql`` binds only names of ``given``, in ``style``.

    :raises CascadeStatementError: naming the connection's style and the statement as it
        should be written.
    """
    marks = placeholders(sql)
    own = [mark for mark in marks if mark.style == style]
    example = ", ".join(_written_as(style, name) for name in given)
    intro = f"{what} on connection {conn_id!r} ({driver}, {style} parameters like {example})"
    if not own:
        named = [mark for mark in marks if mark.name is not None]
        if named:
            raise CascadeStatementError(
                f"{intro} is written in another style ({sql[named[0].start : named[0].end]}): "
                f"the database would fail after the first messages were sent. Write it as: "
                f"{_rewritten(sql, named, style)}"
            )
        if marks:
            raise CascadeStatementError(
                f"{intro} uses positional placeholders ({sql[marks[0].start : marks[0].end]}); "
                f"each row is bound by name: use {example}"
            )
        raise CascadeStatementError(
            f"{intro} uses no parameter, so every row would be written the same: use {example}"
        )
    unknown = sorted({mark.name or "" for mark in own} - set(given))
    if unknown:
        raise CascadeStatementError(
            f"{intro} uses {', '.join(_written_as(style, n) for n in unknown)}, which the "
            f"write-back does not give: it gives {example}"
        )


def check_statement(
    conn: Any, sql: str, given: Collection[str], *, what: str, conn_id: str, log: Any
) -> None:
    """Check ``sql`` on the open DB-API connection ``conn`` before anything is sent.

    :param given: the names each row binds (``message_id``, ``tracking_id``...).
    :param what: how the user named the statement (``mark_sent_sql``), for errors.
    :raises CascadeStatementError: wrong placeholders, or the database refused to plan it.
    """
    driver = type(conn).__module__.split(".")[0]
    style = DRIVER_STYLES.get(driver)
    if style is None:
        log.info(
            "%s not checked before sending: no known parameter style for the %s driver",
            what,
            driver,
        )
        return
    check_placeholders(sql, style, given, what=what, conn_id=conn_id, driver=driver)
    first_word = sql.lstrip(" \t\r\n(").split(None, 1)[0].lower() if sql.strip() else ""
    if driver not in EXPLAINS or first_word not in _EXPLAINABLE:
        log.info(
            "%s: placeholders checked; its syntax is not (no side-effect-free check for a %s "
            "statement on %s)",
            what,
            first_word.upper() or "empty",
            driver,
        )
        return
    try:
        with closing(conn.cursor()) as cursor:
            cursor.execute("EXPLAIN " + sql, dict.fromkeys(given))
            cursor.fetchall()
    except Exception as error:
        raise CascadeStatementError(
            f"{what} on connection {conn_id!r} cannot run: the database refused to plan it "
            f"({type(error).__name__}: {str(error).strip().splitlines()[0]}); nothing was sent"
        ) from None
    finally:
        conn.rollback()
