"""The delivery report a wait returns (its XCom value): counts, costs, per-message entries
(offloaded past the inline limit) and, for a sample, the estimate for the whole campaign.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from airflow_provider_cascade.delivery.rows import UNKNOWN
from airflow_provider_cascade.delivery.sampling import estimate
from airflow_provider_cascade.delivery.tracker import DeliveryTracker
from airflow_provider_cascade.exceptions import CascadeError
from airflow_provider_cascade.results import ResultSpool

__all__ = ["report"]


def report(
    tracker: DeliveryTracker,
    inline_limit: int,
    results_path: str | None,
    population: int | None = None,
) -> dict[str, Any]:
    """Counts per status and per delivering channel, ``cost`` and ``bill_amount`` summed per
    bill currency (``{"UAH": {"cost", "bill_amount"}}``; "unspecified" where the service
    named none), and one entry per message (``message_id``, ``tracking_id``, ``status``,
    ``channel``), offloaded to ``results_path`` as JSON Lines past ``inline_limit``.

    :param population: how many messages the campaign had, when the tracker watched a
        sample of them: the report then has ``estimate``.
    :raises CascadeError: more than ``inline_limit`` messages and no ``results_path``.
    """
    by_status: Counter[str] = Counter()
    by_channel: Counter[str] = Counter()
    costs: dict[str, dict[str, float]] = {}
    spool: ResultSpool[dict[str, Any]] = ResultSpool(dict, inline_limit)
    try:
        for message_id, tracking_id in tracker.tracking_ids.items():
            found = tracker.statuses.get(message_id) or UNKNOWN
            status, channel = found.status, found.channel
            by_status[status] += 1
            if channel is not None and status == "delivered":
                by_channel[channel] += 1
            if found.cost is not None or found.bill_amount is not None:
                sums = costs.setdefault(found.bill_currency or "unspecified", _zero_cost())
                sums["cost"] += found.cost or 0.0
                sums["bill_amount"] += found.bill_amount or 0.0
            entry = {
                "message_id": message_id,
                "tracking_id": tracking_id,
                "status": status,
                "channel": channel,
            }
            spool.extend([entry])
        offload = spool.count > inline_limit
        if offload and not results_path:
            raise CascadeError(
                f"{spool.count} messages exceed xcom_inline_limit={inline_limit}: set "
                "results_path so the per-message report is written there"
            )
        value: dict[str, Any] = {
            "total": spool.count,
            "by_status": dict(by_status),
            "by_channel": dict(by_channel),
            "cost": {currency: _rounded(sums) for currency, sums in costs.items()},
            "messages": None if offload else spool.inline(),
            "results_path": spool.offload(results_path) if offload and results_path else None,
        }
    finally:
        spool.close()
    if population is not None and value["total"] < population:
        value["estimate"] = estimate(
            value["by_status"], value["by_channel"], value["total"], population
        )
    return value


def _zero_cost() -> dict[str, float]:
    return {"cost": 0.0, "bill_amount": 0.0}


def _rounded(sums: dict[str, float]) -> dict[str, float]:
    return {name: round(value, 6) for name, value in sums.items()}
