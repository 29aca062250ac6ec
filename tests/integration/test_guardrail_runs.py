"""Campaign guardrails in real Airflow runs (dag.test()) against the sandbox over HTTP:
suppression, duplicates and quiet hours, on a SQLite outbox (PostgreSQL and MariaDB in
tests/integration/databases)."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from airflow.utils.state import DagRunState, TaskInstanceState

from airflow_provider_cascade.privacy import mask_phone
from tests.airflow_runs import rendered_fields, run, xcom
from tests.dags import cascade_test_dags as dags
from tests.integration.test_operator_runs import OUTBOX_DDL

pytestmark = [
    pytest.mark.integration,
    pytest.mark.usefixtures("airflow_db"),
    pytest.mark.compat("send"),
]

KYIV = ZoneInfo("Europe/Kyiv")


@pytest.fixture
def outbox(tmp_path, monkeypatch):
    """A SQLite outbox of 12 promos (row n to +38067000000n, rows 5 and 9 repeating row
    1's number) and an ``optouts`` table holding rows 3 and 7's numbers as people write
    them."""
    path = tmp_path / "outbox.db"
    db = sqlite3.connect(path)
    db.execute(OUTBOX_DDL)
    db.execute("CREATE TABLE optouts (phone TEXT)")
    phone = {n: f"+38067{n:07d}" for n in range(1, 13)}
    phone[5] = phone[9] = phone[1]
    db.executemany(
        "INSERT INTO outbox (id, to_phone, text) VALUES (?, ?, ?)",
        [(n, phone[n], f"Winter sale, customer {n}") for n in phone],
    )
    db.executemany(
        "INSERT INTO optouts (phone) VALUES (?)", [("+380 67 000 0003",), ("380670000007",)]
    )
    db.commit()
    monkeypatch.setenv(
        "AIRFLOW_CONN_CASCADE_TEST_SQLITE", json.dumps({"conn_type": "sqlite", "host": str(path)})
    )
    return db


def test_opted_out_and_repeated_numbers_never_reach_the_sandbox(sandbox, outbox):
    dag_run, _ = run(dags.guarded)
    assert dag_run.state == DagRunState.SUCCESS
    value = xcom(dag_run, "send")
    # Rows 3 and 7 (the table), 2 (the list, written 00380 67...), 5 and 9 (row 1's number).
    assert value["suppressed"] == 3 and sorted(value["suppressed_ids"]) == ["2", "3", "7"]
    assert value["duplicates"] == [
        {"tracking_id": "5", "duplicate_of": "1"},
        {"tracking_id": "9", "duplicate_of": "1"},
    ]
    sent = ["1", "4", "6", "8", "10", "11", "12"]
    assert value["sent"] == len(sent)
    assert sorted(m["tracking_id"] for m in sandbox.messages()) == sorted(sent)
    reached = {m["to_phone"] for m in sandbox.messages()}
    assert not reached & {"+380670000002", "+380670000003", "+380670000007"}
    # The outbox marks only what was sent: a later run picks up nothing of the others.
    unsent = outbox.execute("SELECT id FROM outbox WHERE message_id IS NULL ORDER BY id")
    assert [row for (row,) in unsent] == [2, 3, 5, 7, 9]


def test_an_unreadable_opt_out_fails_before_anything_is_sent(sandbox, outbox, logs):
    outbox.execute("INSERT INTO optouts (phone) VALUES ('067 000 0042')")  # no country code
    outbox.commit()
    dag_run, tis = run(dags.guarded)
    assert dag_run.state == DagRunState.FAILED and tis["send"].state == TaskInstanceState.FAILED
    assert sandbox.stats()["requests"] == 0
    text = logs()
    masked = mask_phone("067 000 0042")
    assert f"Suppression.sql row 3: phone '{masked}' is not an international phone number" in text
    assert "067 000 0042" not in text


def test_a_dry_run_answers_the_questions_asked_before_a_campaign(sandbox, outbox):
    outbox.execute("UPDATE outbox SET text = 'Знижка 20% до неділі' WHERE id = 4")
    outbox.execute("UPDATE outbox SET text = ? WHERE id = 6", ("Sale! " * 30,))  # 180 chars
    outbox.execute("UPDATE outbox SET to_phone = '+14155550110' WHERE id = 8")
    outbox.execute(
        "UPDATE outbox SET message_type = 'transaction', text = 'Order 11 shipped' WHERE id = 11"
    )
    outbox.commit()
    dag_run, _ = run(dags.guarded_dry_run)
    assert dag_run.state == DagRunState.SUCCESS
    assert sandbox.stats()["requests"] == 0
    value = xcom(dag_run, "send")
    forecast = value["forecast"]
    # 12 rows: 3 and 7 suppressed, 5 and 9 duplicates of 1; 8 would go out.
    assert value["sent"] == 8
    assert forecast["by_type"] == {"promo": 7, "transaction": 1}
    assert forecast["by_calling_code"] == {"380": 7, "1": 1}
    assert forecast["sms"] == {"gsm7_messages": 7, "ucs2_messages": 1, "parts": 6 + 2 + 1}
    assert (forecast["suppressed"], forecast["duplicates"], forecast["rejected"]) == (2, 2, 0)
    # Always quiet: every promo would move to the window's end; the transaction would not.
    assert forecast["scheduled_by_quiet_hours"] == 7 and forecast["held"] == 0


def _window_end(dag) -> str:
    """When the DAG's quiet hours (Kyiv) end next, as the service is told (UTC)."""
    quiet = dag.get_task("send").guardrails.quiet_hours
    now = datetime.now(KYIV)
    end = datetime.combine(now.date(), quiet.end, tzinfo=KYIV)
    if end <= now:
        end += timedelta(days=1)
    return end.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_promos_inside_quiet_hours_arrive_scheduled_at_the_windows_end(sandbox):
    dag_run, _ = run(dags.quiet_scheduled)
    assert dag_run.state == DagRunState.SUCCESS
    recorded = {m["tracking_id"]: m for m in sandbox.messages()}
    assert len(recorded) == 6
    due = _window_end(dags.quiet_scheduled)
    for held in ("promo-kyiv-1", "promo-kyiv-2", "survey-kyiv"):
        assert recorded[held]["scheduled_sent"] == due, held
    # An order confirmation or a code is never held; nor a promo where it is daytime.
    for free in ("order-kyiv", "otp-kyiv", "promo-la"):
        assert recorded[free].get("scheduled_sent") is None, free
    value = xcom(dag_run, "send")
    assert value["rescheduled"] == 3 and value["held"] == []
    scheduled = {m["tracking_id"]: m.get("scheduled_sent") for m in value["messages"]}
    assert scheduled["promo-kyiv-1"] == due


def test_with_the_skip_policy_they_are_held_and_listed_not_sent(sandbox):
    dag_run, _ = run(dags.quiet_skipped)
    assert dag_run.state == DagRunState.SUCCESS
    value = xcom(dag_run, "send")
    held = {entry["tracking_id"]: entry["reason"] for entry in value["held"]}
    assert set(held) == {"promo-kyiv-1", "promo-kyiv-2", "survey-kyiv"}
    assert value["sent"] == 3 and value["rescheduled"] == 0
    assert f"until {_window_end(dags.quiet_skipped)}" in held["promo-kyiv-1"]
    reached = {m["tracking_id"] for m in sandbox.messages()}
    assert reached == {"order-kyiv", "otp-kyiv", "promo-la"}


def test_a_number_whose_zones_share_no_allowed_time_uses_the_users_zone_or_is_held(sandbox):
    dag_run, _ = run(dags.quiet_russian)
    value = xcom(dag_run, "send")
    assert value["sent"] == 0 and sandbox.stats()["accepted"] == 0
    [held] = value["held"]
    assert held["tracking_id"] == "promo-ru"
    # Bucharest, the westernmost, is UTC+2 in winter and UTC+3 in summer.
    assert re.search(
        r"16 time zones \(UTC\+[23] to UTC\+12\) share no time outside quiet hours 18:00-10:00",
        held["reason"],
    )
    assert "QuietHours(zones={'7': ...})" in held["reason"]

    dag_run, _ = run(dags.quiet_russian_moscow)
    value = xcom(dag_run, "send")
    assert value["sent"] == 1 and value["held"] == []
    moscow = ZoneInfo("Europe/Moscow")
    [recorded] = sandbox.messages()
    if 10 <= datetime.now(moscow).hour < 18:
        assert recorded.get("scheduled_sent") is None
    else:
        due = datetime.fromisoformat(recorded["scheduled_sent"].replace("Z", "+00:00"))
        assert due.astimezone(moscow).strftime("%H:%M") == "10:00"


def test_an_upstream_output_inside_a_group_is_a_dependency_resolved_at_run_time(sandbox):
    dag = dags.suppress_upstream
    assert dag.get_task("send").upstream_task_ids == {"opted_out"}
    dag_run, _ = run(dag)  # run() also scans the rendered fields for phones
    value = xcom(dag_run, "send")
    assert (value["sent"], value["suppressed"], value["suppressed_ids"]) == (2, 1, ["up-1"])
    assert "<1 number(s)>" in json.dumps(rendered_fields(dag_run, "send")["guardrails"])
