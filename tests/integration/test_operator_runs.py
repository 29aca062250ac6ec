"""CascadeSendOperator in real Airflow runs (dag.test()) against the sandbox over HTTP."""

from __future__ import annotations

import json
import sqlite3

import pytest
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState, TaskInstanceState

from airflow_provider_cascade.constants import DEFAULT_MAX_REQUESTS_PER_SECOND
from airflow_provider_cascade.exceptions import CascadeError
from airflow_provider_cascade.results import CascadeSendResult
from tests.airflow_runs import rendered_fields, run, xcom
from tests.dags import cascade_test_dags as dags
from tests.reliability._helpers import TI

pytestmark = [
    pytest.mark.integration,
    pytest.mark.usefixtures("airflow_db"),
    pytest.mark.compat("send"),
]

OUTBOX_DDL = """
CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    to_phone TEXT NOT NULL,
    text TEXT,
    message_type TEXT,
    survey_options TEXT,
    message_id TEXT,
    sent_at TEXT,
    delivery_status TEXT,
    delivered_by TEXT
)
"""


@pytest.fixture
def outbox(tmp_path, monkeypatch):
    """A SQLite outbox; returns a function filling it with n rows (and overrides)."""
    path = tmp_path / "outbox.db"
    with sqlite3.connect(path) as db:
        db.execute(OUTBOX_DDL)
    monkeypatch.setenv(
        "AIRFLOW_CONN_CASCADE_TEST_SQLITE", json.dumps({"conn_type": "sqlite", "host": str(path)})
    )

    def fill(rows: int, **overrides: dict[str, object]) -> sqlite3.Connection:
        db = sqlite3.connect(path)
        db.executemany(
            "INSERT INTO outbox (id, to_phone, text) VALUES (?, ?, ?)",
            ((n, f"+38067{n:07d}", f"Summer sale, customer {n}") for n in range(1, rows + 1)),
        )
        for row_id, columns in overrides.items():
            sets = ", ".join(f"{column} = ?" for column in columns)
            db.execute(f"UPDATE outbox SET {sets} WHERE id = ?", (*columns.values(), int(row_id)))
        db.commit()
        return db

    return fill


def test_send_from_an_upstream_taskflow_xcom(sandbox):
    dag_run, tis = run(dags.xcom_send)
    assert dag_run.state == DagRunState.SUCCESS
    assert tis["read_ids"].state == TaskInstanceState.SUCCESS
    result = CascadeSendResult.load(xcom(dag_run, "send"))
    assert (result.sent, result.batches, result.route) == (2_500, 3, "tg_viber")
    recorded = sandbox.messages()
    assert {m["message_id"] for m in recorded} == set(result.message_ids)
    assert {m["route"] for m in recorded} == {"tg_viber"}
    assert sandbox.stats()["duplicate_tracking_ids"] == 0


@pytest.mark.compat("masking")
def test_rendered_fields_show_no_phone_and_no_text(sandbox):
    dag_run, _ = run(dags.xcom_send)
    rendered = rendered_fields(dag_run, "send")
    text = json.dumps(rendered)
    assert "+380*****0001" in text  # a masked preview is there ...
    assert "+380500000001" not in text and "Order 1 confirmed" not in text  # ... nothing more


@pytest.mark.compat("masking")
def test_misnamed_keys_and_suppressed_numbers_are_counted_in_the_rendered_fields(sandbox):
    dag_run, _ = run(dags.misnamed_keys)  # run() scans every rendered field for phones
    assert dag_run.state == DagRunState.FAILED and sandbox.stats()["requests"] == 0
    rendered = rendered_fields(dag_run, "send")
    shown = rendered["messages"]
    if isinstance(shown, str):  # Airflow 2 stores a value object's rendered form as its text
        shown = json.loads(shown)
    assert shown == [{"tracking_id": "o-1", "<other keys>": 2}]
    assert "<2 number(s)>" in json.dumps(rendered["guardrails"])
    assert "Order 1 confirmed" not in json.dumps(rendered)


