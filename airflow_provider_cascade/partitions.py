"""How many mapped sends share the account's request budget at once.

The connection's ``max_requests_per_second`` is the account's budget. A send mapped over
partitions (``CascadeSendOperator.partial(...).expand(...)``) divides it by the number of
its instances that can run at the same time: ``max_active_tis_per_dagrun``, or the number
of mapped instances when that is smaller. Across DAGs, an Airflow pool with that many
slots bounds them the same way (give each send ``pool=`` and ``max_active_tis_per_dagrun``
equal to the pool's slots).
"""

from __future__ import annotations

from typing import Any

from airflow_provider_cascade.version_compat import AIRFLOW_V_3_0_PLUS


def sharing_the_budget(context: Any, max_active_tis_per_dagrun: int | None) -> int:
    """How many instances of this task run at once and share the budget: 1 when the task
    is not mapped.

    The number of mapped instances comes from Airflow: on 3.x one look-up over the
    execution API (``get_ti_count``), on 2.x the context's ``expanded_ti_count``.
    """
    ti = context["ti"]
    if getattr(ti, "map_index", -1) in (None, -1):
        return 1
    mapped = _mapped_count(context)
    limits = [n for n in (mapped, max_active_tis_per_dagrun) if n]
    return max(1, min(limits)) if limits else 1


def _mapped_count(context: Any) -> int | None:
    if not AIRFLOW_V_3_0_PLUS:
        count = context.get("expanded_ti_count")
        return int(count) if count else None
    ti = context["ti"]
    get_ti_count = getattr(type(ti), "get_ti_count", None)
    if get_ti_count is None:  # not a task run (a test's stand-in)
        return None
    return int(get_ti_count(dag_id=ti.dag_id, task_ids=[ti.task_id], run_ids=[ti.run_id]))
