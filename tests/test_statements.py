"""Write-back statements checked before sending: placeholders by the driver's style, and
syntax by EXPLAIN (here on a real SQLite file; PostgreSQL and MariaDB in
tests/integration/databases)."""

from __future__ import annotations

import logging
import re
import sqlite3

import pytest

from airflow_provider_cascade.constants import MARK_SENT_PARAMETERS
from airflow_provider_cascade.exceptions import CascadeStatementError
from airflow_provider_cascade.statements import check_statement, placeholders

LOG = logging.getLogger(__name__)


def test_placeholders_outside_strings_comments_and_casts():
    sql = (
        "UPDATE t SET a = :message_id, b = 'at 10:30', c = x::text, d = %(tracking_id)s "
        "WHERE e = ? -- :not_this\n AND f = %s AND g = $$ :nor_this $$ AND h = 'it''s :no'"
    )
    assert [(p.style, p.name) for p in placeholders(sql)] == [
        ("named", "message_id"),
        ("pyformat", "tracking_id"),
        ("qmark", None),
        ("format", None),
    ]


@pytest.fixture
def outbox(tmp_path):
    conn = sqlite3.connect(tmp_path / "outbox.db")
    conn.execute("CREATE TABLE outbox (id INTEGER PRIMARY KEY, message_id TEXT, sent_at TEXT)")
    conn.execute("CREATE TABLE audit (what TEXT)")
    conn.execute(
        "CREATE TRIGGER marked AFTER UPDATE ON outbox BEGIN INSERT INTO audit VALUES ('x'); END"
    )
    conn.execute("INSERT INTO outbox (id) VALUES (1)")
    conn.commit()
    yield conn
    conn.close()


def check(conn, sql):
    check_statement(conn, sql, MARK_SENT_PARAMETERS, what="mark_sent_sql", conn_id="db", log=LOG)


def test_the_sqlite_style_passes_and_changes_nothing(outbox):
    check(outbox, "UPDATE outbox SET message_id = :message_id WHERE id = :tracking_id")
    assert outbox.execute("SELECT message_id FROM outbox").fetchall() == [(None,)]
    assert outbox.execute("SELECT COUNT(*) FROM audit").fetchone() == (0,)


def test_the_postgres_style_on_sqlite_is_rewritten(outbox):
    with pytest.raises(CascadeStatementError) as error:
        check(outbox, "UPDATE outbox SET message_id = %(message_id)s WHERE id = %(tracking_id)s")
    said = str(error.value)
    assert "'db' (sqlite3, named parameters like :message_id, :tracking_id, :sent_at)" in said
    assert "Write it as: UPDATE outbox SET message_id = :message_id WHERE id = :tracking_id" in said


@pytest.mark.parametrize(
    ("sql", "says"),
    [
        ("UPDATE outbox SET message_id = ? WHERE id = ?", "positional placeholders (?)"),
        ("UPDATE outbox SET message_id = :message_id WHERE id = :order_id", ":order_id, which"),
        ("UPDATE outbox SET mesage_id = :message_id WHERE id = :tracking_id", "no such column"),
        ("UPDATE outbx SET message_id = :message_id WHERE id = :tracking_id", "no such table"),
        ("UPDATE outbox SET message_id = :message_id WERE id = :tracking_id", "syntax error"),
    ],
)
def test_mistakes_are_named(outbox, sql, says):
    with pytest.raises(CascadeStatementError, match=re.escape(says)):
        check(outbox, sql)


def test_a_statement_explain_does_not_take_is_checked_for_placeholders_only(outbox, caplog):
    with caplog.at_level(logging.INFO):
        check(outbox, "PRAGMA optimize(:message_id, :tracking_id)")
    assert "its syntax is not" in caplog.text


def test_a_statement_error_fails_the_task_without_its_retries():
    from airflow.providers.common.compat.sdk import AirflowFailException

    assert issubclass(CascadeStatementError, AirflowFailException)