@pytest.mark.compat("masking")
def test_a_message_template_that_fails_to_render_is_logged_without_its_phone(sandbox, logs):
    dag_run, _ = run(dags.broken_template)
    assert dag_run.state == DagRunState.FAILED and sandbox.stats()["requests"] == 0
    text = logs()
    reason = "(UndefinedError: 'customer' is undefined)"
    assert f"b-1: message did not render as a template {reason}" in text
    assert "+380501234571" not in text  # ... and showed the messages masked
    assert "Hi {{ customer.name }}" not in text


def test_a_list_pulled_through_a_string_template_is_parsed(sandbox):
    dag_run, _ = run(dags.json_string_send)
    assert dag_run.state == DagRunState.SUCCESS
    recorded = sandbox.messages()
    assert sorted(m["tracking_id"] for m in recorded) == ["otp-0", "otp-1", "otp-2"]
    assert {m["message_type"] for m in recorded} == {"flashcall"}


@pytest.mark.compat("sql")
def test_sql_outbox_streams_writes_back_and_a_rerun_sends_nothing(sandbox, outbox, tmp_path):
    db = outbox(25_000)
    dag_run, _ = run(dags.sql_outbox)
    assert dag_run.state == DagRunState.SUCCESS
    value = xcom(dag_run, "send")
    assert value["messages"] is None and value["results_path"].startswith(
        "file:///tmp/cascade-test-results/"
    )
    assert (value["sent"], value["batches"]) == (25_000, 25)
    result = CascadeSendResult.load(value)
    assert len(result.messages) == 25_000

    recorded = {m["tracking_id"]: m for m in sandbox.messages()}
    assert len(recorded) == 25_000 and sandbox.stats()["duplicate_tracking_ids"] == 0
    assert sandbox.stats()["requests"] == 25
    rows = db.execute("SELECT id, message_id, sent_at FROM outbox").fetchall()
    assert all(
        recorded[str(row_id)]["message_id"] == message_id and sent_at
        for row_id, message_id, sent_at in rows
    )
    assert {m["scheduled_sent"] is not None for m in recorded.values()} == {True}

    rerun, _ = run(dags.sql_outbox)
    assert rerun.state == DagRunState.SUCCESS
    assert xcom(rerun, "send")["sent"] == 0
    assert sandbox.stats()["accepted"] == 25_000


def test_dry_run_validates_and_sends_nothing(sandbox, outbox):
    outbox(250)
    dag_run, _ = run(dags.dry_run)
    value = xcom(dag_run, "send")
    assert value["dry_run"] is True and value["sent"] == 250
    assert {m["message_id"] for m in value["messages"]} == {None}
    assert sandbox.stats()["requests"] == 0


def test_on_invalid_skip_sends_the_valid_rows_and_lists_the_rest(sandbox, outbox):
    db = outbox(
        300,
        **{
            "17": {"to_phone": "380671234567"},
            "150": {"message_type": "viber_survey", "survey_options": "not json"},
            "151": {
                "message_type": "viber_survey",
                "survey_options": '["Yes", "No"]',
                "text": "Happy?",
            },
        },
    )
    dag_run, _ = run(dags.sql_skip_invalid)
    assert dag_run.state == DagRunState.SUCCESS
    value = xcom(dag_run, "send")
    assert value["sent"] == 298
    assert [(r["ref"], r["field"]) for r in value["rejected"]] == [
        ("row 17 (17)", "to_phone"),
        ("row 150 (150)", "survey_options"),
    ]
    assert "380671234567" not in json.dumps(value)
    recorded = {m["tracking_id"] for m in sandbox.messages()}
    assert "17" not in recorded and "150" not in recorded and "151" in recorded
    unsent = db.execute("SELECT id FROM outbox WHERE message_id IS NULL ORDER BY id").fetchall()
    assert unsent == [(17,), (150,)]


