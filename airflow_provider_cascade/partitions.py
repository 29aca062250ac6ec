"""How many mapped sends share the account's request budget at once.

The connection's ``max_requests_per_second`` is the account's budget. A send mapped over
partitions (``CascadeSendOperator.partial(...).expand(...)``) divides it by the number of
its instances that can run at the same time: ``max_active_tis_per_dagrun``, or the number
of mapped instances when that is smaller. Across DAGs, an Airflow pool with that many
slots bounds them the same way (give each send ``pool=`` and ``max_active_tis_per_dagrun``
equal to the pool's slots).

:func:`id_ranges` splits a table's ids into the ranges such a send is mapped over.
"""

from __future__ import annotations

import re
from typing import Any

from airflow_provider_cascade.exceptions import CascadeError
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


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?")


def id_ranges(
    conn_id: str,
    table: str,
    *,
    parts: int | None = None,
    size: int | None = None,
    column: str = "id",
) -> list[dict[str, int]]:
    """Split a table's integer ids into contiguous ranges, one mapped send each.

    Give either ``parts`` (that many ranges, as even as the ids allow) or ``size`` (ranges
    of that many ids). Each range is ``{"low": first, "high": last}``, both inclusive, for a
    send's ``parameters`` (``WHERE id BETWEEN %(low)s AND %(high)s``); together they
    cover every id from the smallest to the largest, with no overlap. An empty table
    gives no ranges (the mapped send then has no instance to run).

    Use it in a ``@task`` that feeds ``CascadeSendOperator.partial(...).expand(parameters=...)``.

    :param conn_id: a common-sql connection (postgres, mysql, sqlite...).
    :param table: the table (``schema.table`` allowed); a plain SQL identifier.
    :param parts: how many ranges.
    :param size: how many ids a range spans.
    :param column: the integer id column; a plain SQL identifier.
    :raises CascadeError: neither or both of ``parts`` and ``size`` given, one below 1,
        a name that is not a plain identifier, or a connection that is not a SQL database.
    """
    from airflow_provider_cascade.sql import sql_hook

    if (parts is None) == (size is None):
        raise CascadeError("id_ranges: give one of parts= or size=, not both or neither")
    count = parts if parts is not None else size
    name = "parts" if parts is not None else "size"
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise CascadeError(f"id_ranges: {name}={count!r}: must be a whole number of 1 or more")
    for argument, value in (("table", table), ("column", column)):
        if not _IDENTIFIER.fullmatch(value):
            raise CascadeError(
                f"id_ranges: {argument}={value!r}: must be a plain SQL name (letters, digits, "
                "underscores; schema.table allowed)"
            )
    low, high = sql_hook(conn_id, "id_ranges(conn_id=)").get_first(
        f"SELECT MIN({column}), MAX({column}) FROM {table}"  # the names are checked above
    )
    if low is None:
        return []
    low, high = int(low), int(high)
    step = size if size is not None else -(-(high - low + 1) // count)
    return [
        {"low": start, "high": min(start + step - 1, high)} for start in range(low, high + 1, step)
    ]
