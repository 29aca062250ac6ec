"""Delivery tracking: which messages reached a final status, how, and the report.

Used alike by the sensor's poke mode and by the deferred trigger; no HTTP here, and no
wire names: status answers are read by :func:`~airflow_provider_cascade.wire.read_status`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, Literal

from airflow_provider_cascade.exceptions import CascadeError
from airflow_provider_cascade.results import ResultSpool
from airflow_provider_cascade.wire import DeliveryStatus, read_status

FINAL_STATUSES = frozenset({"delivered", "undeliverable", "permanenterror"})
FAILED_STATUSES = frozenset({"undeliverable", "permanenterror"})
SuccessWhen = Literal["all_final", "all_delivered"]


class CascadeDeliveryError(CascadeError):
    """Messages ended undeliverable where the sensor was told that is a failure."""


UNKNOWN = DeliveryStatus("unknown")
SCHEDULED = DeliveryStatus("scheduled")


def _timestamp(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _zero_cost() -> dict[str, float]:
    return {"cost": 0.0, "bill_amount": 0.0}


def _rounded(sums: dict[str, float]) -> dict[str, float]:
    return {name: round(value, 6) for name, value in sums.items()}


class DeliveryTracker:
    """The latest status of every message being watched.

    :param messages: ``(message_id, tracking_id)`` pairs, or triples with the message's
        ``scheduled_sent`` (UTC ISO) when it is due later; a tracking id may be None when
        only message ids were given.
    :param wait_for_scheduled: False: a message scheduled for later is settled for now,
        as ``scheduled`` (and a ``scheduled`` answer settles one too).
    """

    def __init__(
        self, messages: Iterable[Sequence[Any]], *, wait_for_scheduled: bool = True
    ) -> None:
        self.tracking_ids: dict[str, str | None] = {}
        #: When each scheduled message is due (UNIX time): not polled before.
        self.due: dict[str, float] = {}
        for message_id, tracking_id, *scheduled in messages:
            self.tracking_ids[message_id] = tracking_id
            if scheduled and scheduled[0]:
                self.due[message_id] = _timestamp(scheduled[0])
        self.wait_for_scheduled = wait_for_scheduled
        self.statuses: dict[str, DeliveryStatus] = {}
        self.pending: set[str] = set(self.tracking_ids)
        if not wait_for_scheduled:
            now = time.time()
            for message_id, due in self.due.items():
                if due > now:
                    self._set(message_id, SCHEDULED)

    def due_now(self, now: float | None = None) -> list[str]:
        """The messages still waiting that may be polled now (scheduled ones once due)."""
        now = time.time() if now is None else now
        return sorted(m for m in self.pending if self.due.get(m, 0.0) <= now)

    def next_due(self, now: float | None = None) -> float | None:
        """When the earliest waiting message not yet due becomes due, if any."""
        now = time.time() if now is None else now
        later = [self.due[m] for m in self.pending if self.due.get(m, 0.0) > now]
        return min(later) if later else None

    def record(self, message_id: str, payload: Mapping[str, Any]) -> None:
        """Take a status answer for ``message_id``."""
        self._set(message_id, read_status(payload))

    def _set(self, message_id: str, status: DeliveryStatus) -> None:
        self.statuses[message_id] = status
        if status.status in FINAL_STATUSES or (
            status.status == "scheduled" and not self.wait_for_scheduled
        ):
            self.pending.discard(message_id)

    def restore(self, finals: Iterable[tuple[str, DeliveryStatus]]) -> int:
        """Take final statuses recorded earlier (a checkpoint); returns how many applied."""
        applied = 0
        for message_id, found in finals:
            if message_id in self.tracking_ids:
                self._set(message_id, found)
                applied += 1
        return applied

    def finals_of(self, message_ids: Iterable[str]) -> list[tuple[str, DeliveryStatus]]:
        """The final statuses of ``message_ids``, for a checkpoint."""
        return [(m, self.statuses[m]) for m in message_ids if m in self.statuses]

    def write_back_rows(self, message_ids: Iterable[str]) -> list[dict[str, Any]]:
        """One row per message for ``mark_delivered_sql``: ``message_id``, ``tracking_id``,
        ``status``, ``channel``, ``cost``, ``checked_at``."""
        checked_at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        rows = []
        for message_id in message_ids:
            found = self.statuses.get(message_id) or UNKNOWN
            rows.append(
                {
                    "message_id": message_id,
                    "tracking_id": self.tracking_ids.get(message_id),
                    "status": found.status,
                    "channel": found.channel,
                    "cost": found.cost,
                    "checked_at": checked_at,
                }
            )
        return rows

    def waiting(self, limit: int = 20) -> str:
        """The first ``limit`` messages still waiting, by tracking id, and how many more."""
        names = sorted(str(self.tracking_ids[m] or m) for m in self.pending)
        more = len(names) - limit
        return ", ".join(names[:limit]) + (f" and {more} more" if more > 0 else "")

    @property
    def done(self) -> bool:
        return not self.pending

    def summary(self) -> str:
        counts = Counter(status.status for status in self.statuses.values())
        waiting = len(self.pending)
        return f"{len(self.tracking_ids) - waiting} final, {waiting} waiting ({dict(counts)})"

    # --- the trigger's event carries the tracker as JSON ----------------------------------

    def to_json(self) -> dict[str, Any]:
        rows = []
        for message_id, tracking_id in self.tracking_ids.items():
            found = self.statuses.get(message_id)
            rows.append(
                [message_id, tracking_id]
                if found is None
                else [
                    message_id,
                    tracking_id,
                    found.status,
                    found.channel,
                    found.cost,
                    found.bill_amount,
                    found.bill_currency,
                ]
            )
        return {"messages": rows}

    @classmethod
    def from_json(
        cls, value: Mapping[str, Any], *, wait_for_scheduled: bool = True
    ) -> DeliveryTracker:
        rows = value["messages"]
        tracker = cls(((row[0], row[1]) for row in rows), wait_for_scheduled=wait_for_scheduled)
        for row in rows:
            if len(row) > 2 and row[2] is not None:
                cost, bill, currency = (*row[4:7], None, None, None)[:3]
                tracker._set(row[0], DeliveryStatus(row[2], row[3], None, cost, bill, currency))
        return tracker

    # --- the report -----------------------------------------------------------------------

    def check(
        self,
        success_when: SuccessWhen,
        fail_on_undeliverable: bool,
        estimate: Mapping[str, Any] | None = None,
    ) -> None:
        """Raise :class:`CascadeDeliveryError` if the final statuses are not a success.

        :param estimate: the report's estimate when only a sample was polled: then the
            campaign fails when the 95% interval's low bound of failed messages is above 0.
        """
        failed = [
            (message_id, found.status)
            for message_id, found in self.statuses.items()
            if found.status in FAILED_STATUSES
        ]
        if not failed or not (fail_on_undeliverable or success_when == "all_delivered"):
            return
        shown = ", ".join(
            f"{self.tracking_ids[mid] or mid} ({status})" for mid, status in failed[:10]
        )
        more = f" and {len(failed) - 10} more" if len(failed) > 10 else ""
        if estimate is not None:
            from airflow_provider_cascade.sampling import wilson

            low, high = wilson(len(failed), int(estimate["sample_size"]))
            if low <= 0:
                return
            raise CascadeDeliveryError(
                f"{len(failed)} of {estimate['sample_size']} sampled message(s) were not "
                f"delivered ({shown}{more}): between {low:.1%} and {high:.1%} of all "
                f"{estimate['population']} (95%)"
            )
        raise CascadeDeliveryError(
            f"{len(failed)} of {len(self.tracking_ids)} message(s) were not delivered: "
            f"{shown}{more}"
        )

    def report(self, inline_limit: int, results_path: str | None) -> dict[str, Any]:
        """Counts per status and per delivering channel, ``cost`` and ``bill_amount``
        summed per bill currency (``{"UAH": {"cost", "bill_amount"}}``; "unspecified" where
        the service named none), and one entry per message
        (``message_id``, ``tracking_id``, ``status``, ``channel``), offloaded to
        ``results_path`` as JSON Lines past ``inline_limit`` messages."""
        by_status: Counter[str] = Counter()
        by_channel: Counter[str] = Counter()
        costs: dict[str, dict[str, float]] = {}
        spool: ResultSpool[dict[str, Any]] = ResultSpool(dict, inline_limit)
        try:
            for message_id, tracking_id in self.tracking_ids.items():
                found = self.statuses.get(message_id) or UNKNOWN
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
            return {
                "total": spool.count,
                "by_status": dict(by_status),
                "by_channel": dict(by_channel),
                "cost": {currency: _rounded(sums) for currency, sums in costs.items()},
                "messages": None if offload else spool.inline(),
                "results_path": spool.offload(results_path) if offload and results_path else None,
            }
        finally:
            spool.close()
