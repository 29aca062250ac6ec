"""The delivery sensor's argument groups: which messages to poll (:class:`CascadeSample`)
and where final statuses are written back (:class:`CascadeWriteBack`); its result goes
where a send's does (:class:`~airflow_provider_cascade.send.options.CascadeResults`).

Light to import: DAG files build these at every parse.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_cascade.suggestions import reject_unknown

__all__ = ["MOVED_SENSOR_ARGUMENTS", "CascadeSample", "CascadeWriteBack"]

#: The sensor's arguments of 0.2 that are now inside a group (the CHANGELOG lists them).
MOVED_SENSOR_ARGUMENTS = {
    "sample_size": "sample=CascadeSample(size=...)",
    "sample_seed": "sample=CascadeSample(seed=...)",
    "sql_conn_id": "write_back=CascadeWriteBack(conn_id=...)",
    "mark_delivered_sql": "write_back=CascadeWriteBack(sql=...)",
    "results_path": "results=CascadeResults(path=...)",
    "xcom_inline_limit": "results=CascadeResults(xcom_inline_limit=...)",
}


class CascadeSample:
    """Poll a uniform random sample of the campaign instead of every message, and report
    the whole campaign's share of each status and channel with its 95% interval.

    ``CascadeSample(size=400)``: 400 look-ups give each share within a few points,
    whatever the campaign's size.

    :param size: messages to poll (all of them when there are fewer).
    :param seed: the sample's seed (the same seed and messages give the same sample).
    :raises ValueError: a size below 1 (at DAG parse).
    """

    template_fields: Sequence[str] = ()

    def __init__(self, size: int, *, seed: int = 0, **unknown: Any) -> None:
        reject_unknown(type(self), unknown)
        if size < 1:
            raise ValueError(f"CascadeSample(size=...) must be 1 or more, not {size}")
        self.size = size
        self.seed = seed

    def __repr__(self) -> str:
        return f"CascadeSample(size={self.size}, seed={self.seed})"


class CascadeWriteBack:
    """Write each final status back to your database as it is found.

    ``CascadeWriteBack(sql="UPDATE outbox SET status = %(status)s WHERE message_id =
    %(message_id)s", conn_id="outbox_db")``

    :param sql: run once per message that became final, with named parameters
        ``message_id``, ``tracking_id``, ``status``, ``channel``, ``cost``, ``checked_at``
        (``%(status)s`` or ``:status`` per your driver), committed per 1,000 rows; checked
        on its connection before the wait begins. Templated.
    :param conn_id: any common-sql connection.
    """

    template_fields: Sequence[str] = ("sql",)

    def __init__(self, *, sql: str, conn_id: str, **unknown: Any) -> None:
        reject_unknown(type(self), unknown)
        if not sql or not conn_id:
            raise ValueError("CascadeWriteBack takes both sql= and conn_id=")
        self.sql = sql
        self.conn_id = conn_id

    def __repr__(self) -> str:
        return f"CascadeWriteBack(conn_id={self.conn_id!r}, sql=...)"
