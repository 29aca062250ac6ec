"""The tracker: the latest status of every message a delivery wait watches, which are
still waiting, and which may be looked up now.

Used alike by the sensor's poke mode and by the deferred trigger; no HTTP here, and no
wire names: status answers are read by :func:`~airflow_provider_cascade.wire.read_status`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from airflow_provider_cascade.delivery.rows import checked_at, from_row, to_row, write_back_row
from airflow_provider_cascade.exceptions import CascadeError
from airflow_provider_cascade.wire import DeliveryStatus, read_status

FINAL_STATUSES = frozenset({"delivered", "undeliverable", "permanenterror"})
FAILED_STATUSES = frozenset({"undeliverable", "permanenterror"})
SuccessWhen = Literal["all_final", "all_delivered"]


class CascadeDeliveryError(CascadeError):
    """Messages ended undeliverable where the sensor was told that is a failure."""


SCHEDULED = DeliveryStatus("scheduled")


def _timestamp(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


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

    def is_settled(self, message_id: str) -> bool:
        """True once the message needs no more look-ups (final, or scheduled and settled)."""
        return message_id not in self.pending

    def finals_of(self, message_ids: Iterable[str]) -> list[tuple[str, DeliveryStatus]]:
        """The final statuses of ``message_ids``, for a checkpoint."""
        return [(m, self.statuses[m]) for m in message_ids if m in self.statuses]

    def write_back_rows(self, message_ids: Iterable[str]) -> list[dict[str, Any]]:
        """One row per message for ``mark_delivered_sql``: ``message_id``, ``tracking_id``,
        ``status``, ``channel``, ``cost``, ``checked_at``."""
        when = checked_at()
        return [
            write_back_row(m, self.tracking_ids.get(m), self.statuses.get(m), when)
            for m in message_ids
        ]

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
        """``{"messages": [[message_id, tracking_id, *status row], ...]}`` (no status yet:
        the pair alone); :mod:`~airflow_provider_cascade.delivery.rows` encodes the status."""
        rows = []
        for message_id, tracking_id in self.tracking_ids.items():
            found = self.statuses.get(message_id)
            pair = [message_id, tracking_id]
            rows.append(pair if found is None else [*pair, *to_row(found)])
        return {"messages": rows}

    @classmethod
    def from_json(
        cls, value: Mapping[str, Any], *, wait_for_scheduled: bool = True
    ) -> DeliveryTracker:
        rows = value["messages"]
        tracker = cls(((row[0], row[1]) for row in rows), wait_for_scheduled=wait_for_scheduled)
        for row in rows:
            if len(row) > 2 and row[2] is not None:
                tracker._set(row[0], from_row(row[2:]))
        return tracker

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
            from airflow_provider_cascade.delivery.sampling import wilson

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
