"""The delivery sensor (poke and deferrable) and the notifier in real dag.test() runs."""

from __future__ import annotations

import time

import pytest
from airflow.utils.state import DagRunState, TaskInstanceState

from airflow_provider_cascade.hooks.cascade import CascadeHook
from airflow_provider_cascade.send.campaign import send_messages
from airflow_provider_cascade.triggers.cascade import CascadeDeliveryTrigger
from tests.airflow_runs import run, xcom
from tests.conftest import make_message
from tests.dags import cascade_test_dags as dags
from tests.integration.test_operator_runs import outbox  # noqa: F401  (fixture)
from tests.triggers.test_cascade import run_trigger

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("airflow_db")]

EXPECTED_CHANNELS = {"telegram": 2, "viber": 2, "viber_business": 2, "rcs": 2, "sms": 1}


@pytest.mark.parametrize(
    "dag",
    [
        pytest.param(dags.track_poke, marks=pytest.mark.compat("sensor_poke"), id="poke"),
        pytest.param(
            dags.track_deferred, marks=pytest.mark.compat("sensor_deferrable"), id="deferrable"
        ),
    ],
)
def test_sensor_waits_for_final_statuses_and_reports_channels(sandbox, dag):
    dag_run, _tis = run(dag)
    assert dag_run.state == DagRunState.SUCCESS
    report = xcom(dag_run, "wait")
    assert report["total"] == 10
    assert report["by_status"] == {"delivered": 9, "undeliverable": 1}
    assert report["by_channel"] == EXPECTED_CHANNELS
    by_id = {m["tracking_id"]: m for m in report["messages"]}
    assert by_id["track-0"]["status"] == "undeliverable" and by_id["track-0"]["channel"] is None
    assert by_id["track-3"]["channel"] == "viber_business"
    assert sandbox.stats()["status_requests"] >= 10
    # The sandbox bills by channel: 2x0.1 + 2x0.2 + 2x0.35 + 2x0.5 + 1x0.8 UAH.
    assert report["cost"] == {"UAH": {"cost": 3.1, "bill_amount": 3.1}}


@pytest.mark.compat("sensor_deferrable")
def test_3000_look_ups_at_100_ms_latency_hold_the_pace(sandbox):
    """One look-up at a time would need 3,000 x 0.1 s = 300 s; at 300/s, about 10 s (the
    bound leaves room for a loaded CI machine and still fails a serial poller)."""
    sandbox.set_faults(status_latency_ms=100)
    started = time.monotonic()
    dag_run, _ = run(dags.track_campaign)
    elapsed = time.monotonic() - started
    assert dag_run.state == DagRunState.SUCCESS
    report = xcom(dag_run, "wait")
    assert report["total"] == 3_000 and report["by_status"]["undeliverable"] == 300
    assert elapsed < 150, f"{elapsed:.0f} s"


@pytest.mark.compat("sensor_deferrable")
@pytest.mark.compat("object_storage")
def test_2000_messages_wait_deferred_through_a_workspace(sandbox):
    dag_run, _ = run(dags.track_many_deferred)
    assert dag_run.state == DagRunState.SUCCESS
    report = xcom(dag_run, "wait")
    assert report["total"] == 2_000 and report["by_status"]["undeliverable"] == 200
    # Each message is looked up until final, and never again once it is.
    assert sandbox.stats()["status_requests"] < 2 * 2_000


@pytest.mark.compat("sensor_poke")
@pytest.mark.compat("object_storage")
def test_a_sample_of_400_estimates_a_20000_message_campaign(sandbox):
    dag_run, _ = run(dags.track_sampled)
    assert dag_run.state == DagRunState.SUCCESS
    report = xcom(dag_run, "wait")
    assert report["total"] == 400 and sandbox.stats()["status_requests"] < 1_000
    estimate = report["estimate"]
    assert (estimate["population"], estimate["sample_size"]) == (20_000, 400)
    undeliverable = estimate["by_status"]["undeliverable"]
    # The sandbox's true share: phones ending in 0, a tenth of them.
    assert undeliverable["low"] < 0.10 < undeliverable["high"]


@pytest.mark.compat("sensor_poke")
def test_a_rate_limited_look_up_is_slowed_down_not_skipped(sandbox):
    sandbox.set_faults(status_rate_limit=5)
    dag_run, _ = run(dags.track_rate_limited)
    assert dag_run.state == DagRunState.SUCCESS
    report = xcom(dag_run, "wait")
    assert report["total"] == 10 and report["by_status"] == {"delivered": 9, "undeliverable": 1}
    assert sandbox.stats()["status_rate_limited"] > 0


def test_all_delivered_fails_on_an_undeliverable_message(sandbox):
    dag_run, tis = run(dags.track_all_delivered)
    assert dag_run.state == DagRunState.FAILED
    assert tis["send"].state == TaskInstanceState.SUCCESS
    assert tis["wait"].state == TaskInstanceState.FAILED


