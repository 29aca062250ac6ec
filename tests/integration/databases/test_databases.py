"""The SQL source and the outbox write-back on real PostgreSQL and MariaDB/MySQL servers.

Skipped where no server answers (a laptop); CI sets CASCADE_REQUIRE_DATABASES=1, which
turns a missing server into a failure."""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from airflow.providers.common.compat.sdk import BaseHook
from airflow.utils.state import DagRunState

from airflow_provider_cascade.exceptions import CascadeValidationError
from airflow_provider_cascade.operators.cascade import CascadeSendOperator
from airflow_provider_cascade.results import CascadeSendResult
from airflow_provider_cascade.sources import SqlSource
from tests.airflow_runs import run, xcom
from tests.dags import cascade_test_dags as dags
from tests.reliability._helpers import TI

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
    name = request.param
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
