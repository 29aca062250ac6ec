"""Real DAG runs and what they left in the metadata database, on every supported Airflow."""

from __future__ import annotations

import json
import re
from typing import Any

from airflow.models.taskinstance import TaskInstance
from airflow.utils.session import create_session

from airflow_provider_cascade.version_compat import AIRFLOW_V_3_0_PLUS

#: A full phone number: E.164 with its plus, or Ukraine's 380 and nine digits without it;
#: standing alone (not inside a UUID, a longer number or a float's decimals).
PHONE_SHAPED = re.compile(r"(?<![\w.\-])(?:\+\d{10,15}|380\d{9})(?!\d)")


def run(dag, conf: dict[str, Any] | None = None) -> tuple[Any, dict[str, TaskInstance]]:
    """``dag.test()`` in-process (with ``conf`` as the run's conf); the run and its task
    instances, detached from the session.

    Every run is also scanned: no rendered field of any task (the UI's Rendered Templates
    tab) and no XCom of the provider's tasks may hold a phone-shaped value."""
    dag_run = dag.test(run_conf=conf) if conf else dag.test()
    with create_session() as session:
        tis = (
            session.query(TaskInstance)
            .filter(TaskInstance.run_id == dag_run.run_id, TaskInstance.dag_id == dag.dag_id)
            .all()
        )
        for ti in tis:
            session.expunge(ti)
    assert_no_phones_shown(dag, dag_run)
    return dag_run, {ti.task_id: ti for ti in tis}


def rendered_fields(dag_run, task_id: str) -> dict[str, Any]:
    """What the UI's Rendered Templates tab shows of a task of the run."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields

    with create_session() as session:
        row = (
            session.query(RenderedTaskInstanceFields)
            .filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id)
            .one()
        )
        return dict(row.rendered_fields)


def assert_no_phones_shown(dag, dag_run) -> None:
    """The run's rendered fields, and the XComs the provider's tasks pushed, hold no phone."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields

    shown: list[tuple[str, str]] = []
    with create_session() as session:
        for row in session.query(RenderedTaskInstanceFields).filter_by(
            dag_id=dag_run.dag_id, run_id=dag_run.run_id
        ):
            shown.append(
                (f"rendered fields of {row.task_id}", json.dumps(row.rendered_fields, default=str))
            )
        model = _xcom_model()
        ours = {
            task.task_id
            for task in dag.tasks
            if type(task).__module__.startswith("airflow_provider_cascade")
        }
        for row in session.query(model).filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id):
            if row.task_id in ours:
                value = row.value.decode() if isinstance(row.value, bytes) else row.value
                shown.append((f"XCom {row.key!r} of {row.task_id}", json.dumps(value, default=str)))
    leaks = [(where, found) for where, text in shown for found in PHONE_SHAPED.findall(text)]
    assert not leaks, f"{dag.dag_id} shows full phone numbers: {leaks[:5]}"


def _xcom_model() -> Any:
    if AIRFLOW_V_3_0_PLUS:
        from airflow.models.xcom import XComModel

        return XComModel
    from airflow.models.xcom import XCom

    return XCom


def xcom(dag_run, task_id: str, key: str = "return_value") -> Any:
    """The value a task of the run pushed, as downstream tasks see it."""
    if not AIRFLOW_V_3_0_PLUS:
        from airflow.models.xcom import XCom

        return XCom.get_one(key=key, dag_id=dag_run.dag_id, task_id=task_id, run_id=dag_run.run_id)
    from airflow.models.xcom import XComModel

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id, task_id=task_id, key=key)
            .one()
        )
        value = row.value
    return json.loads(value) if isinstance(value, str) else value


def dag_bag(folder: str) -> Any:
    """A DagBag of ``folder`` (the class moved to ``airflow.dag_processing`` in 3.1)."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:
        from airflow.models.dagbag import DagBag
    return DagBag(dag_folder=folder)  # conftest turns the examples off
