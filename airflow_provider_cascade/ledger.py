"""Durable progress of one send, so a retried task never sends a message twice.

Each batch is written to Airflow's task state store (3.3+: ``context["task_state_store"]``,
which survives retries) BEFORE its request goes out (``in_flight``) and again once the
service answered (``accepted`` with its message ids, ``in_doubt``, or ``not_sent``). A
retry reads every record back, by tracking id: accepted messages are restored, not sent;
messages of a batch left ``in_flight`` (the worker died mid-request) or ``in_doubt`` are
the caller's to re-send or to skip.

Without a state store (older Airflow) the ledger only remembers within one try.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from airflow_provider_cascade.messages import CascadeMessage, SentMessage

# One key per batch, numbered from 0 with no gaps (each is written before its request),
# so a retry reads them back in order until the first missing number.
BATCH_KEY = "cascade_send.batch.{}"

IN_FLIGHT = "in_flight"
ACCEPTED = "accepted"
IN_DOUBT = "in_doubt"
NOT_SENT = "not_sent"


class StateStore(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...


class SendLedger:
    """What earlier tries of this task sent, and the record of this one.

    :param store: the task state store, or None where Airflow has none.
    """

    def __init__(self, store: StateStore | None) -> None:
        self.store = store
        # What EARLIER tries did (this try's progress is only written, never held here,
        # so memory does not grow with the campaign).
        self.accepted: dict[str, str] = {}  # tracking id -> message id
        self.uncertain: set[str] = set()
        self._batches = 0
        if store is not None:
            self._load(store)
        #: True when an earlier try of this task left records behind.
        self.resumed = self._batches > 0

    @classmethod
    def from_context(cls, context: Mapping[str, Any], log: Any) -> SendLedger:
        store = context.get("task_state_store")
        if store is None:
            log.warning(
                "This Airflow has no task state store (3.3+): a retry of this task cannot tell "
                "which batches an earlier try sent, and may send them again. Use mark_sent_sql "
                "with a SQL source that selects only unsent rows to stay idempotent."
            )
        return cls(store)

    def _load(self, store: StateStore) -> None:
        while isinstance(record := store.get(BATCH_KEY.format(self._batches)), dict):
            self._batches += 1
            ids: list[str] = record.get("tracking_ids") or []
            if record.get("state") == ACCEPTED:
                self.accepted.update(zip(ids, record["message_ids"], strict=True))
                self.uncertain.difference_update(ids)
            elif record.get("state") in (IN_FLIGHT, IN_DOUBT):
                self.uncertain.update(ids)
        self.uncertain.difference_update(self.accepted)

    def begin(self, batch: Sequence[CascadeMessage]) -> int:
        """Record ``batch`` as in flight; call right before its request. Returns its number."""
        number = self._batches
        self._batches += 1
        if self.store is not None:
            self.store.set(
                BATCH_KEY.format(number),
                {"state": IN_FLIGHT, "tracking_ids": [m.tracking_id for m in batch]},
            )
        return number

    def finish(self, number: int, batch: Sequence[CascadeMessage], state: str) -> None:
        """Record that the batch was not sent, or is in doubt."""
        if self.store is not None:
            self.store.set(
                BATCH_KEY.format(number),
                {"state": state, "tracking_ids": [m.tracking_id for m in batch]},
            )

    def accept(self, number: int, sent: Sequence[SentMessage]) -> None:
        """Record the service's message ids for the batch."""
        if self.store is not None:
            self.store.set(
                BATCH_KEY.format(number),
                {
                    "state": ACCEPTED,
                    "tracking_ids": [s.tracking_id for s in sent],
                    "message_ids": [s.message_id for s in sent],
                },
            )
