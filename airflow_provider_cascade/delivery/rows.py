"""A message's delivery status as one row of JSON values: encoded here, and only here.

The same row travels in a trigger's event (``[message_id, tracking_id, *status]``), in a
workspace's checkpoint parts (``[message_id, *status]``) and, as named parameters, to
``mark_delivered_sql``. ``*status`` is ``status, channel, cost, bill_amount, bill_currency``
(the per-channel detail is not kept: no report or write-back reads it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from airflow_provider_cascade.wire import DeliveryStatus

__all__ = ["UNKNOWN", "from_row", "to_row", "write_back_row"]

#: What a message not (yet) answered for is reported as.
UNKNOWN = DeliveryStatus("unknown")


def to_row(status: DeliveryStatus) -> list[Any]:
    """``[status, channel, cost, bill_amount, bill_currency]``."""
    return [status.status, status.channel, status.cost, status.bill_amount, status.bill_currency]


def from_row(row: Sequence[Any]) -> DeliveryStatus:
    """The status of :func:`to_row`'s row (a shorter row, from an older writer, pads with None)."""
    status, channel, cost, bill_amount, bill_currency = (*row, None, None, None, None)[:5]
    return DeliveryStatus(status, channel, None, cost, bill_amount, bill_currency)


def checked_at() -> str:
    """Now, as ``mark_delivered_sql``'s ``checked_at`` (UTC, ISO 8601, seconds)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_back_row(
    message_id: str, tracking_id: str | None, status: DeliveryStatus | None, when: str
) -> dict[str, Any]:
    """``mark_delivered_sql``'s named parameters for one message."""
    found = status or UNKNOWN
    return {
        "message_id": message_id,
        "tracking_id": tracking_id,
        "status": found.status,
        "channel": found.channel,
        "cost": found.cost,
        "checked_at": when,
    }
