"""Every example DAG imports cleanly and runs end to end against the sandbox."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from airflow.utils.state import DagRunState, TaskInstanceState

from tests.airflow_runs import PHONE_SHAPED, dag_bag, run, xcom
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


def test_the_examples_are_there():
    assert EXAMPLES == [
        "answer_replies",
        "campaign_asset_consumer",
        "campaign_asset_producer",
        "delivery_deadline",
        "failure_alerts",
        "guarded_campaign",
        "large_campaign_mapped",
        "order_confirmations",
        "otp_flashcall",
        "replies_to_optouts",
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
        ("delivery_deadline", 50),
    ],
)
def test_example_runs_and_the_sandbox_accepts_its_messages(sandbox, outbox_db, name, accepted):
    dag = load(name)
    if name == "delivery_deadline":
        # Airflow 3.3.2's dag.test() fails a run that has a deadline when it ends (it looks
        # the alert up by the alert itself, not its id); a deployment evaluates deadlines
        # (tests/cluster). The rest of the DAG runs here.
        dag.deadline = None
    dag_run, tis = run(dag)
    assert dag_run.state == DagRunState.SUCCESS, {t: ti.state for t, ti in tis.items()}
    assert sandbox.stats()["accepted"] == accepted
    assert sandbox.stats()["duplicate_tracking_ids"] == 0


@pytest.mark.compat("deadline_alert")
def test_delivery_deadline_declares_its_alert_through_the_async_notifier():
    """The alert itself fires on a deployment (tests/cluster: dag.test() does not evaluate
    deadlines); here, what the DAG declares."""
    (alert,) = _deadlines(load("delivery_deadline"))
    assert alert.interval == timedelta(minutes=30)
    assert alert.callback.path == "airflow_provider_cascade.notifications.cascade.CascadeNotifier"
    assert alert.callback.kwargs["to_phones"] == ["+380501110001"]


def _deadlines(dag) -> list:
    deadline = dag.deadline
    return list(deadline) if isinstance(deadline, (list, tuple)) else [deadline]


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


def test_a_stop_sent_back_keeps_the_next_campaign_from_that_number_only(
    sandbox, outbox_db, tmp_path, monkeypatch
):
    """The whole loop: a promo goes out, a recipient answers STOP through SMSBAT's callback
    (the sandbox's) to the provider's receiver, and the next run leaves that number out of
    the promo while its order update still goes."""
    from tests.replies.receiver_process import standalone_receiver

    token = "loop-token-5e2d9a"
    sandbox.set_env(replies_token=token, replies_conn_id="cascade_outbox_db")
    dag = load("replies_to_optouts")
    first, _ = run(dag)
    assert first.state == DagRunState.SUCCESS
    assert xcom(first, "promo")["sent"] == 5
    with standalone_receiver(tmp_path) as receiver:
        sandbox.set_replies_url(receiver.callback_url("cascade_default", token))
        try:
            sandbox.reply("+380930000003", "Stop")
            sandbox.reply("+380930000004", "Thanks, see you")
            deadline = time.monotonic() + 30
            while sandbox.replies()["pending"] and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            sandbox.set_replies_url(None)
    callbacks = sandbox.replies()["callbacks"][-2:]
    assert [c["delivered"] for c in callbacks] == [True, True]
    sandbox.clear()
    second, _ = run(dag)
    assert second.state == DagRunState.SUCCESS, second.state
    promo = xcom(second, "promo")
    assert (promo["sent"], promo["suppressed"]) == (4, 1)
    sent = sorted(m["to_phone"] for m in sandbox.messages() if m["message_type"] == "promo")
    assert "+380930000003" not in sent and len(sent) == 4
    assert xcom(second, "order_update")["sent"] == 1  # a STOP does not stop order updates
    with sqlite3.connect(outbox_db) as db:
        assert db.execute("SELECT COUNT(*) FROM cascade_replies").fetchone() == (2,)


def test_answer_replies_pages_support_once_per_help_and_forgets_old_replies(
    sandbox, outbox_db, tmp_path
):
    from airflow_provider_cascade.replies.retention import erase_number
    from tests.replies.receiver_process import standalone_receiver

    token = "answer-token-3c1b"
    sandbox.set_env(replies_token=token, replies_conn_id="cascade_outbox_db")
    old = "2020-01-01T00:00:00Z"
    with standalone_receiver(tmp_path) as receiver:
        for phone, text, dt in [
            ("380931110001", " Help! ", "2026-12-04T10:00:00Z"),
            ("380931110002", "thanks", "2026-12-04T10:01:00Z"),
            ("380931110003", "допомога", old),
        ]:
            body = {"idUuid": f"id-{phone}", "alphaName": "Bot", "phoneNumber": phone}
            answer = receiver.post("cascade_default", {**body, "text": text, "dt": dt}, token)
            assert answer.status_code == 200
    dag = load("answer_replies")
    first, _ = run(dag)
    assert first.state == DagRunState.SUCCESS
    assert xcom(first, "page_support_for_help") == 2
    assert xcom(first, "forget_old_replies") == 1  # the reply from 2020
    pages = [m for m in sandbox.messages() if m["to_phone"] == "+380501110001"]
    assert len(pages) == 2
    assert all("380931110001" not in m["text"] for m in pages)
    second, _ = run(dag)
    assert xcom(second, "page_support_for_help") == 0  # each reply paged once
    erased = erase_number("cascade_default", "+380 93 111 0001")
    assert (erased.replies, erased.opt_outs) == (1, 0)
    with sqlite3.connect(outbox_db) as db:
        assert db.execute("SELECT COUNT(*) FROM cascade_replies").fetchone() == (1,)


def test_failure_alert_pages_when_the_task_fails(sandbox, outbox_db):
    dag_run, tis = run(load("failure_alerts"))
    assert dag_run.state == DagRunState.FAILED
    assert tis["check_stock"].state == TaskInstanceState.FAILED
    assert sorted(m["to_phone"] for m in sandbox.messages()) == ["+380501110001", "+380671110002"]


class _Reviewer:
    """The person who answers the approval step (as Airflow's API gets them from a token)."""

    def get_id(self) -> str:
        return "campaign-owner"

    def get_name(self) -> str:
        return "Campaign Owner"


def _answer_when_asked(dag_id: str, choice: str, asked: dict[str, str], stop: threading.Event):
    """Wait for the approval step to park in AWAITING_INPUT, note what it shows, and answer
    it through the same function as Airflow's REST API (PATCH .../hitlDetails)."""
    from airflow.api_fastapi.core_api.datamodels.hitl import UpdateHITLDetailPayload
    from airflow.api_fastapi.core_api.routes.public.hitl import update_hitl_detail
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    while not stop.wait(0.5):
        with create_session() as session:
            ti = (
                session.query(TaskInstance)
                .filter_by(dag_id=dag_id, task_id="approve", state=TaskInstanceState.AWAITING_INPUT)
                .one_or_none()
            )
            if ti is None:
                continue
            detail = session.query(HITLDetail).filter_by(ti_id=ti.id).one()
            asked["subject"], asked["body"] = detail.subject, detail.body or ""
            update_hitl_detail(
                dag_id=dag_id,
                dag_run_id=ti.run_id,
                task_id="approve",
                update_hitl_detail_payload=UpdateHITLDetailPayload(chosen_options=[choice]),
                user=_Reviewer(),
                session=session,
                map_index=-1,
            )
            return


def _run_answered(choice: str):
    dag = load("guarded_campaign")
    asked: dict[str, str] = {}
    stop = threading.Event()
    answerer = threading.Thread(
        target=_answer_when_asked, args=(dag.dag_id, choice, asked, stop), daemon=True
    )
    answerer.start()
    try:
        dag_run, tis = run(dag)
    finally:
        stop.set()
        answerer.join(timeout=10)
    return dag_run, tis, asked


@pytest.mark.compat("approval")
def test_a_person_approves_the_dry_runs_summary_then_the_campaign_goes(
    sandbox, outbox_db, monkeypatch
):
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.com")
    dag_run, tis, asked = _run_answered("Approve")
    assert dag_run.state == DagRunState.SUCCESS, {t: ti.state for t, ti in tis.items()}
    plan = xcom(dag_run, "dry_run")
    # 100 customers: 10 and 20 opted out, 96-100 share a number with 1-5.
    assert (plan["sent"], plan["suppressed"], plan["forecast"]["duplicates"]) == (93, 2, 5)
    assert plan["forecast"]["by_calling_code"] == {"380": 93}
    # The approval step showed the summary the dry run computed.
    assert asked["subject"] == "Send the winter promo?"
    assert "**93 messages** would go out" in asked["body"]
    assert "opted out (not sent): 2" in asked["body"]
    assert "+380" not in asked["body"]
    # The approver was paged first: the figures and the link, no recipient, no message text.
    page, *campaign = sorted(sandbox.messages(), key=lambda m: m["to_phone"] != "+380501119999")
    assert page["to_phone"] == "+380501119999" and page["message_type"] == "transaction"
    assert page["text"] == (
        "Send the winter promo? 93 message(s) would go (93 promo), 93 SMS parts at most; 2 "
        "opted out, 0 invalid. Approve or reject: https://airflow.example.com/dags/"
        f"guarded_campaign/runs/{dag_run.run_id}/tasks/approve/required_actions?map_index=-1"
    )
    assert not PHONE_SHAPED.search(page["text"]) and "Winter sale" not in page["text"]
    sent = xcom(dag_run, "send")
    assert sent["sent"] == 93 and len(campaign) == 93
    assert sorted(sent["suppressed_ids"]) == ["10", "20"]
    with sqlite3.connect(outbox_db) as db:
        unsent = db.execute("SELECT id FROM winter_outbox WHERE message_id IS NULL ORDER BY id")
        assert [row for (row,) in unsent] == [10, 20, 96, 97, 98, 99, 100]


@pytest.mark.compat("approval")
def test_a_rejected_campaign_is_not_sent_and_a_failed_page_does_not_stop_the_approval(
    sandbox, outbox_db, logs
):
    sandbox.set_faults(error_rate=1.0, kinds=["401"])  # the approver's page is refused
    _dag_run, tis, asked = _run_answered("Reject")
    assert "body" in asked  # the approval waited and was answered
    assert tis["send"].state == TaskInstanceState.SKIPPED
    assert sandbox.stats()["accepted"] == 0
    text = logs()
    assert "The approver was not paged (CascadeAuthError" in text
    assert "+380501119999" not in text


@pytest.mark.compat("approval", supported=False)
def test_without_an_approval_step_the_campaign_stops_after_its_dry_run(sandbox, outbox_db):
    dag_run, tis = run(load("guarded_campaign"))
    assert dag_run.state == DagRunState.SUCCESS
    assert set(tis) == {"fill_outbox", "dry_run"}
    assert xcom(dag_run, "dry_run")["sent"] == 93
    assert sandbox.stats()["requests"] == 0


@pytest.mark.compat("asset_events")
def test_the_producer_puts_the_sends_figures_in_its_asset_event(sandbox, outbox_db):
    dag_run, _ = run(load("campaign_asset_producer"))
    assert dag_run.state == DagRunState.SUCCESS
    from airflow.utils.session import create_session

    try:
        from airflow.models.asset import AssetEvent as Event
    except ImportError:  # Airflow 2: datasets
        from airflow.models.dataset import DatasetEvent as Event
    with create_session() as session:
        [event] = session.query(Event).filter_by(source_run_id=dag_run.run_id).all()
        extra = dict(event.extra)
    assert extra == {
        "sent": 30,
        "rejected": 0,
        "in_doubt": 0,
        "suppressed": 0,
        "route": "standard",
        "dry_run": False,
        "results_path": None,
    }
