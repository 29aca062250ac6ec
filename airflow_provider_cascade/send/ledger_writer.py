"""The send ledger's writer: its events go to the task state store in group commits, in
order, from a thread of its own, so the send loop never waits on a round trip per batch.

Each write is one ``set`` of a numbered log entry (``LOG_KEY``), a round trip to the API
server and its database; every event that piled up meanwhile shares it, packed into as
few entries as keep each under :data:`MAX_VALUE_BYTES`. A write that fails stops the
writer: whoever waits for an event then gets a :class:`CascadeError` saying how many
messages were accepted and recorded, and how many accepted but not recorded.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable
from typing import Any, Protocol

from airflow_provider_cascade.exceptions import CascadeError

#: v3: tracking ids as 16-byte digests (v2 had 8 bytes; its entries are not read).
LOG_KEY = "cascade_send.v3.log.{}"
#: Airflow's default ``[state_store] max_value_storage_bytes`` is 65,535; stay well under.
MAX_VALUE_BYTES = 60_000


class StateStore(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...


#: How long an event may wait for others to share its write when nobody waits for it.
LINGER_SECONDS = 0.5


class LogWriter:
    """Writes events in group commits from a thread of its own, in order.

    A write goes out as soon as somebody waits for one of the pending events (the send
    loop keeping its batches at risk bounded, a request waiting for its ``in_flight``
    record), else once the oldest pending event is :data:`LINGER_SECONDS` old, or at close:
    so each write carries every event that piled up meanwhile.
    """

    def __init__(self, store: StateStore, first_entry: int) -> None:
        self.store = store
        self.entry = first_entry
        self._pending: list[tuple[int, dict[str, Any]]] = []
        self._oldest = 0.0  # when the oldest pending event was added
        self._waiters = 0
        self._added = 0
        self._durable = 0
        self._messages: dict[int, int] = {}  # ticket -> messages its event records accepted
        self._accepted = 0  # messages whose acceptance this try recorded durably
        self._error: BaseException | None = None
        self._closing = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="cascade-ledger", daemon=True)
        self._thread.start()

    def add(self, event: dict[str, Any], messages: int = 0) -> int:
        """Queue an event; ``messages``: how many accepted messages it records."""
        with self._cond:
            self._added += 1
            if messages:
                self._messages[self._added] = messages
            if not self._pending:
                self._oldest = time.monotonic()
                self._cond.notify_all()  # the writer now has a linger deadline to keep
            self._pending.append((self._added, event))
            return self._added

    def is_durable(self, ticket: int) -> bool:
        with self._cond:
            return self._durable >= ticket

    def wait(self, ticket: int) -> None:
        with self._cond:
            self._waiters += 1
            self._cond.notify_all()
            try:
                while self._durable < ticket and self._error is None:
                    self._cond.wait()
            finally:
                self._waiters -= 1
            if self._durable < ticket:
                raise self._failure()

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()
        if self._error is not None:
            raise self._failure()

    def _failure(self) -> CascadeError:
        """What stopped the send, and where it stands (called holding the lock or after
        the thread ended)."""
        unrecorded = sum(self._messages.values())
        return CascadeError(
            "could not record the send's progress in the task state store, so no further "
            f"batch was sent: {self._accepted} message(s) accepted and recorded, "
            f"{unrecorded} accepted but not recorded (a retry lists those in doubt, or "
            "sends them again with on_uncertain='resend', unless mark_sent_sql wrote them "
            f"back already). The state store said: {self._error}"
        )

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._due():
                    linger = self._oldest + LINGER_SECONDS - time.monotonic()
                    self._cond.wait(linger if self._pending else None)
                if not self._pending:
                    return
                batch, self._pending = self._pending, []
            try:
                for entry in pack_entries([event for _, event in batch]):
                    value = {"events": entry}
                    self.store.set(LOG_KEY.format(self.entry), value)
                    self.entry += 1
            except BaseException as error:
                with self._cond:
                    self._error = error
                    self._cond.notify_all()
                return
            with self._cond:
                self._durable = batch[-1][0]
                for ticket, _ in batch:
                    self._accepted += self._messages.pop(ticket, 0)
                self._cond.notify_all()

    def _due(self) -> bool:
        """Write now? (Called holding the lock.)"""
        if self._closing:
            return True
        if not self._pending:
            return False
        return self._waiters > 0 or time.monotonic() - self._oldest >= LINGER_SECONDS


def pack_entries(events: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
    """Events packed into entries of at most MAX_VALUE_BYTES serialised."""
    entry: list[dict[str, Any]] = []
    size = 20
    for event in events:
        event_size = len(json.dumps(event)) + 2
        if entry and size + event_size > MAX_VALUE_BYTES:
            yield entry
            entry, size = [], 20
        entry.append(event)
        size += event_size
    if entry:
        yield entry
