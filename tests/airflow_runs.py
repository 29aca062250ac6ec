"""Real DAG runs and what they left in the metadata database, on every supported Airflow."""

from __future__ import annotations

import json
from typing import Any

from airflow.models.taskinstance import TaskInstance
from airflow.utils.session import create_session

from airflow_provider_cascade.version_compat import AIRFLOW_V_3_0_PLUS


def run(dag) -> tuple[Any, dict[str, TaskInstance]]:
    """``dag.test()`` in-process; the run and its task instances, detached from the session."""
    dag_run = dag.test()
    with create_session() as session:
        tis = (
            session.query(TaskInstance)
            .filter(TaskInstance.run_id == dag_run.run_id, TaskInstance.dag_id == dag.dag_id)
            .all()
        )
        for ti in tis:
            session.expunge(ti)
    return dag_run, {ti.task_id: ti for ti in tis}


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
