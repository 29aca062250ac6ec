"""The SQL source and the outbox write-back on real PostgreSQL and MariaDB/MySQL servers.

Skipped where no server answers (a laptop); CI sets CASCADE_REQUIRE_DATABASES=1, which
turns a missing server into a failure."""

from __future__ import annotations

import json
import logging
import os
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import BaseHook
from airflow.utils.state import DagRunState

from airflow_provider_cascade.constants import MARK_SENT_PARAMETERS
from airflow_provider_cascade.exceptions import (
    CascadeStatementError,
    CascadeValidationError,
    CascadeWriteBackError,
)
from airflow_provider_cascade.operators.cascade import CascadeSendOperator
from airflow_provider_cascade.results import CascadeSendResult
from airflow_provider_cascade.send import CascadeRequests
from airflow_provider_cascade.send.sources import SqlSource
from airflow_provider_cascade.sql import check_statement_on
from tests.airflow_runs import run, xcom
from tests.dags import cascade_test_dags as dags
from tests.fakes import MemoryStore
from tests.reliability._helpers import TI

LOG = logging.getLogger(__name__)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.usefixtures("airflow_db"),
    pytest.mark.compat("sql"),
]

# The Airflow-version lanes of `make test` run at the same time, each in its own database
# (created on first use), so their outbox tables never meet.
DATABASE = os.environ.get("CASCADE_TEST_DATABASE", "test")
SERVERS = {
    "postgres": {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres"},
    "mysql": {"conn_type": "mysql", "host": "127.0.0.1", "port": 3306, "login": "root"},
}
CONNECTIONS = {name: {**server, "schema": DATABASE} for name, server in SERVERS.items()}
DDL = {
    "postgres": """CREATE TABLE cascade_outbox (
        id BIGINT PRIMARY KEY, to_phone TEXT NOT NULL, text TEXT, ttl NUMERIC,
        scheduled_sent TIMESTAMPTZ, survey_options JSONB, message_type TEXT,
        message_id TEXT, sent_at TEXT, delivery_status TEXT, delivered_by TEXT)""",
    "mysql": """CREATE TABLE cascade_outbox (
        id BIGINT PRIMARY KEY, to_phone VARCHAR(32) NOT NULL, text TEXT, ttl DECIMAL(12, 0),
        scheduled_sent DATETIME, survey_options JSON, message_type VARCHAR(32),
        message_id VARCHAR(64), sent_at VARCHAR(32), delivery_status VARCHAR(32),
        delivered_by VARCHAR(32))""",
}


def _hook(database: str) -> Any:
    return BaseHook.get_connection(f"cascade_test_{database}").get_hook()


@pytest.fixture(params=["postgres", "mysql"])
def database(request, monkeypatch) -> Iterator[str]:
    with _database(request.param, monkeypatch) as name:
        yield name


@pytest.fixture
def postgres(monkeypatch) -> Iterator[str]:
    with _database("postgres", monkeypatch) as name:
        yield name


@contextmanager
def _database(name: str, monkeypatch) -> Iterator[str]:
    monkeypatch.setenv(f"AIRFLOW_CONN_CASCADE_TEST_{name.upper()}", json.dumps(CONNECTIONS[name]))
    try:
        _create_database(name, monkeypatch)
        hook = _hook(name)
        hook.run("DROP TABLE IF EXISTS cascade_outbox")
        hook.run(DDL[name])
    except Exception as error:  # no server here
        if os.environ.get("CASCADE_REQUIRE_DATABASES"):
            raise
        pytest.skip(f"no {name} server answers on 127.0.0.1: {error}")
    yield name
    hook.run("DROP TABLE IF EXISTS cascade_outbox")


def _create_database(name: str, monkeypatch) -> None:
    if DATABASE == "test":  # there on every machine of this project
        return
    home = {**SERVERS[name], "schema": "postgres" if name == "postgres" else ""}
    monkeypatch.setenv("AIRFLOW_CONN_CASCADE_TEST_SERVER", json.dumps(home))
    server = BaseHook.get_connection("cascade_test_server").get_hook()
    if name == "postgres":
        if not server.get_first("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)):
            server.run(f'CREATE DATABASE "{DATABASE}"', autocommit=True)
    else:
        server.run(f"CREATE DATABASE IF NOT EXISTS `{DATABASE}`")


def fill(database: str, rows: int, **extra: dict[str, Any]) -> None:
    hook = _hook(database)
    hook.insert_rows(
        "cascade_outbox",
        ((n, f"+38067{n:07d}", f"Sale for customer {n}") for n in range(1, rows + 1)),
        target_fields=["id", "to_phone", "text"],
        commit_every=5_000,
    )
    for row_id, columns in extra.items():
        placeholders = ", ".join(f"{column} = %s" for column in columns)
        hook.run(
            f"UPDATE cascade_outbox SET {placeholders} WHERE id = %s",
            parameters=(*columns.values(), int(row_id)),
        )


def outbox_state(database: str) -> tuple[int, int]:
    return _hook(database).get_first("SELECT COUNT(message_id), COUNT(*) FROM cascade_outbox")


def test_rows_stream_through_a_server_side_cursor(database):
    fill(database, 10)
    with SqlSource(f"cascade_test_{database}", dags.DB_OUTBOX_SELECT) as source:
        cursor, server_side = source._stream_cursor()
        cursor.close()
        assert server_side, source.driver
        batches = list(source.batches(4))
    assert [len(b.items) for b in batches] == [4, 4, 2]
    # Rows come in field order (tracking_id first), the key as the database gave it.
    assert batches[0].items[0][0] == 1 and batches[0].spelling["tracking_id"] == "id"


def test_25000_rows_are_sent_once_marked_and_a_rerun_sends_nothing(database, sandbox):
    fill(database, 25_000)
    dag = dags.postgres_outbox if database == "postgres" else dags.mysql_outbox
    dag_run, _ = run(dag)
    assert dag_run.state == DagRunState.SUCCESS
    result = CascadeSendResult.load(xcom(dag_run, "send"))
    assert result.sent == 25_000 and result.batches == 25
    recorded = {m["tracking_id"]: m["message_id"] for m in sandbox.messages()}
    assert len(recorded) == 25_000 and sandbox.stats()["duplicate_tracking_ids"] == 0
    rows = _hook(database).get_records("SELECT id, message_id FROM cascade_outbox")
    assert all(recorded[str(row_id)] == message_id for row_id, message_id in rows)

    rerun, _ = run(dag)
    assert xcom(rerun, "send")["sent"] == 0 and sandbox.stats()["accepted"] == 25_000


def test_a_retry_after_a_mid_campaign_failure_sends_each_row_once(database, sandbox):
    fill(database, 5_000)
    # Batch 3's request fails twice (the hook's one retry too): the task fails after
    # writing back batches 1-2; Airflow's retry sends only the rest.
    sandbox.set_faults(script=[None, None, "500", "500"])
    dag = dags.postgres_outbox_serial if database == "postgres" else dags.mysql_outbox_serial
    dag_run, tis = run(dag)
    assert dag_run.state == DagRunState.SUCCESS and tis["send"].try_number == 2
    counts = Counter(m["tracking_id"] for m in sandbox.messages())
    assert len(counts) == 5_000 and max(counts.values()) == 1
    assert outbox_state(database) == (5_000, 5_000)


def test_opted_out_and_repeated_numbers_are_neither_sent_nor_marked(database, sandbox):
    fill(database, 12, **{"5": {"to_phone": "+380670000001"}, "9": {"to_phone": "+380670000001"}})
    hook = _hook(database)
    hook.run("DROP TABLE IF EXISTS cascade_optouts")
    hook.run("CREATE TABLE cascade_optouts (phone VARCHAR(32))")
    try:
        hook.insert_rows(
            "cascade_optouts", [("+380 67 000 0003",), ("380670000007",)], target_fields=["phone"]
        )
        dag = dags.postgres_guarded if database == "postgres" else dags.mysql_guarded
        dag_run, _ = run(dag)
    finally:
        hook.run("DROP TABLE cascade_optouts")
    assert dag_run.state == DagRunState.SUCCESS
    value = xcom(dag_run, "send")
    assert value["suppressed"] == 2 and sorted(value["suppressed_ids"]) == ["3", "7"]
    assert [d["tracking_id"] for d in value["duplicates"]] == ["5", "9"]
    sent = {"1", "2", "4", "6", "8", "10", "11", "12"}
    assert {m["tracking_id"] for m in sandbox.messages()} == sent and value["sent"] == len(sent)
    unmarked = hook.get_records(
        "SELECT id FROM cascade_outbox WHERE message_id IS NULL ORDER BY id"
    )
    assert [row_id for (row_id,) in unmarked] == [3, 5, 7, 9]


def test_driver_types_are_mapped_or_named(database, sandbox):
    later = datetime.now(timezone.utc) + timedelta(hours=3)
    fill(
        database,
        3,
        **{
            "1": {
                "ttl": Decimal("3600"),
                "scheduled_sent": later if database == "postgres" else later.replace(tzinfo=None),
            },
            "2": {
                "message_type": "viber_survey",
                "text": "Happy?",
                "survey_options": '["Yes", "No"]',
            },
        },
    )
    operator = CascadeSendOperator(
        task_id="send",
        sql=dags.DB_OUTBOX_SELECT,
        sql_conn_id=f"cascade_test_{database}",
        from_name="Brand",
        message_type="promo",
    )
    if database == "postgres":  # TIMESTAMPTZ comes back aware: it is used as it is
        result = operator.execute({"ti": TI()})
        assert result["sent"] == 3
        by_id = {m["tracking_id"]: m for m in sandbox.messages()}
        assert by_id["1"]["scheduled_sent"] == later.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert by_id["2"]["message_type"] == "viber_survey"
    else:  # DATETIME comes back naive: which zone is it in? Refused, naming row and column.
        with pytest.raises(
            CascadeValidationError, match=r"row 1 \(1\): scheduled_sent has no time zone"
        ):
            operator.execute({"ti": TI()})
        assert sandbox.stats()["requests"] == 0


@pytest.mark.compat("sensor_poke")
def test_delivery_is_written_back_to_every_row(database, sandbox):
    fill(database, 30)
    dag = dags.postgres_tracked if database == "postgres" else dags.mysql_tracked
    dag_run, _ = run(dag)
    assert dag_run.state == DagRunState.SUCCESS
    rows = _hook(database).get_records(
        "SELECT id, delivery_status, delivered_by FROM cascade_outbox ORDER BY id"
    )
    # Phones +38067<id>: the last digit decides (0 undeliverable, else a channel).
    assert [(status, channel is None) for _, status, channel in rows] == [
        ("undeliverable", True) if row_id % 10 == 0 else ("delivered", False)
        for row_id, _, _ in rows
    ]


# --- write-backs checked before the first request ----------------------------------------


def test_a_write_back_in_the_wrong_style_fails_before_anything_is_sent(postgres, sandbox):
    """The SQLite example's ``:name`` on PostgreSQL once sent a batch, then failed, and the
    fixed DAG's next run sent it again. Now nothing is sent, and no retry is spent."""
    fill("postgres", 1_500)
    dag_run, tis = run(dags.postgres_sqlite_style)
    assert dag_run.state == DagRunState.FAILED
    assert tis["send"].try_number == 1  # retries=1, not used: a retry cannot fix it
    assert sandbox.stats()["requests"] == 0 and outbox_state("postgres") == (0, 1_500)
    operator = CascadeSendOperator(
        task_id="send",
        sql=dags.DB_OUTBOX_SELECT,
        sql_conn_id="cascade_test_postgres",
        mark_sent_sql=dags.postgres_sqlite_style.get_task("send").mark_sent_sql,
        from_name="Brand",
        message_type="promo",
    )
    with pytest.raises(CascadeStatementError) as error:
        operator.execute({"ti": TI()})
    assert re.search(r"'cascade_test_postgres' \(psycopg2?, pyformat parameters", str(error.value))
    assert (
        "Write it as: UPDATE cascade_outbox SET message_id = %(message_id)s, sent_at = "
        "%(sent_at)s WHERE id = %(tracking_id)s" in str(error.value)
    )
    assert sandbox.stats()["requests"] == 0


@pytest.mark.parametrize(
    ("statement", "says"),
    [
        (
            "UPDATE cascade_outbox SET message_id = %(message_id)s WHERE id = %(order_id)s",
            "uses %(order_id)s, which the write-back does not give",
        ),
        ("UPDATE cascade_outbox SET message_id = %s WHERE id = %s", "positional placeholders"),
        ("UPDATE cascade_outbox SET message_id = 'x'", "uses no parameter"),
        (
            "UPDATE cascade_outbox SET mesage_id = %(message_id)s WHERE id = %(tracking_id)s",
            "refused to plan it",
        ),
        (
            "UPDATE cascade_outbox SET message_id = %(message_id)s WHERE id = %(tracking_id)s"
            " AND text LIKE 'Sale%'",
            "refused to plan it",
        ),
        (
            "UPDATE cascade_outboxes SET message_id = %(message_id)s WHERE id = %(tracking_id)s",
            "refused to plan it",
        ),
    ],
)
def test_each_write_back_mistake_is_named_before_sending(database, sandbox, statement, says):
    fill(database, 3)
    operator = CascadeSendOperator(
        task_id="send",
        sql=dags.DB_OUTBOX_SELECT,
        sql_conn_id=f"cascade_test_{database}",
        mark_sent_sql=statement,
        from_name="Brand",
        message_type="promo",
    )
    with pytest.raises(CascadeStatementError, match=re.escape(says)):
        operator.execute({"ti": TI()})
    assert sandbox.stats()["requests"] == 0 and outbox_state(database) == (0, 3)


def test_the_check_has_no_side_effect(database):
    """EXPLAIN plans the statement: no trigger fires, no sequence or auto-increment moves,
    and a table that cannot roll back (MyISAM) is not touched."""
    hook = _hook(database)
    hook.run("DROP TABLE IF EXISTS cascade_marks")
    if database == "postgres":
        hook.run("DROP TABLE IF EXISTS cascade_audit")
        hook.run("CREATE TABLE cascade_audit (n SERIAL PRIMARY KEY, what TEXT)")
        hook.run(
            "CREATE TABLE cascade_marks (n SERIAL PRIMARY KEY, message_id TEXT, tracking_id TEXT)"
        )
        hook.run(
            "CREATE OR REPLACE FUNCTION cascade_audit_it() RETURNS trigger AS $$ BEGIN "
            "INSERT INTO cascade_audit (what) VALUES ('fired'); RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        hook.run(
            "CREATE TRIGGER cascade_marks_audit BEFORE INSERT ON cascade_marks "
            "FOR EACH ROW EXECUTE FUNCTION cascade_audit_it()"
        )
    else:
        hook.run(
            "CREATE TABLE cascade_marks (n INT AUTO_INCREMENT PRIMARY KEY, message_id TEXT, "
            "tracking_id TEXT) ENGINE=MyISAM"
        )
    statement = (
        "INSERT INTO cascade_marks (message_id, tracking_id) "
        "VALUES (%(message_id)s, %(tracking_id)s)"
    )
    try:
        check_statement_on(
            f"cascade_test_{database}", statement, MARK_SENT_PARAMETERS, "mark_sent_sql", LOG
        )
        hook.run("INSERT INTO cascade_marks (message_id, tracking_id) VALUES ('m', 't')")
        # The first real row gets the first number: nothing was used up by the check.
        assert [tuple(row) for row in hook.get_records("SELECT n FROM cascade_marks")] == [(1,)]
        if database == "postgres":
            assert [tuple(r) for r in hook.get_records("SELECT n, what FROM cascade_audit")] == [
                (1, "fired")
            ]
    finally:
        hook.run("DROP TABLE IF EXISTS cascade_marks")
        if database == "postgres":
            hook.run("DROP TABLE IF EXISTS cascade_audit")
            hook.run("DROP FUNCTION IF EXISTS cascade_audit_it")


def test_a_delivery_write_back_mistake_fails_before_the_wait(database, sandbox):
    from airflow_provider_cascade.delivery import CascadeWriteBack
    from airflow_provider_cascade.sensors.cascade import CascadeDeliverySensor

    sensor = CascadeDeliverySensor(
        task_id="wait",
        message_ids=["00000000-0000-4000-8000-000000000001"],
        write_back=CascadeWriteBack(
            sql="UPDATE cascade_outbox SET delivery_status = :status WHERE id = :tracking_id",
            conn_id=f"cascade_test_{database}",
        ),
        poke_interval=0.1,
        timeout=5,
    )
    with pytest.raises(
        CascadeStatementError,
        match=r"Write it as: UPDATE cascade_outbox SET "
        r"delivery_status = %\(status\)s WHERE id = %\(tracking_id\)s",
    ):
        sensor.execute({"ti": TI()})
    assert sandbox.stats()["status_requests"] == 0


def test_a_write_back_that_fails_after_sending_stops_and_its_retry_marks_without_resending(
    postgres, sandbox
):
    """The database fails while marking batch 2 (a trigger raises once): the send stops at
    once, says how many are accepted and unmarked and where their ids are; the task's retry
    (the same state store) marks them and sends nothing twice."""
    fill("postgres", 5_000)
    hook = _hook("postgres")
    hook.run("DROP SEQUENCE IF EXISTS cascade_fail_once")
    hook.run("CREATE SEQUENCE cascade_fail_once")
    hook.run(
        "CREATE OR REPLACE FUNCTION cascade_fail_once() RETURNS trigger AS $$ BEGIN "
        "IF NEW.id = 1500 AND nextval('cascade_fail_once') = 1 THEN "
        "RAISE EXCEPTION 'the database went away'; END IF; RETURN NEW; END $$ "
        "LANGUAGE plpgsql"
    )
    hook.run(
        "CREATE TRIGGER cascade_fail_once BEFORE UPDATE ON cascade_outbox "
        "FOR EACH ROW EXECUTE FUNCTION cascade_fail_once()"
    )
    store = MemoryStore()
    arguments = {
        "sql": dags.DB_OUTBOX_SELECT,
        "sql_conn_id": "cascade_test_postgres",
        "mark_sent_sql": dags.DB_MARK_SENT,
        "from_name": "Brand",
        "message_type": "promo",
        "requests": CascadeRequests(max_in_flight=1),
    }
    context = {"ti": TI(), "task_state_store": store}
    with pytest.raises(CascadeWriteBackError) as error:
        CascadeSendOperator(task_id="send", **arguments).execute(context)
    assert len(error.value.unmarked) == 1_000
    assert sandbox.stats()["accepted"] == 2_000  # stopped at once: batch 3 never went
    assert outbox_state("postgres") == (1_000, 5_000)
    said = str(error.value)
    assert "the database went away" in said and "1000 message(s) that are not marked" in said
    assert "a retry of this task marks them without sending them again" in said
    assert "a new DAG run would select them again" in said

    result = CascadeSendOperator(task_id="send", **arguments).execute(context)
    assert result["sent"] == 4_000  # batches 2-5: batch 2 marked, not sent again
    assert sandbox.stats()["accepted"] == 5_000
    assert sandbox.stats()["duplicate_tracking_ids"] == 0
    assert outbox_state("postgres") == (5_000, 5_000)


def test_the_write_back_on_psycopg2_goes_a_page_of_rows_a_round_trip(postgres):
    """psycopg2's executemany is one round trip a row: on a psycopg2 connection (the
    PostgresHook's without psycopg 3 installed) the write-back sends PAGE_SIZE rows in one
    statement string (execute_batch), the rows updated the same."""
    import psycopg2
    import psycopg2.extensions

    from airflow_provider_cascade.sql import PAGE_SIZE, execute_and_commit

    fill(postgres, 250)
    calls: list[int] = []

    class Counting(psycopg2.extensions.cursor):
        def execute(self, query: Any, vars: Any = None) -> Any:
            calls.append(1)
            return super().execute(query, vars)

    conn = psycopg2.connect(
        host="127.0.0.1", user="postgres", dbname=DATABASE, cursor_factory=Counting
    )
    try:
        rows = [
            {"message_id": f"m-{n}", "sent_at": "2026-12-05", "tracking_id": n}
            for n in range(1, 251)
        ]
        execute_and_commit(
            conn,
            "UPDATE cascade_outbox SET message_id = %(message_id)s, sent_at = %(sent_at)s"
            " WHERE id = %(tracking_id)s",
            rows,
        )
    finally:
        conn.close()
    assert len(calls) == -(-250 // PAGE_SIZE)  # 3 round trips, not 250
    assert outbox_state(postgres) == (250, 250)
    assert _hook(postgres).get_first("SELECT message_id FROM cascade_outbox WHERE id = 137") == (
        "m-137",
    )