@pytest.mark.parametrize(
    "dag", [dags.track_timeout, dags.track_timeout_deferred], ids=["poke", "deferrable"]
)
def test_sensor_times_out_on_a_status_that_never_comes(sandbox, dag):
    dag_run, tis = run(dag)
    assert dag_run.state == DagRunState.FAILED
    assert tis["wait"].state == TaskInstanceState.FAILED


@pytest.mark.compat("notifier")
def test_notifier_pages_every_phone_when_a_task_fails(sandbox, logs):
    _dag_run, tis = run(dags.failure_alert)
    assert tis["load_orders"].state == TaskInstanceState.FAILED
    recorded = sandbox.messages()
    assert len(recorded) == 2
    assert {m["route"] for m in recorded} == {"tg_viber"}
    assert {m["to_phone"] for m in recorded} == {"+380501112233", "+380671112233"}
    ids = [m["tracking_id"] for m in recorded]
    assert all(
        i.startswith("cascade_failure_alert.load_orders.manual__") and ".try1." in i for i in ids
    )
    assert "+380501112233" not in logs()


@pytest.mark.compat("sql")
@pytest.mark.parametrize(
    "dag",
    [
        pytest.param(dags.outbox_tracked, marks=pytest.mark.compat("sensor_poke"), id="poke"),
        pytest.param(
            dags.outbox_tracked_deferred,
            marks=pytest.mark.compat("sensor_deferrable"),
            id="deferrable",
        ),
    ],
)
def test_mark_delivered_sql_writes_each_status_back(sandbox, outbox, dag):  # noqa: F811
    db = outbox(25)
    dag_run, _ = run(dag)
    assert dag_run.state == DagRunState.SUCCESS
    rows = db.execute("SELECT id, delivery_status, delivered_by FROM outbox ORDER BY id").fetchall()
    assert [status for _, status, _ in rows] == [
        "undeliverable" if row_id % 10 == 0 else "delivered" for row_id, _, _ in rows
    ]
    assert all((channel is None) == (row_id % 10 == 0) for row_id, _, channel in rows)


@pytest.mark.compat("sensor_poke")
def test_a_message_scheduled_for_later_is_reported_as_scheduled(sandbox):
    dag_run, _ = run(dags.track_scheduled)
    assert dag_run.state == DagRunState.SUCCESS
    sent = xcom(dag_run, "send")
    (later,) = [m for m in sent["messages"] if m["tracking_id"] == "promo-later"]
    assert later["scheduled_sent"].endswith("Z")  # the send result says when it is due
    report = xcom(dag_run, "wait")
    assert report["by_status"] == {"delivered": 4, "scheduled": 1}
    assert sandbox.stats()["status_requests"] < 4 * 20  # the promo was never polled: fast


@pytest.mark.compat("sensor_deferrable")
@pytest.mark.compat("object_storage")
def test_a_restarted_trigger_does_not_poll_final_messages_again(sandbox, tmp_path):
    """The trigger dies after one round (a triggerer restart) and is re-created from its
    kwargs: the messages final in that round are never looked up again."""
    hook = CascadeHook(max_requests_per_second=1000)
    early = send_messages(
        [make_message(n, tracking_id=f"early-{n}") for n in range(1, 6)], sender=hook
    )
    time.sleep(0.7)  # the sandbox's delivery time: these five are final now
    late = send_messages(
        [make_message(n, tracking_id=f"late-{n}") for n in range(1, 6)], sender=hook
    )
    kwargs = {
        "cascade_conn_id": "cascade_default",
        "messages": [[s.message_id, s.tracking_id] for s in early + late],
        "poll_interval": 0.2,
        "max_requests_per_second": 1000,
        "workspace": f"file://{tmp_path}/result.jsonl",
    }
    (first,) = run_trigger(CascadeDeliveryTrigger(**kwargs, deadline=time.time()))
    assert first["status"] == "timeout"
    (again,) = run_trigger(CascadeDeliveryTrigger(**kwargs, deadline=time.time() + 30))
    assert again["status"] == "success"
    looked_up = {m["tracking_id"]: m["status_requests"] for m in sandbox.messages()}
    assert all(looked_up[f"early-{n}"] == 1 for n in range(1, 6)), looked_up
    assert all(looked_up[f"late-{n}"] >= 2 for n in range(1, 6)), looked_up


@pytest.mark.compat("sensor_poke")
def test_a_poke_timeout_names_the_messages_still_waiting(sandbox, logs):
    _dag_run, tis = run(dags.track_timeout)
    assert tis["wait"].state == TaskInstanceState.FAILED
    assert "still waiting: 00000000-0000-0000-0000-00000000beef" in logs()
