"""Durable progress of one send, so a retried task never sends a message twice.

What happens to each batch is an event: ``in_flight`` (about to be sent), ``accepted``
(with its message ids), ``in_doubt`` or ``not_sent``. Events are written to Airflow's task
state store (3.3+: ``context["task_state_store"]``, which survives retries) in numbered log
entries; :meth:`SendLedger.flush` writes all pending events in ONE store call, because each
call is a round trip to the API server and its database. The caller flushes before every
request, so an ``in_flight`` event is durable before its request leaves, and the outcome
of the batches finished meanwhile is recorded with it.

A retry reads the log back, by tracking id: accepted messages are restored, not sent;
messages of a batch left ``in_flight`` (the worker died mid-request) or ``in_doubt`` are
the caller's to re-send or to skip.

Without a state store (older Airflow) the ledger only remembers within one try.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from airflow_provider_cascade.messages import CascadeMessage, SentMessage

# Log entries are numbered from 0 with no gaps, so a retry reads them back in order until
# the first missing number.
LOG_KEY = "cascade_send.log.{}"

IN_FLIGHT = "in_flight"
ACCEPTED = "accepted"
IN_DOUBT = "in_doubt"
NOT_SENT = "not_sent"


class StateStore(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...


class SendLedger:
    """What earlier tries of this task sent, and the record of this one.

    :param store: the task state store, or None where Airflow has none (progress is then
        remembered only within this try).
    """

    def __init__(self, store: StateStore | None) -> None:
        self.store = store
        # What EARLIER tries did (this try's progress is only written, never held here,
        # so memory does not grow with the campaign).
        self.accepted: dict[str, str] = {}  # tracking id -> message id
        self.uncertain: set[str] = set()
        self._entries = 0
        self._batches = 0
        self._pending: list[dict[str, Any]] = []
        if store is not None:
            self._load(store)
        #: True when an earlier try of this task left records behind.
        self.resumed = self._entries > 0

    @classmethod
    def from_context(cls, context: Mapping[str, Any], log: Any) -> SendLedger:
        store = context.get("task_state_store")
        if store is None:
            from airflow import __version__ as airflow_version

            log.warning(
                "Airflow %s has no task state store (it needs 3.3+): a retry of this task "
                "cannot tell which batches an earlier try sent, and may send them again. Use "
                "mark_sent_sql with a SQL source that selects only unsent rows to stay "
                "idempotent.",
                airflow_version,
            )
        return cls(store)

    def _load(self, store: StateStore) -> None:
        while isinstance(entry := store.get(LOG_KEY.format(self._entries)), dict):
            self._entries += 1
            for event in entry.get("events") or []:
                self._batches = max(self._batches, int(event["batch"]) + 1)
                ids: list[str] = event.get("tracking_ids") or []
                if event.get("state") == ACCEPTED:
                    self.accepted.update(zip(ids, event["message_ids"], strict=True))
                    self.uncertain.difference_update(ids)
                elif event.get("state") in (IN_FLIGHT, IN_DOUBT):
                    self.uncertain.update(ids)
                elif event.get("state") == NOT_SENT:
                    self.uncertain.difference_update(ids)
        self.uncertain.difference_update(self.accepted)

    def begin(self, batch: Sequence[CascadeMessage], *, in_flight: bool = True) -> int:
        """Number the batch and, with ``in_flight``, note it in flight (flush before its
        request). Needed to keep a batch a killed worker was sending from being sent again
        (at-most-once); at-least-once sends it again anyway, so it can save the writes.

        :return: the batch's number.
        """
        number = self._batches
        self._batches += 1
        if in_flight:
            self._note(number, IN_FLIGHT, [m.tracking_id for m in batch])
        return number

    def finish(self, number: int, batch: Sequence[CascadeMessage], state: str) -> None:
        """Note that the batch was not sent, or is in doubt."""
        self._note(number, state, [m.tracking_id for m in batch])

    def accept(self, number: int, sent: Sequence[SentMessage]) -> None:
        """Note the service's message ids for the batch."""
        self._note(
            number,
            ACCEPTED,
            [s.tracking_id for s in sent],
            message_ids=[s.message_id for s in sent],
        )

    def flush(self) -> None:
        """Write every pending event in one store call."""
        if not self._pending or self.store is None:
            self._pending.clear()
            return
        self.store.set(LOG_KEY.format(self._entries), {"events": self._pending})
        self._entries += 1
        self._pending = []

    def _note(self, number: int, state: str, tracking_ids: list[str], **extra: Any) -> None:
        if self.store is not None:
            self._pending.append(
                {"batch": number, "state": state, "tracking_ids": tracking_ids, **extra}
            )
