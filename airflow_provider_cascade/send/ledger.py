"""Durable progress of one send, so a retried task never sends a message twice.

What happens to each batch is an event: ``in_flight`` (about to be sent), ``accepted``
(with its message ids), ``in_doubt`` or ``not_sent``. Events go to Airflow's task state
store (3.3+: ``context["task_state_store"]``, which survives retries) as numbered log
entries, written by a background writer that commits everything pending in one call
(group commit): each call is a round trip to the API server and its database, and the
send loop never waits on one per batch.

The state store holds coordination state only (Airflow sizes it for that: 64 KB a value).
Where a send has ``results_path``, the accepted ids of each batch go to an object of their
own under ``<results_path>.parts/`` and the store holds a pointer and a count; without
it, a compact encoding (a 16-byte digest of the tracking id and the 16 bytes of the UUID
message id) stays inline. No value is over :data:`MAX_VALUE_BYTES`.

Invariants (``tests/test_ledger.py``, ``tests/reliability/test_killed_worker.py``):

1. A batch's ``accepted`` record is written only after the service accepted it, and only
   after its part object (if any) is written. A retry restores every batch whose record is
   durable and never sends it again.
2. With ``on_uncertain="skip"`` a batch's ``in_flight`` record is durable before its
   request leaves (the request's own thread waits for it, not the send loop). A retry never
   sends such a batch again unless a ``not_sent`` record follows: it is reported in doubt.
3. At most ``max_in_flight`` batches are at risk at any moment: in flight, or answered
   with their record not yet durable. After a SIGKILL those are the only batches a retry
   can send again (``resend``) or report in doubt (``skip``).
4. Log entries are numbered from 0 with no gaps; a retry reads them in order until the
   first missing number, and appends after them.

After a successful send the entries stay until Airflow's ``[state_store]`` retention
removes them (30 days by default, a few KB per 100,000 messages): deleting them when
``execute()`` returns would be unsafe, since the task can still fail before Airflow records
its success, and its retry must then find them. The part objects are deleted once the
final ``results_path`` file is written; a retry that finds a part gone reads that file.

Without a state store (older Airflow, or ``durable=False``) the ledger only remembers
within one try.

The group-commit writer is :mod:`~airflow_provider_cascade.send.ledger_writer`, the part
objects :mod:`~airflow_provider_cascade.send.ledger_parts`, the inline encoding of ids
:mod:`~airflow_provider_cascade.send.ledger_codec`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from airflow_provider_cascade.exceptions import CascadeError
from airflow_provider_cascade.results import SentMessage
from airflow_provider_cascade.send.accepted_ids import AcceptedIds, digest
from airflow_provider_cascade.send.ledger_codec import (
    decode_inline_ids,
    inline_ids,
    join_hashes,
    split_hashes,
)
from airflow_provider_cascade.send.ledger_parts import PartStore
from airflow_provider_cascade.send.ledger_writer import (
    LINGER_SECONDS,
    LOG_KEY,
    MAX_VALUE_BYTES,
    LogWriter,
    StateStore,
)

__all__ = ["LINGER_SECONDS", "LOG_KEY", "MAX_VALUE_BYTES", "PartStore", "SendLedger", "StateStore"]


IN_FLIGHT = "in_flight"
ACCEPTED = "accepted"
IN_DOUBT = "in_doubt"
NOT_SENT = "not_sent"


#: 16 bytes that stand for a tracking id in the store and in memory (stable across
#: processes; compared whole, so no two ids are ever taken for one).
id_hash = digest


class SendLedger:
    """What earlier tries of this task sent, and the record of this one.

    :param store: the task state store, or None where there is none (progress is then
        remembered only within this try).
    :param parts: where accepted ids go (a send with ``results_path``); None keeps them
        inline in the store, compactly.
    """

    def __init__(self, store: StateStore | None, *, parts: PartStore | None = None) -> None:
        self.store = store
        self.parts = parts
        # What EARLIER tries did, by the 16-byte digest of the tracking id (this try's
        # progress is only written, never held here, so memory does not grow with it).
        self._accepted = AcceptedIds()
        self._results_file_read = False  # see _from_results_file
        self._uncertain: set[bytes] = set()
        self._entries = 0
        self._batches = 0
        if store is not None:
            self._load(store)
        #: True when an earlier try of this task left records behind.
        self.resumed = self._entries > 0
        self._writer = LogWriter(store, self._entries) if store is not None else None

    @property
    def durable(self) -> bool:
        """True when progress outlives this try (a task state store)."""
        return self.store is not None

    @classmethod
    def from_context(
        cls, context: Mapping[str, Any], log: Any, *, results_path: str | None = None
    ) -> SendLedger:
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
            return cls(None)
        return cls(store, parts=PartStore(results_path) if results_path else None)

    # --- what earlier tries did -------------------------------------------------------

    @property
    def accepted_count(self) -> int:
        return len(self._accepted)

    @property
    def uncertain_count(self) -> int:
        return len(self._uncertain)

    def accepted_id(self, tracking_id: str) -> str | None:
        """The message id an earlier try got for ``tracking_id``, if it was accepted."""
        return self._accepted.get(id_hash(tracking_id)) if self._accepted else None

    def was_uncertain(self, tracking_id: str) -> bool:
        """True when an earlier try left the message in flight or in doubt."""
        return bool(self._uncertain) and id_hash(tracking_id) in self._uncertain

    def _load(self, store: StateStore) -> None:
        sending: dict[int, set[bytes]] = {}
        while isinstance(entry := store.get(LOG_KEY.format(self._entries)), dict):
            self._entries += 1
            for event in entry.get("events") or []:
                number = int(event["b"])
                self._batches = max(self._batches, number + 1)
                state = event["s"]
                if state == ACCEPTED:
                    self._accepted.update(self._decode_accepted(event))
                    sending.pop(number, None)
                elif state == IN_FLIGHT:
                    sending[number] = set(self._decode_sending(event))
                elif state == NOT_SENT:
                    sending.pop(number, None)
        for hashes in sending.values():  # in flight or in doubt, and never accepted
            self._uncertain.update(hashes)
        accepted = self._accepted
        self._uncertain = {key for key in self._uncertain if key not in accepted}

    def _decode_accepted(self, event: Mapping[str, Any]) -> Iterable[tuple[bytes, str]]:
        if "p" in event:
            return self._read_part(event["p"])
        return decode_inline_ids(event)

    def _decode_sending(self, event: Mapping[str, Any]) -> Iterable[bytes]:
        if "p" in event:
            return (id_hash(tracking_id) for tracking_id in self._part_lines(event["p"]))
        return split_hashes(event["h"])

    def _read_part(self, name: str) -> Iterable[tuple[bytes, str]]:
        try:
            lines = self._part_lines(name)
        except FileNotFoundError:
            return self._from_results_file(name)
        return [(id_hash(line["tracking_id"]), line["message_id"]) for line in lines]

    def _part_lines(self, name: str) -> list[Any]:
        if self.parts is None:
            raise CascadeError(
                f"an earlier try recorded its progress in part objects ({name}) under "
                "results_path; give this try the same results_path"
            )
        return self.parts.read_lines(name)

    def _from_results_file(self, name: str) -> Iterator[tuple[bytes, str]]:
        """A part removed after an earlier try wrote the final results file: read that,
        once (it holds every batch's ids; the parts after this one were removed with it),
        streamed (a million lines never sit in a list)."""
        from airflow_provider_cascade.results import CascadeSendResult

        assert self.parts is not None
        if self._results_file_read:
            return
        self._results_file_read = True
        result = CascadeSendResult(route="", results_path=self.parts.results_path)
        try:
            for sent in result.iter_messages():
                yield id_hash(sent.tracking_id), sent.message_id
        except FileNotFoundError:
            raise CascadeError(
                f"an earlier try's part {name} and the results file are both gone: cannot "
                "tell what it sent; not sending anything rather than sending twice"
            ) from None

    # --- this try's record ------------------------------------------------------------

    def begin(self) -> int:
        """Number a batch. At-most-once callers then :meth:`mark_sending` it and
        :meth:`wait` for that before its request leaves.

        :return: the batch's number.
        """
        number = self._batches
        self._batches += 1
        return number

    def mark_sending(self, number: int, tracking_ids: Sequence[str]) -> int:
        """Record the batch in flight; returns a ticket for :meth:`wait`. Runs in the
        batch's own thread (it may write a part object)."""
        if self._writer is None:
            return 0
        if self.parts is not None:
            event = {
                "b": number,
                "s": IN_FLIGHT,
                "p": self.parts.write_sending(number, tracking_ids),
            }
        else:
            event = {"b": number, "s": IN_FLIGHT, "h": join_hashes(tracking_ids)}
        return self._writer.add(event)

    def accepted_part(
        self, number: int, sent: Sequence[SentMessage], lines: str | None = None
    ) -> str | None:
        """Write the batch's part object (in the batch's own thread); None when inline.

        :param lines: the ids as :func:`~airflow_provider_cascade.results.sent_lines`
            gives them, when the caller has them already.
        """
        if self._writer is None or self.parts is None:
            return None
        return self.parts.write_accepted(number, sent, lines)

    def accept(self, number: int, sent: Sequence[SentMessage], part: str | None = None) -> int:
        """Record the service's message ids for the batch; returns a ticket."""
        if self._writer is None:
            return 0
        if part is not None:
            return self._writer.add(
                {"b": number, "s": ACCEPTED, "p": part, "c": len(sent)}, messages=len(sent)
            )
        events = list(inline_ids(sent))
        ticket = 0
        for n, ids in enumerate(events, start=1):  # the batch counts once its last is durable
            ticket = self._writer.add(
                {"b": number, "s": ACCEPTED, **ids}, messages=len(sent) if n == len(events) else 0
            )
        return ticket

    def finish(self, number: int, state: str) -> int:
        """Record that a batch recorded in flight was not sent, or is in doubt."""
        if self._writer is None:
            return 0
        return self._writer.add({"b": number, "s": state})

    def wait(self, ticket: int) -> None:
        """Block until the record with ``ticket`` (and all before it) is durable.

        :raises CascadeError: the state store refused a write.
        """
        if self._writer is not None:
            self._writer.wait(ticket)

    def is_durable(self, ticket: int) -> bool:
        return self._writer is None or self._writer.is_durable(ticket)

    def close(self) -> None:
        """Write what is pending and stop the writer (also after an error)."""
        if self._writer is not None:
            self._writer.close()
