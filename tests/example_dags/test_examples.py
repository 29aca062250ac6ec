"""Every example DAG imports cleanly and runs end to end against the sandbox."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
from datetime import timedelta
from pathlib import Path

import pytest
from airflow.utils.state import DagRunState, TaskInstanceState

from tests.airflow_runs import dag_bag, run, xcom
from tests.conftest import EXAMPLE_DAGS

pytestmark = [
    pytest.mark.integration,
    pytest.mark.usefixtures("airflow_db"),
    pytest.mark.compat("examples"),
]

EXAMPLES = sorted(path.stem for path in EXAMPLE_DAGS.glob("*.py"))


def load(name: str):
    spec = importlib.util.spec_from_file_location(
        f"cascade_example_{name}", EXAMPLE_DAGS / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, name)()  # the @dag function builds the DAG


@pytest.fixture
def outbox_db(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "examples.db"
    monkeypatch.setenv(
        "AIRFLOW_CONN_CASCADE_OUTBOX_DB", json.dumps({"conn_type": "sqlite", "host": str(path)})
    )
    return path


def test_the_eight_examples_are_there():
    assert EXAMPLES == [
        "failure_alerts",
        "large_campaign_mapped",
        "order_confirmations",
        "otp_flashcall",
        "scheduled_promo",
        "send_and_track",
        "sql_campaign_outbox",
        "viber_survey",
    ]


def test_every_example_imports_without_dagbag_errors():
    bag = dag_bag(str(EXAMPLE_DAGS))
    assert bag.import_errors == {}
    assert set(bag.dag_ids) == set(EXAMPLES)


@pytest.mark.parametrize(
    ("name", "accepted"),
    [
        ("order_confirmations", 25),
        ("scheduled_promo", 2),
        ("viber_survey", 5),
        ("otp_flashcall", 1),
        ("send_and_track", 20),
    ],
)
def test_example_runs_and_the_sandbox_accepts_its_messages(sandbox, outbox_db, name, accepted):
    dag_run, tis = run(load(name))
    assert dag_run.state == DagRunState.SUCCESS, {t: ti.state for t, ti in tis.items()}
    assert sandbox.stats()["accepted"] == accepted
    assert sandbox.stats()["duplicate_tracking_ids"] == 0


def test_scheduled_promo_is_scheduled_two_hours_after_the_interval(sandbox, outbox_db):
    dag_run, _ = run(load("scheduled_promo"))
    expected = (dag_run.data_interval_end + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert {m["scheduled_sent"] for m in sandbox.messages()} == {expected}


def test_otp_goes_by_the_tg_viber_route(sandbox, outbox_db):
    run(load("otp_flashcall"))
    assert [(m["route"], m["message_type"]) for m in sandbox.messages()] == [
        ("tg_viber", "flashcall")
    ]


def test_send_and_track_reports_every_message_final(sandbox, outbox_db):
    dag_run, _ = run(load("send_and_track"))
    report = xcom(dag_run, "wait_for_delivery")
    assert report["total"] == 20 and sum(report["by_status"].values()) == 20
    assert set(report["by_status"]) <= {"delivered", "undeliverable"}


def test_sql_campaign_sends_once_and_a_rerun_sends_nothing(sandbox, outbox_db):
    dag = load("sql_campaign_outbox")
    first, _ = run(dag)
    assert first.state == DagRunState.SUCCESS
    assert sandbox.stats()["accepted"] == 2_500
    with sqlite3.connect(outbox_db) as db:
        assert db.execute(
            "SELECT COUNT(*) FROM promo_outbox WHERE message_id IS NULL"
        ).fetchone() == (0,)
    second, _ = run(dag)
    assert second.state == DagRunState.SUCCESS
    assert xcom(second, "send_campaign")["sent"] == 0
    assert sandbox.stats()["accepted"] == 2_500


def test_mapped_campaign_sends_every_audience_row_exactly_once(sandbox, outbox_db):
    dag_run = load("large_campaign_mapped").test(
        run_conf={"audience_size": 3_000, "partition_size": 700}
    )
    assert dag_run.state == DagRunState.SUCCESS
    recorded = sorted(int(m["tracking_id"]) for m in sandbox.messages())
    assert recorded == list(range(1, 3_001))
    assert sandbox.stats()["duplicate_tracking_ids"] == 0
    assert xcom(dag_run, "total") == 3_000
    with sqlite3.connect(outbox_db) as db:
        assert db.execute("SELECT COUNT(*) FROM audience WHERE message_id IS NULL").fetchone() == (
            0,
        )


def test_failure_alert_pages_when_the_task_fails(sandbox, outbox_db):
    dag_run, tis = run(load("failure_alerts"))
    assert dag_run.state == DagRunState.FAILED
    assert tis["check_stock"].state == TaskInstanceState.FAILED
    assert sorted(m["to_phone"] for m in sandbox.messages()) == ["+380501110001", "+380671110002"]