def test_on_invalid_fail_stops_before_the_invalid_batch(sandbox, outbox):
    db = outbox(300, **{"250": {"to_phone": "0671234567"}})
    dag_run, tis = run(dags.sql_fail_invalid)
    assert dag_run.state == DagRunState.FAILED
    assert tis["send"].state == TaskInstanceState.FAILED
    assert tis["send"].try_number == 1  # retries=3: none used, a retry cannot fix the input
    # Batches of 100: rows 1-200 went out and were marked; the batch holding row 250 did not.
    assert sandbox.stats()["accepted"] == 200
    assert db.execute("SELECT COUNT(*) FROM outbox WHERE message_id IS NOT NULL").fetchone() == (
        200,
    )


def test_an_outbox_send_past_the_inline_limit_goes_on_without_results_path(sandbox, outbox):
    """20,000 outbox rows, mark_sent_sql, no results_path: once stopped after 10,000 with
    "set results_path". The outbox holds the ids, so the send goes on; the XCom keeps the
    counts and the first 10,000, and says so."""
    db = outbox(20_000)
    dag_run, tis = run(dags.sql_outbox_no_results_path)
    assert dag_run.state == DagRunState.SUCCESS and tis["send"].try_number == 1
    value = xcom(dag_run, "send")
    assert value["sent"] == 20_000 and value["truncated"] is True
    assert len(value["messages"]) == 10_000 and value["results_path"] is None
    assert sandbox.stats()["accepted"] == 20_000
    assert sandbox.stats()["duplicate_tracking_ids"] == 0
    marked = db.execute("SELECT COUNT(*) FROM outbox WHERE message_id IS NOT NULL").fetchone()
    assert marked == (20_000,)
    # A delivery wait on that result would watch half the campaign: it says so instead.
    from airflow_provider_cascade.sensors.cascade import CascadeDeliverySensor

    sensor = CascadeDeliverySensor(task_id="wait", send_result=value, timeout=5)
    with pytest.raises(CascadeError, match="holds only the first 10000 of its 20000 message ids"):
        sensor.execute({"ti": TI()})


def test_a_send_whose_ids_fit_nowhere_fails_before_the_first_request(sandbox, outbox):
    outbox(10_001)
    dag_run, tis = run(dags.sql_no_write_back)
    assert dag_run.state == DagRunState.FAILED and tis["send"].try_number == 1
    assert sandbox.stats()["requests"] == 0
    operator = dags.sql_no_write_back.get_task("send")
    with pytest.raises(
        CascadeError,
        match=r"the source holds 10001 messages, more than "
        r"xcom_inline_limit=10000 whose ids fit the XCom; nothing was sent",
    ):
        operator.execute({"ti": TI()})


@pytest.mark.compat("task_state_store")
def test_a_retried_task_never_resends_accepted_batches(sandbox):
    # Batch 3 of 5 fails with 500 on every try of the first task try (2 requests with
    # max_retries=1), so the task fails after batches 1 and 2; Airflow retries it.
    sandbox.set_faults(script=[None, None, "500", "500"])
    dag_run, tis = run(dags.retry_resend)
    assert dag_run.state == DagRunState.SUCCESS
    assert tis["send"].try_number == 2
    recorded = [m["tracking_id"] for m in sandbox.messages()]
    assert sorted(recorded) == sorted(f"retry-{n}" for n in range(500))
    assert sandbox.stats()["duplicate_tracking_ids"] == 0
    result = CascadeSendResult.load(xcom(dag_run, "send"))
    assert len(result.message_ids) == 500 and set(result.message_ids) == {
        m["message_id"] for m in sandbox.messages()
    }


@pytest.mark.compat("task_state_store", supported=False)
def test_without_a_task_state_store_a_retry_warns_and_sends_the_accepted_batches_again(
    sandbox, logs
):
    """What the README promises where Airflow has no task state store: the send works,
    a warning names the Airflow version, and a retry re-sends what the first try sent."""
    from airflow import __version__ as airflow_version

    sandbox.set_faults(script=[None, None, "500", "500"])
    dag_run, tis = run(dags.retry_resend)
    assert dag_run.state == DagRunState.SUCCESS
    assert tis["send"].try_number == 2
    assert f"Airflow {airflow_version} has no task state store (it needs 3.3+)" in logs()
    recorded = [m["tracking_id"] for m in sandbox.messages()]
    assert set(recorded) == {f"retry-{n}" for n in range(500)}
    assert sandbox.stats()["duplicate_tracking_ids"] == 200  # batches 1 and 2, sent twice


