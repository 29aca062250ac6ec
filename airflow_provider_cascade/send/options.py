"""The send's argument groups besides the guardrails: how its requests go
(:class:`CascadeRequests`) and where its result goes (:class:`CascadeResults`); how an
operator takes a group, and where each argument of 0.1 went.

Light to import: DAG files build these at every parse.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_cascade.constants import (
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_WAIT,
    DEFAULT_RETRY_WAIT,
    DEFAULT_XCOM_INLINE_LIMIT,
    MAX_BATCH_SIZE,
    MAX_IN_FLIGHT,
)
from airflow_provider_cascade.suggestions import reject_unknown

__all__ = [
    "MOVED_ARGUMENTS",
    "CascadeRequests",
    "CascadeResults",
    "argument_group",
    "depend_on_nested_outputs",
]

#: The arguments of 0.1 that are now inside a group (the CHANGELOG's migration table
#: lists them; tests/test_changelog.py keeps the two the same).
MOVED_ARGUMENTS = {
    "max_messages": "guardrails=CascadeGuardrails(max_messages=...)",
    "max_reject_ratio": "guardrails=CascadeGuardrails(max_reject_ratio=...)",
    "dedupe": "guardrails=CascadeGuardrails(dedupe=...)",
    "suppress_sql": "guardrails=CascadeGuardrails(suppress=Suppression(sql=...))",
    "suppress_conn_id": "guardrails=CascadeGuardrails(suppress=Suppression(conn_id=...))",
    "suppress_phones": "guardrails=CascadeGuardrails(suppress=Suppression(phones=...))",
    "quiet_hours": "guardrails=CascadeGuardrails(quiet_hours=QuietHours(start, end))",
    "quiet_hours_types": "guardrails=CascadeGuardrails(quiet_hours=QuietHours(..., types=...))",
    "quiet_hours_zones": "guardrails=CascadeGuardrails(quiet_hours=QuietHours(..., zones=...))",
    "quiet_hours_policy": "guardrails=CascadeGuardrails(quiet_hours=QuietHours(..., policy=...))",
    "batch_size": "requests=CascadeRequests(batch_size=...)",
    "max_requests_per_second": "requests=CascadeRequests(max_requests_per_second=...)",
    "max_in_flight": "requests=CascadeRequests(max_in_flight=...)",
    "hook_params": "requests=CascadeRequests(max_retries=..., timeout=...)",
    "results_path": "results=CascadeResults(path=...)",
    "xcom_inline_limit": "results=CascadeResults(xcom_inline_limit=...)",
}


class CascadeRequests:
    """How a send's requests go: their size, pace, concurrency, retries and timeout.

    ``CascadeRequests(batch_size=500, max_requests_per_second=20)``

    :param batch_size: messages per request, 1 to 1,000 (default 1,000).
    :param max_requests_per_second: client-side pacing; default the connection's (80), the
        account's budget: a mapped send divides it by the instances that can run at once
        (``max_active_tis_per_dagrun``, or the mapped count when smaller).
    :param max_in_flight: requests in flight at once on the pooled session (default 16, at
        most 32), so validating the next batch overlaps the network; pacing still applies.
    :param max_retries: retries of a request that failed for a reason a retry can fix
        (429, 5xx, a connection refused or reset; default 4).
    :param retry_wait: the first retry's wait in seconds, doubling after (default 1).
    :param max_retry_wait: the longest wait between retries (default 60 s).
    :param timeout: a request's read timeout in seconds (default the connection's, 30).
    :raises ValueError: a value out of range (at DAG parse).
    """

    def __init__(
        self,
        *,
        batch_size: int = MAX_BATCH_SIZE,
        max_requests_per_second: float | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry_wait: float = DEFAULT_RETRY_WAIT,
        max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT,
        timeout: float | None = None,
        **unknown: Any,
    ) -> None:
        reject_unknown(type(self), unknown)
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be 1 to {MAX_BATCH_SIZE}, not {batch_size}")
        if not 1 <= max_in_flight <= MAX_IN_FLIGHT:
            raise ValueError(f"max_in_flight must be 1 to {MAX_IN_FLIGHT}, not {max_in_flight}")
        if max_requests_per_second is not None and max_requests_per_second <= 0:
            raise ValueError("max_requests_per_second must be positive")
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        self.batch_size = batch_size
        self.max_requests_per_second = max_requests_per_second
        self.max_in_flight = max_in_flight
        self.max_retries = max_retries
        self.retry_wait = retry_wait
        self.max_retry_wait = max_retry_wait
        self.timeout = timeout

    def hook_arguments(self) -> dict[str, Any]:
        """The ``CascadeHook`` arguments these set."""
        return {
            "max_requests_per_second": self.max_requests_per_second,
            "max_retries": self.max_retries,
            "retry_wait": self.retry_wait,
            "max_retry_wait": self.max_retry_wait,
            "timeout": self.timeout,
        }

    def __repr__(self) -> str:
        return (
            f"CascadeRequests(batch_size={self.batch_size}, "
            f"max_requests_per_second={self.max_requests_per_second}, "
            f"max_in_flight={self.max_in_flight}, max_retries={self.max_retries}, "
            f"retry_wait={self.retry_wait}, max_retry_wait={self.max_retry_wait}, "
            f"timeout={self.timeout})"
        )


class CascadeResults:
    """Where a send's result goes: the XCom, and past ``xcom_inline_limit`` messages a
    JSON Lines file.

    ``CascadeResults(path="s3://bucket/cascade/{{ run_id }}.jsonl")``

    :param path: an ``ObjectStoragePath`` URI (``s3://...``, ``file:///...``) for the id
        mapping of large sends. Templated. While the send runs, each accepted batch's ids
        also go to ``<path>.parts/`` (removed once the results file is written), so a retry
        can tell what was sent.
    :param xcom_inline_limit: past this many messages the ids go to ``path``; without one,
        a send with ``mark_sent_sql`` keeps the first ids (``truncated``) and a send
        without either fails before sending when the source holds more (default 10,000).
    :raises ValueError: a negative limit (at DAG parse).
    """

    template_fields: Sequence[str] = ("path",)

    def __init__(
        self,
        *,
        path: str | None = None,
        xcom_inline_limit: int = DEFAULT_XCOM_INLINE_LIMIT,
        **unknown: Any,
    ) -> None:
        reject_unknown(type(self), unknown)
        if xcom_inline_limit < 0:
            raise ValueError("xcom_inline_limit must be 0 or more")
        self.path = path
        self.xcom_inline_limit = xcom_inline_limit

    def __repr__(self) -> str:
        return f"CascadeResults(path={self.path!r}, xcom_inline_limit={self.xcom_inline_limit})"


def argument_group(name: str, value: Any, group: type[Any]) -> Any:
    """An argument group as given, or its defaults; anything else is refused by name."""
    if value is None:
        return group()
    if not isinstance(value, group):
        raise TypeError(f"{name}= takes a {group.__name__}(...), not {type(value).__name__}")
    return value


def depend_on_nested_outputs(task: Any, groups: Sequence[Any]) -> None:
    """Make the task depend on every upstream output found in the groups' template fields
    (nested groups included), as Airflow does for its own template fields."""
    from airflow.providers.common.compat.sdk import BaseOperator, XComArg

    def walk(value: Any) -> None:
        fields = getattr(value, "template_fields", None)
        if fields is None or isinstance(value, BaseOperator):
            XComArg.apply_upstream_relationship(task, value)
            return
        for field in fields:
            walk(getattr(value, field))

    for group in groups:
        if group is not None:
            walk(group)
