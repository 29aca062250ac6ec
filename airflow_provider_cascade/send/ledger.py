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

Longer than 300 lines: the ledger's event codec, its group-commit writer and its part
objects keep the invariants below; they are read together or not at all.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from airflow_provider_cascade.exceptions import CascadeError
from airflow_provider_cascade.results import SentMessage, sent_lines
from airflow_provider_cascade.send.accepted_ids import DIGEST_BYTES, AcceptedIds, digest

#: v3: tracking ids as 16-byte digests (v2 had 8 bytes; its entries are not read).
LOG_KEY = "cascade_send.v3.log.{}"
_string = json.JSONEncoder(ensure_ascii=False).encode
#: Airflow's default ``[state_store] max_value_storage_bytes`` is 65,535; stay well under.
MAX_VALUE_BYTES = 60_000

IN_FLIGHT = "in_flight"
ACCEPTED = "accepted"
IN_DOUBT = "in_doubt"
NOT_SENT = "not_sent"


class StateStore(Protocol):
    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any) -> None: ...


#: 16 bytes that stand for a tracking id in the store and in memory (stable across
#: processes; compared whole, so no two ids are ever taken for one).
id_hash = digest


class PartStore:
    """One object per batch under ``<results_path>.parts/``: the accepted ids of a batch
    (``NNNNNNNN.accepted.jsonl``) or the tracking ids of a batch about to be sent
    (``NNNNNNNN.sending.jsonl``).

    :param results_path: the send's ``results_path`` (an ``ObjectStoragePath`` URI).
    """

    def __init__(self, results_path: str) -> None:
        from airflow.providers.common.compat.sdk import ObjectStoragePath

        self.results_path = results_path
        self.folder = ObjectStoragePath(results_path + ".parts")
        self._made = False

    def write_accepted(
        self, number: int, sent: Sequence[SentMessage], lines: str | None = None
    ) -> str:
        """Write a batch's accepted ids; ``lines``: their :func:`sent_lines`, if made."""
        text = sent_lines(sent) if lines is None else lines
        return self._write(f"{number:08d}.accepted.jsonl", text)

    def write_sending(self, number: int, tracking_ids: Sequence[str]) -> str:
        lines = "".join(_string(tracking_id) + "\n" for tracking_id in tracking_ids)
        return self._write(f"{number:08d}.sending.jsonl", lines)

    def _write(self, name: str, text: str) -> str:
        if not self._made:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._made = True
        with (self.folder / name).open("w") as out:  # type: ignore[no-untyped-call]
            out.write(text)
        return name

    def read_lines(self, name: str) -> list[Any]:
        """The JSON lines of a part. :raises FileNotFoundError: it was removed."""
        path = self.folder / name
        if not path.exists():
            raise FileNotFoundError(name)
        with path.open("r") as lines:  # type: ignore[no-untyped-call]
            return [json.loads(line) for line in iter(lines.readline, "") if line.strip()]

    def remove(self) -> None:
        """Delete every part (once the final results file holds the same ids)."""
        if self.folder.exists():
            self.folder.rmdir(recursive=True)


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
        self._writer = _Writer(store, self._entries) if store is not None else None

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
        if "u" in event:  # digest + UUID, 32 bytes a message
            packed = base64.b64decode(event["u"])
            step = DIGEST_BYTES + 16
            return (
                (
                    packed[i : i + DIGEST_BYTES],
                    str(uuid.UUID(bytes=packed[i + DIGEST_BYTES : i + step])),
                )
                for i in range(0, len(packed), step)
            )
        hashes = _split_hashes(event["h"])
        return zip(hashes, event["ids"], strict=True)

    def _decode_sending(self, event: Mapping[str, Any]) -> Iterable[bytes]:
        if "p" in event:
            return (id_hash(tracking_id) for tracking_id in self._part_lines(event["p"]))
        return _split_hashes(event["h"])

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
            event = {"b": number, "s": IN_FLIGHT, "h": _join_hashes(tracking_ids)}
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
        events = list(_inline_ids(sent))
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


#: How long an event may wait for others to share its write when nobody waits for it.
LINGER_SECONDS = 0.5


class _Writer:
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
                for entry in _entries([event for _, event in batch]):
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


def _entries(events: list[dict[str, Any]]) -> Iterable[list[dict[str, Any]]]:
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


def _join_hashes(tracking_ids: Iterable[str]) -> str:
    return base64.b64encode(b"".join(id_hash(t) for t in tracking_ids)).decode()


def _split_hashes(text: str) -> list[bytes]:
    packed = base64.b64decode(text)
    return [packed[i : i + DIGEST_BYTES] for i in range(0, len(packed), DIGEST_BYTES)]


def _inline_ids(sent: Sequence[SentMessage]) -> Iterable[dict[str, Any]]:
    """The compact inline form: digest + UUID bytes when every id is a canonical UUID (the
    service's documented form: 43 KB of base64 for 1,000 messages), else the digests and
    the ids as text, in as many events as keep each under the value limit."""
    try:
        packed = b"".join(id_hash(s.tracking_id) + _uuid_bytes(s.message_id) for s in sent)
    except ValueError:
        pass
    else:
        yield {"u": base64.b64encode(packed).decode()}
        return
    chunk: list[SentMessage] = []
    size = 0
    for message in sent:
        cost = len(json.dumps(message.message_id)) + 25  # its text, a comma, its digest
        if chunk and size + cost > MAX_VALUE_BYTES * 3 // 4:
            yield _text_ids(chunk)
            chunk, size = [], 0
        chunk.append(message)
        size += cost
    if chunk:
        yield _text_ids(chunk)


def _text_ids(sent: Sequence[SentMessage]) -> dict[str, Any]:
    return {"h": _join_hashes(s.tracking_id for s in sent), "ids": [s.message_id for s in sent]}


def _uuid_bytes(message_id: str) -> bytes:
    value = uuid.UUID(message_id)
    if str(value) != message_id:  # only what decodes back to the same text
        raise ValueError(message_id)
    return value.bytes