def test_a_lost_response_is_reported_in_doubt_and_not_resent(sandbox):
    sandbox.set_faults(script=[None, None, "response_lost"])
    dag_run, _ = run(dags.retry_skip)
    assert dag_run.state == DagRunState.SUCCESS
    value = xcom(dag_run, "send")
    assert value["in_doubt"] == [f"retry-{n}" for n in range(200, 300)]
    assert value["sent"] == 400
    # The service did accept the batch in doubt: it is in the record exactly once.
    assert sandbox.stats()["duplicate_tracking_ids"] == 0
    assert sandbox.stats()["accepted"] == 500


def test_a_query_above_max_messages_sends_nothing(sandbox, outbox, logs):
    db = outbox(1_000)
    _dag_run, tis = run(dags.capped)
    assert tis["send"].state == "failed"
    assert "the source holds 1000 messages, more than max_messages=500" in logs()
    assert sandbox.messages() == [] and sandbox.stats()["requests"] == 0
    assert db.execute("SELECT COUNT(*) FROM outbox WHERE message_id IS NOT NULL").fetchone() == (0,)


def test_dedupe_sends_one_message_per_number_and_marks_only_those(sandbox, outbox):
    db = outbox(10, **{str(n): {"to_phone": "+380670000001"} for n in (4, 7, 9)})
    dag_run, _ = run(dags.deduped)
    assert dag_run.state == DagRunState.SUCCESS
    value = xcom(dag_run, "send")
    assert value["sent"] == 7
    assert value["duplicates"] == [{"tracking_id": str(n), "duplicate_of": "1"} for n in (4, 7, 9)]
    assert sorted(m["tracking_id"] for m in sandbox.messages()) == sorted(
        str(n) for n in (1, 2, 3, 5, 6, 8, 10)
    )
    unsent = db.execute("SELECT id FROM outbox WHERE message_id IS NULL ORDER BY id").fetchall()
    assert unsent == [(4,), (7,), (9,)]


def test_mapped_sends_share_the_connections_budget(sandbox, logs):
    dag_run, _ = run(dags.mapped_budget)
    assert dag_run.state == DagRunState.SUCCESS
    assert sandbox.stats()["accepted"] == 15
    rate = DEFAULT_MAX_REQUESTS_PER_SECOND  # the sandbox connection sets none
    shared = f"Pacing at {rate / 2:.1f} requests/s: the connection's {rate:.0f}/s shared by 2"
    assert logs().count(shared) >= 3  # once per instance (Airflow 3.0's dag.test echoes it)


@pytest.mark.compat("ui")
def test_the_cascade_tab_of_a_failed_send_shows_what_failed(sandbox, outbox):
    """After the default on_invalid="fail" the tab once said the task was no Cascade send;
    it shows the error, what was accepted before, and the problems, phones masked."""

    from airflow_provider_cascade.plugins.report_view import task_figures, task_page

    outbox(300, **{"250": {"to_phone": "0671234567"}})
    dag_run, _ = run(dags.sql_fail_invalid)
    assert dag_run.state == DagRunState.FAILED
    with create_session() as session:
        found = task_figures(dag_run.dag_id, dag_run.run_id, "send", session)
        page = task_page(dag_run.dag_id, dag_run.run_id, "send", session).body.decode()
    assert found["kind"] == "failed_send" and found["error"] == "CascadeValidationError"
    assert found["accepted"] == 200 and found["problem_count"] == 1
    assert found["first_rejected"][0]["ref"] == "row 250 (250)"
    assert found["first_rejected"][0]["field"] == "to_phone"
    assert "CascadeValidationError" in page and "accepted before it failed" in page
    assert "row 250 (250)" in page and "0671234567" not in page
