"""The provider's metrics, emitted through Airflow's own ``Stats`` client: statsd or
OpenTelemetry, as the deployment's ``[metrics]`` section configures (and nothing where it
configures neither). Airflow prefixes each name (``airflow.`` by default).

Every name is in :data:`METRICS`, which the docs render (``docs/metrics.md``). Names and
tags hold no phone, text or tracking id: the tags are the connection id, the DAG and task
ids, a message status or channel, an HTTP status. A metric never fails what it counts.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

log = logging.getLogger(__name__)

__all__ = ["METRICS", "gauge", "incr"]

#: name -> (type, what it counts, its tags).
METRICS: dict[str, tuple[str, str, str]] = {
    "cascade.send.sent": (
        "counter",
        "messages the service accepted (a send's total when it ends, or what it had "
        "accepted when it failed)",
        "conn_id, dag_id, task_id",
    ),
    "cascade.send.rejected": (
        "counter",
        "messages left out as invalid (on_invalid='skip')",
        "conn_id, dag_id, task_id",
    ),
    "cascade.send.in_doubt": (
        "counter",
        "messages whose batch's fate is unknown and that were not re-sent",
        "conn_id, dag_id, task_id",
    ),
    "cascade.send.suppressed": (
        "counter",
        "messages a guardrail left out (opted out, repeated, held by quiet hours)",
        "conn_id, dag_id, task_id, guardrail",
    ),
    "cascade.send.failed": (
        "counter",
        "sends that failed",
        "conn_id, dag_id, task_id, error",
    ),
    "cascade.requests.rate_limited": (
        "counter",
        "429 answers met (each one waited for and retried, or final)",
        "conn_id, call (send, status)",
    ),
    "cascade.status.lookups": (
        "counter",
        "delivery-status look-ups made (sensor pokes and the triggerer's rounds)",
        "conn_id",
    ),
    "cascade.delivery.final": (
        "counter",
        "messages found final by a wait when it ends",
        "conn_id, dag_id, task_id, status",
    ),
    "cascade.delivery.share": (
        "gauge",
        "a finished wait's share of messages in a status, 0 to 1 (sampled: of the sample)",
        "conn_id, dag_id, task_id, status",
    ),
    "cascade.delivery.by_channel": (
        "counter",
        "delivered messages by the channel that delivered them",
        "conn_id, dag_id, task_id, channel",
    ),
    "cascade.replies.received": (
        "counter",
        "replies stored by the receiver (repeats not counted)",
        "conn_id",
    ),
    "cascade.replies.refused": (
        "counter",
        "callbacks the receiver refused (404, 413, 422)",
        "conn_id, http_status",
    ),
    "cascade.replies.unavailable": (
        "counter",
        "callbacks answered 503 because the replies database failed",
        "conn_id",
    ),
}


def incr(name: str, count: int = 1, /, **tags: Any) -> None:
    """Add ``count`` to counter ``name`` (one of :data:`METRICS`)."""
    if count > 0:
        _emit("incr", name, count, tags)


def gauge(name: str, value: float, /, **tags: Any) -> None:
    """Set gauge ``name`` (one of :data:`METRICS`) to ``value``."""
    _emit("gauge", name, value, tags)


def _emit(kind: str, name: str, value: float, tags: dict[str, Any]) -> None:
    if name not in METRICS:
        raise ValueError(f"{name} is not a metric of the provider (metrics.METRICS)")
    try:
        given = {key: str(tag) for key, tag in tags.items() if tag is not None}
        getattr(_stats(), kind)(name, value, tags=given)
    except Exception as error:  # a metric never fails what it counts
        log.debug("metric %s not emitted: %s", name, error)


#: Airflow 3.2+ keeps two copies of its stats module: the task SDK's, set up in task
#: processes, and the core's, set up in the API server, scheduler and triggerer.
_STATS_MODULES = (
    "airflow.sdk._shared.observability.metrics.stats",
    "airflow._shared.observability.metrics.stats",
)


def _stats() -> Any:
    """The stats client this process set up (the one its metrics go through)."""
    for name in _STATS_MODULES:
        module = sys.modules.get(name)
        if module is None:
            try:
                module = importlib.import_module(name)
            except ImportError:
                continue
        if getattr(module, "_factory", None) is not None:
            return module
    from airflow.providers.common.compat.sdk import Stats  # Airflow before 3.2

    return Stats
