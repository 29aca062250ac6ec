"""A real Airflow task process is SIGKILLed in the middle of a multi-batch send, then the
task runs again: what the service had accepted is not sent again.

The send runs under ``dag.test()`` in a child process (the task runs in it); once the
sandbox has accepted 5 of 20 batches the child is killed. The task then runs again in the
same DAG run with ``airflow tasks test`` (a fresh process), which finds the first try's
progress in Airflow's task state store. The outbox case re-runs the whole DAG instead:
there the table itself records what was sent.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from airflow.models.dagrun import DagRun
from airflow.utils.session import create_session

from tests.conftest import REPO
from tests.integration.test_operator_runs import outbox  # noqa: F401  (fixture)

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("airflow_db")]


def start_and_kill(dag_name: str, sandbox, after: int = 500) -> str:
    """Run the DAG in a child process, SIGKILL it once ``after`` messages are accepted."""
    code = f"from tests.dags import cascade_test_dags as d; d.{dag_name}.test()"
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while sandbox.stats()["accepted"] < after:
        assert child.poll() is None, "the send ended before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait()
    dag_id = f"cascade_{dag_name}"
    with create_session() as session:
        run = session.query(DagRun).filter_by(dag_id=dag_id).order_by(DagRun.id.desc()).first()
        return run.run_id


def run_task_again(dag_id: str, run_id: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "airflow", "tasks", "test", dag_id, "send", run_id],
        cwd=REPO,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=300,
    )


# (DAG, batches at risk when killed: max_in_flight), batches of 100 messages
AT_MOST_ONCE = [("killed_skip", 1), ("killed_skip_wide", 4)]
AT_LEAST_ONCE = [("killed_resend", 1), ("killed_resend_wide", 4)]


@pytest.mark.compat("task_state_store")
@pytest.mark.parametrize(("dag_name", "at_risk"), AT_MOST_ONCE)
def test_at_most_once_a_killed_send_resumes_and_sends_nothing_twice(sandbox, dag_name, at_risk):
    sandbox.set_faults(latency_ms=150)
    run_id = start_and_kill(dag_name, sandbox)
    accepted_before = sandbox.stats()["accepted"]
    again = run_task_again(f"cascade_{dag_name}", run_id)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "accepted by an earlier try" in again.stdout

    counts = Counter(m["tracking_id"] for m in sandbox.messages())
    assert max(counts.values()) == 1 and sandbox.stats()["duplicate_tracking_ids"] == 0
    # Only the batches at risk when the worker was killed are held back (in doubt).
    missing = {f"kill-{n}" for n in range(2_000)} - set(counts)
    assert len(missing) <= 100 * at_risk and accepted_before >= 500
    lines = re.findall(
        r"Not re-sending \d+ message\(s\) left in doubt.*?: ([\w, -]+)", again.stdout
    )
    reported = {tracking_id.strip() for line in lines for tracking_id in line.split(",")}
    # Every message not sent is reported in doubt, by tracking id (some reported ones may
    # have reached the service: in doubt means exactly that).
    assert missing <= reported, (
        sorted(missing)[:3],
        len(missing),
        sorted(reported)[:3],
        len(reported),
    )
    assert len(reported) <= 100 * at_risk


@pytest.mark.compat("task_state_store")
@pytest.mark.parametrize(("dag_name", "at_risk"), AT_LEAST_ONCE)
def test_at_least_once_a_killed_send_resends_at_most_the_batches_at_risk(
    sandbox, dag_name, at_risk
):
    sandbox.set_faults(latency_ms=150)
    run_id = start_and_kill(dag_name, sandbox)
    again = run_task_again(f"cascade_{dag_name}", run_id)
    assert again.returncode == 0, again.stdout[-3000:]
    counts = Counter(m["tracking_id"] for m in sandbox.messages())
    assert set(counts) == {f"kill-{n}" for n in range(2_000)}  # none lost
    assert sandbox.stats()["duplicate_tracking_ids"] <= 100 * at_risk


@pytest.mark.compat("sql")
def test_outbox_rerun_after_a_kill_sends_each_row_once_but_the_batch_in_flight(sandbox, outbox):  # noqa: F811
    db = outbox(2_000)
    sandbox.set_faults(latency_ms=150)
    start_and_kill("killed_outbox", sandbox)
    marked = db.execute("SELECT COUNT(*) FROM outbox WHERE message_id IS NOT NULL").fetchone()[0]
    assert marked >= 400  # the write-back of accepted batches survived the kill

    from tests.dags import cascade_test_dags as dags

    assert dags.killed_outbox.test().state == "success"
    counts = Counter(m["tracking_id"] for m in sandbox.messages())
    assert len(counts) == 2_000
    assert sandbox.stats()["duplicate_tracking_ids"] <= 100
    unsent = db.execute("SELECT COUNT(*) FROM outbox WHERE message_id IS NULL").fetchone()[0]
    assert unsent == 0
