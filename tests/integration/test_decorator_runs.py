"""``@task.cascade`` in real Airflow runs (dag.test()) against the sandbox over HTTP."""

from __future__ import annotations

import json

import pytest
from airflow.utils.state import DagRunState, TaskInstanceState

from airflow_provider_cascade.results import FAILURE_KEY, CascadeSendResult
from tests.airflow_runs import run, xcom
from tests.compat import running_version
from tests.dags import decorated_dags as dags
from tests.integration.test_operator_runs import outbox  # noqa: F401 (a fixture)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.usefixtures("airflow_db"),
    pytest.mark.compat("task_decorator"),
]


#: 100,000 on the latest Airflow; the older lanes, which run at the same time on the same
#: cores, send 10,000 through the same code.
GENERATED = dags.GENERATED if running_version() >= (3, 3) else 10_000


def test_a_generator_of_100000_messages_is_sent_once_each_and_written_back(sandbox, outbox):  # noqa: F811
    db = outbox(GENERATED)
    dag_run, tis = run(dags.generator, conf={"count": GENERATED})
    assert dag_run.state == DagRunState.SUCCESS, tis["confirmations"].state
    recorded = sandbox.messages()
    assert len(recorded) == GENERATED
    assert sandbox.stats()["duplicate_tracking_ids"] == 0
    assert {m["tracking_id"] for m in recorded} == {str(n) for n in range(1, GENERATED + 1)}
    marked = dict(db.execute("SELECT id, message_id FROM outbox WHERE message_id IS NOT NULL"))
    assert len(marked) == GENERATED
    assert {str(k): v for k, v in marked.items()} == {
        m["tracking_id"]: m["message_id"] for m in recorded
    }
    result = xcom(dag_run, "confirmations")
    assert result["sent"] == GENERATED
    # The outbox holds every id; the XCom the figures and the first ids, never a message's
    # phone or text (run() scans it for phones).
    assert len(result["messages"]) == min(GENERATED, 10_000)
    assert set(result["messages"][0]) <= {"message_id", "tracking_id", "sent_at"}
    assert "confirmed" not in json.dumps(result)


def test_a_returned_list_with_an_upstream_output_and_the_context(sandbox):
    dag_run, _ = run(dags.from_a_list)
    assert dag_run.state == DagRunState.SUCCESS
    result = CascadeSendResult.load(xcom(dag_run, "receipts"))
    assert (result.sent, result.route) == (3, "tg_viber")
    recorded = sandbox.messages()
    assert sorted(m["tracking_id"] for m in recorded) == [f"receipts-{n}" for n in (1, 2, 3)]
    assert set(result.message_ids) == {m["message_id"] for m in recorded}


def test_a_function_that_returns_nothing_fails_with_what_to_do(sandbox):
    dag_run, tis = run(dags.returns_none)
    assert dag_run.state == DagRunState.FAILED
    assert tis["forgot_to_return"].state == TaskInstanceState.FAILED
    (problem,) = xcom(dag_run, "forgot_to_return", FAILURE_KEY)["problems"]
    assert (problem["field"], problem["rule"][:54]) == (
        "return",
        "is None: a @task.cascade function returns or yields me",
    )
    assert sandbox.messages() == []


def test_an_invalid_yielded_message_stops_before_its_batch_and_is_not_retried(sandbox):
    dag_run, tis = run(dags.invalid)
    assert dag_run.state == DagRunState.FAILED
    assert tis["codes"].try_number == 1  # retries=2, unused: a retry cannot fix the input
    (problem,) = xcom(dag_run, "codes", FAILURE_KEY)["problems"]
    assert (problem["ref"], problem["field"]) == ("code-1200", "to_phone")
    assert "0671234567" not in json.dumps(problem)
    # The first batch (messages 1-1000) went out; the second holds the invalid one.
    assert len(sandbox.messages()) == 1_000


def test_max_messages_stops_a_generator_before_the_batch_that_passes_it(sandbox, logs):
    dag_run, _ = run(dags.capped)
    assert dag_run.state == DagRunState.FAILED
    assert len(sandbox.messages()) == 2_000
    failure = xcom(dag_run, "promo", FAILURE_KEY)  # what the Cascade tab shows
    assert failure["error"] == "CascadeGuardrailError"
    assert (
        "more than max_messages=2500 messages: stopping before the batch" in failure["first_line"]
    )
    assert "the batches before it stay sent and recorded" in failure["first_line"]
    assert failure["accepted"] == 2_000


@pytest.mark.compat("task_state_store")
def test_a_retry_calls_the_function_again_and_sends_only_what_was_not_sent(sandbox, logs):
    dag_run, tis = run(dags.retried)
    assert dag_run.state == DagRunState.SUCCESS
    assert tis["reminders"].try_number == 2
    assert "the source went away" in logs()  # the first try's own error, as raised
    recorded = [m["tracking_id"] for m in sandbox.messages()]
    assert sorted(recorded) == sorted(f"reminder-{n}" for n in range(1, 5_001))
    assert sandbox.stats()["duplicate_tracking_ids"] == 0
    result = CascadeSendResult.load(xcom(dag_run, "reminders"))
    assert result.sent == 5_000


def test_the_decorator_is_registered_in_the_provider_info():
    try:  # where tasks look decorators up; the server's manager in older Airflow
        from airflow.sdk.providers_manager_runtime import (
            ProvidersManagerTaskRuntime as ProvidersManager,
        )
    except ImportError:
        from airflow.providers_manager import ProvidersManager  # type: ignore[assignment]

    decorators = ProvidersManager().taskflow_decorators
    assert "cascade" in decorators
    assert decorators["cascade"].__module__ == "airflow_provider_cascade.decorators.cascade"
