"""The one send loop: validate each batch, skip what earlier tries sent, record progress,
send with bounded concurrency, write back, and build the result.

Everything that sends many messages goes through :class:`Campaign`: the operator (a
``messages=`` list or a streamed SQL query, with the task state store as its ledger) and
:func:`send_messages` (plain Python, an in-memory ledger); the notifier's few pages go
straight to the hook. It is typed against two small protocols (:class:`BatchSender`,
:class:`~airflow_provider_cascade.sources.Source`), so tests drive it without Airflow.
"""

from __future__ import annotations

import gc
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Protocol, cast

from airflow_provider_cascade.constants import DEFAULT_CONN_ID, MAX_BATCH_SIZE, MAX_SCHEDULE_AHEAD
from airflow_provider_cascade.exceptions import (
    CascadeBatchInDoubtError,
    CascadeError,
    CascadeGuardrailError,
    CascadeValidationError,
    CascadeWriteBackError,
    Problem,
)
from airflow_provider_cascade.first_seen import FirstSeen
from airflow_provider_cascade.forecast import CampaignForecast
from airflow_provider_cascade.ledger import IN_DOUBT, NOT_SENT, SendLedger
from airflow_provider_cascade.messages import (
    CascadeMessage,
    MessageType,
    Route,
    SentMessage,
    check_messages,
)
from airflow_provider_cascade.results import CascadeSendResult, ResultSpool, ScheduledMessage
from airflow_provider_cascade.settings import CampaignSettings, OnInvalid, OnUncertain
from airflow_provider_cascade.sources import ListSource, RawBatch, Source

if TYPE_CHECKING:
    from airflow_provider_cascade.quiet_hours import QuietHours
    from airflow_provider_cascade.suppression import PhoneSet

__all__ = [
    "BatchSender",
    "Campaign",
    "CampaignSettings",
    "OnInvalid",
    "OnUncertain",
    "WriteBack",
    "send_messages",
]

#: Each message type's index, for a dedupe key of number and type in one integer.
_TYPE_INDEX = {kind: index for index, kind in enumerate(MessageType)}
#: The most points the result's timeline keeps.
TIMELINE_POINTS = 100
#: The rejection brake looks at the share only once this many messages were checked.
BRAKE_AFTER = 100

WriteBack = Callable[[Sequence[Mapping[str, Any]]], None]


class BatchSender(Protocol):
    """Sends one batch in one request (``CascadeHook``); raises a ``CascadeError`` when not."""

    def send_batch(self, batch: Sequence[CascadeMessage], route: Route) -> list[SentMessage]: ...


class Log(Protocol):
    """A logger: the stdlib's, or Airflow's structlog one."""

    def info(self, event: str, *args: Any) -> Any: ...
    def warning(self, event: str, *args: Any) -> Any: ...
    def error(self, event: str, *args: Any) -> Any: ...


class Campaign:
    """One send of many batches.

    :param sender: sends one batch per request.
    :param ledger: what earlier tries sent; records this try's progress.
    :param settings: how to send.
    :param write_back: called after each batch with one row per message the service holds
        (``message_id``, ``tracking_id`` as the source gave it, ``sent_at``).
    :param suppression: numbers never to send to (``suppress_sql``, ``suppress_phones``).
    """

    def __init__(
        self,
        sender: BatchSender,
        ledger: SendLedger,
        settings: CampaignSettings,
        log: Log,
        *,
        write_back: WriteBack | None = None,
        suppression: PhoneSet | None = None,
    ) -> None:
        self.sender = sender
        self.suppression = suppression
        self.ledger = ledger
        self.settings = settings
        self.log = log
        self.write_back = write_back
        self.result = CascadeSendResult(route=settings.route.value, dry_run=settings.dry_run)
        self._spool: ResultSpool[SentMessage | ScheduledMessage] = ResultSpool(
            _sent_json, settings.xcom_inline_limit
        )
        self._seen: set[str] = set()
        self._seen_count = 0  # messages checked so far, for the rejection brake
        # dedupe: the recipient (the E.164 number as an integer, times 4 plus the type's
        # index with "phone_and_type": exact, stable across processes) -> first tracking id
        self._first_to = FirstSeen()
        # What the guardrails left out (suppressed, duplicate, held), one entry each: in
        # memory up to the inline limit, then on disk, then inline or after the messages in
        # results_path, like the messages themselves.
        self._left_out: ResultSpool[dict[str, Any]] = ResultSpool(dict, settings.xcom_inline_limit)
        self._guarded = (
            suppression is not None
            or settings.dedupe is not None
            or settings.quiet_hours is not None
        )
        self._forecast = CampaignForecast() if settings.dry_run else None
        self._progress = _Progress(log, None, settings.progress_interval)
        self._in_flight: deque[_Pending] = deque()
        self._unsettled: deque[int] = deque()  # ledger tickets of answered batches
        self._pool = ThreadPoolExecutor(settings.max_in_flight, thread_name_prefix="cascade")
        # Accepted messages a failed write-back left unmarked, and why it failed.
        self._unmarked: list[SentMessage | ScheduledMessage] = []
        self._write_back_error = ""

    @property
    def accepted(self) -> list[SentMessage]:
        """What the service accepted so far, in send order (while it is held in memory)."""
        return [SentMessage(s.message_id, s.tracking_id) for s in self._spool.held or ()]

    def check(self, raw: RawBatch, source_keys: list[Any] | None = None) -> list[CascadeMessage]:
        """Validate a batch; invalid messages fail the send or are recorded as rejected."""
        if raw.checked:
            messages = cast(list[CascadeMessage], list(raw.items))
            if source_keys is not None:
                source_keys.extend(message.tracking_id for message in messages)
            return messages
        messages, problems = check_messages(
            raw.items,
            label=raw.label,
            start=raw.start,
            defaults=self.settings.defaults,
            recommended_ttl=self.settings.recommended_ttl,
            seen=self._seen,
            spelling=raw.spelling,
            source_keys=source_keys,
        )
        if self._guarded:
            messages = self._guard(messages, source_keys, problems)
        if problems:
            if self.settings.on_invalid == "fail":
                if self.result.sent:
                    self.log.error(
                        "Stopping before an invalid batch; %d message(s) of earlier batches "
                        "were already sent",
                        self.result.sent,
                    )
                raise CascadeValidationError(problems)
            self.result.rejected.extend(problem.to_json() for problem in problems)
            self.log.warning("Skipped %d invalid message(s): %s", len(problems), problems[0])
        self._seen_count += len(raw.items)
        self._brake()
        return messages

    def _guard(
        self,
        messages: list[CascadeMessage],
        source_keys: list[Any] | None,
        problems: list[Problem],
    ) -> list[CascadeMessage]:
        """The recipient's rules, in one pass: suppression, then ``dedupe``, then quiet
        hours. What they leave out is listed in the result, never sent, never written back.

        Duplicates keep the first message to each number (and type), remembered by the
        number as an integer (exact, the same in every process); a retry reads the source
        in the same order and finds the same duplicates. A message moved out of quiet hours
        gets its new ``scheduled_sent``; one moved past the 30-day limit is a problem like
        any other.
        """
        suppression, quiet = self.suppression, self.settings.quiet_hours
        dedupe = self.settings.dedupe
        by_type = dedupe == "phone_and_type"
        now = datetime.now(timezone.utc).replace(microsecond=0)
        kept: list[CascadeMessage] = []
        kept_keys: list[Any] = []
        keys = source_keys if source_keys is not None else [None] * len(messages)
        result = self.result
        before = (result.suppressed, result.duplicate_count, result.held_count)
        for message, key in zip(messages, keys, strict=True):
            if suppression is not None and int(message.to_phone[1:]) in suppression:
                result.suppressed += 1
                self._leave_out(message.tracking_id, suppressed=True)
                continue
            if dedupe is not None:
                recipient = int(message.to_phone[1:])
                if by_type:
                    recipient = recipient * 4 + _TYPE_INDEX[message.message_type]
                first = self._first_to.first(recipient, message.tracking_id)
                if first != message.tracking_id:
                    result.duplicate_count += 1
                    self._leave_out(message.tracking_id, duplicate_of=first)
                    continue
            if quiet is not None and quiet.applies_to(message.message_type):
                placed = self._outside_quiet_hours(quiet, message, now, problems)
                if placed is None:
                    continue
                message = placed
            kept.append(message)
            kept_keys.append(key)
        if source_keys is not None:
            source_keys[:] = kept_keys
        suppressed = result.suppressed - before[0]
        duplicates = result.duplicate_count - before[1]
        held = result.held_count - before[2]
        if suppressed or duplicates or held:
            self.log.info(
                "Not sending %d suppressed, %d duplicate (dedupe=%r) and %d held message(s)",
                suppressed,
                duplicates,
                dedupe,
                held,
            )
        return kept

    def _leave_out(self, tracking_id: str, **why: Any) -> None:
        self._left_out.extend([{"message_id": None, "tracking_id": tracking_id, **why}])

    def _hold(self, tracking_id: str, reason: str) -> None:
        self.result.held_count += 1
        self._leave_out(tracking_id, held=reason)

    def _outside_quiet_hours(
        self,
        quiet: QuietHours,
        message: CascadeMessage,
        now: datetime,
        problems: list[Problem],
    ) -> CascadeMessage | None:
        """The message as it may go (moved to the window's end), or None: held or rejected."""
        due = _utc(message.scheduled_sent) if message.scheduled_sent else now
        placement = quiet.place(message.to_phone, due)
        if placement.due is None:
            self._hold(message.tracking_id, str(placement.reason))
            return None
        if placement.due == due:
            return message
        until = _iso(placement.due)
        if quiet.policy == "skip":
            self._hold(
                message.tracking_id,
                f"inside quiet hours {quiet.label} in the recipient's zone until {until}",
            )
            return None
        if placement.due > now + MAX_SCHEDULE_AHEAD:
            problems.append(
                Problem(
                    message.tracking_id,
                    "scheduled_sent",
                    f"quiet hours {quiet.label} move it to {until}, more than 30 days ahead",
                    "INVALID_SCHEDULED_SENT",
                )
            )
            return None
        self.result.rescheduled += 1
        return message._replace(scheduled_sent=until)

    def _brake(self) -> None:
        """``max_reject_ratio``: stop once more than that share of the messages seen so far
        (after at least :data:`BRAKE_AFTER`) were rejected."""
        limit = self.settings.max_reject_ratio
        seen = self._seen_count
        if limit is None or seen < BRAKE_AFTER:
            return
        ratio = len(self.result.rejected) / seen
        if ratio > limit:
            raise CascadeGuardrailError(
                f"{len(self.result.rejected)} of the first {seen} messages were rejected "
                f"({ratio:.1%}), more than max_reject_ratio={limit:.1%}: stopping; the "
                f"{self.result.sent} sent before stay sent and recorded. First problem: "
                f"{self.result.rejected[0]['ref']}: {self.result.rejected[0]['field']} "
                f"{self.result.rejected[0]['rule']}"
            )

    def _check_size(self, source: Source) -> None:
        """``max_messages``: count the source before anything is sent."""
        cap = self.settings.max_messages
        if cap is None:
            return
        count = source.total if source.total is not None else source.count()
        self.result.counted = count
        if count <= cap:
            return
        if self.settings.dry_run:
            self.log.warning(
                "A real send would stop here: %d messages, max_messages=%d", count, cap
            )
            return
        raise CascadeGuardrailError(
            f"the source holds {count} messages, more than max_messages={cap}: nothing was "
            "sent (check the query's WHERE, or raise max_messages)"
        )

    def send(
        self, messages: Sequence[CascadeMessage], source_keys: Sequence[Any] | None = None
    ) -> None:
        """Send the valid messages of one batch (those earlier tries did not settle).

        Up to ``max_in_flight`` requests run at once; their outcomes are recorded in the
        order the batches came, so write-back and the result keep the source's order.

        :param source_keys: each message's tracking id as the source gave it, for write-back.
        """
        if not messages:
            return
        if self._forecast is not None:
            self._forecast.add(messages)
            self._spool.extend([SentMessage("", m.tracking_id) for m in messages])
            self._count(len(messages), batches=1)
            return

        pending = _Pending()
        keys = source_keys if source_keys is not None else [None] * len(messages)
        ledger = self.ledger
        held_back: list[str] = []
        for message, key in zip(messages, keys, strict=True):
            message_id = ledger.accepted_id(message.tracking_id)
            if message_id is not None:
                pending.held.append(_sent(message_id, message))
                pending.held_keys.append(key)
            elif self._at_most_once and ledger.was_uncertain(message.tracking_id):
                held_back.append(message.tracking_id)
            else:
                pending.batch.append(message)
                pending.batch_keys.append(key)
                pending.scheduled = pending.scheduled or message.scheduled_sent is not None
        if pending.held:
            self.log.info(
                "%d message(s) were accepted by an earlier try: not sent again",
                len(pending.held),
            )
        if held_back:
            self.result.in_doubt.extend(held_back)
            self.log.warning(
                "Not re-sending %d message(s) left in doubt by an earlier try "
                "(on_uncertain='skip'): %s",
                len(held_back),
                ", ".join(held_back),
            )
        self._make_room()
        if pending.batch:
            pending.number = ledger.begin()
            pending.future = self._pool.submit(self._send_one, pending.number, pending.batch)
        self._in_flight.append(pending)

    @property
    def _at_most_once(self) -> bool:
        return not self.settings.resend_uncertain

    def _make_room(self) -> None:
        """Keep the batches at risk (in flight, or answered with their record not yet
        durable) under ``max_in_flight``: the ledger's invariant 3. Answered batches are
        taken first, so that one write of the ledger settles all of them."""
        unsettled, in_flight = self._unsettled, self._in_flight
        while True:
            while in_flight and _answered(in_flight[0]):
                self._complete(in_flight.popleft())
            while unsettled and self.ledger.is_durable(unsettled[0]):
                unsettled.popleft()
            if len(in_flight) + len(unsettled) < self.settings.max_in_flight:
                return
            if unsettled:
                self.ledger.wait(unsettled.popleft())
            else:
                self._complete(in_flight.popleft())

    def _send_one(self, number: int, batch: list[CascadeMessage]) -> tuple[list[SentMessage], int]:
        """One batch, in a pool thread: record it in flight if at-most-once (and wait for
        that), send it, write its part object where there is one, and hand its record to
        the ledger at once (so the next write carries every batch answered meanwhile).

        :return: the accepted messages and the ticket of their record.
        """
        if self._at_most_once:
            self.ledger.wait(self.ledger.mark_sending(number, [m.tracking_id for m in batch]))
        sent = self.sender.send_batch(batch, self.settings.route)
        try:
            part = self.ledger.accepted_part(number, sent)
        except Exception as error:  # the ids then go inline: never lose an accepted batch
            self.log.warning(
                "Could not write batch %d's part object (%s); recording it inline", number, error
            )
            part = None
        return sent, self.ledger.accept(number, sent, part)

    def _complete(self, pending: _Pending) -> None:
        """Record one batch's outcome: ledger, result, write-back, progress."""
        sent = self._outcome(pending)
        accepted: list[SentMessage | ScheduledMessage] = list(sent)
        if sent and pending.scheduled:  # the result says when each scheduled one is due
            accepted = [_sent(s.message_id, m) for s, m in zip(sent, pending.batch, strict=True)]
        held = pending.held + accepted
        self._spool.extend(held)
        self._count(len(held), batches=1 if pending.batch else 0)
        if held and self.write_back is not None:
            if self._unmarked:  # the write-back failed already: nothing more is tried
                self._unmarked.extend(held)
                return
            keys = pending.held_keys + pending.batch_keys[: len(sent)]
            try:
                self.write_back(_write_back_rows(held, keys))
            except Exception as error:
                self._unmarked.extend(held)
                self._write_back_error = f"{type(error).__name__}: {_first_line(error)}"
                raise CascadeWriteBackError(self._write_back_error, unmarked=held) from error

    def _write_back_failure(self) -> CascadeWriteBackError:
        """What to say when accepted messages could not be written back: how many, where
        their ids are, and what a retry does."""
        unmarked = self._unmarked
        self.log.error(
            "Accepted and not written back (tracking id -> message id): %s",
            ", ".join(f"{m.tracking_id} -> {m.message_id}" for m in unmarked),
        )
        if self.ledger.durable:
            retry = (
                "they are recorded in this task's progress (the task state store), so a retry "
                "of this task marks them without sending them again, while a new DAG run would "
                "select them again and send them twice"
            )
        else:
            retry = (
                "this send keeps no durable progress (Airflow before 3.3, or durable=False): a "
                "retry would send them again, so mark them from the ids logged above first"
            )
        return CascadeWriteBackError(
            f"mark_sent_sql failed ({self._write_back_error}) after the service accepted "
            f"{len(unmarked)} message(s) that are not marked; the send stopped at once "
            f"({self.result.sent} accepted in all). Their ids are in the task log above and "
            f"in the error's 'unmarked'; {retry}",
            unmarked=unmarked,
        )

    def _outcome(self, pending: _Pending) -> list[SentMessage]:
        if pending.future is None or pending.number is None:
            return []
        number = pending.number
        try:
            sent, ticket = pending.future.result()
        except CascadeBatchInDoubtError as error:
            if not self._at_most_once:
                raise  # the retry sends it again: nothing to record
            self.ledger.finish(number, IN_DOUBT)
            self.result.in_doubt.extend(error.tracking_ids)
            self.log.warning(
                "Not re-sending %d message(s) in doubt (on_uncertain='skip'): %s",
                len(error.tracking_ids),
                ", ".join(error.tracking_ids),
            )
            return []
        except CascadeError:
            if self._at_most_once:
                self.ledger.finish(number, NOT_SENT)
            raise
        # Anything else leaves an at-most-once batch recorded in flight: a retry treats it
        # as in doubt.
        if ticket:
            self._unsettled.append(ticket)
        return sent

    def _drain(self) -> None:
        while self._in_flight:
            self._complete(self._in_flight.popleft())
        self.ledger.close()

    def _drain_after_error(self) -> None:
        """Record what the batches still in flight did, so that none is left unknown."""
        while self._in_flight:
            try:
                self._complete(self._in_flight.popleft())
            except Exception as other:  # the first error is the one raised
                self.log.error("Another batch failed too: %s", other)
        try:
            self.ledger.close()
        except CascadeError as other:
            self.log.error("%s", other)

    @property
    def _inline_only(self) -> bool:
        """Every id must fit the XCom: no ``results_path`` to offload to, and no outbox
        (``write_back``) that holds them."""
        limit = self.settings.xcom_inline_limit
        return limit is not None and not self.settings.results_path and self.write_back is None

    def _check_fits_inline(self, source: Source) -> None:
        """A send whose ids can only go inline fails before the first request when the
        source holds more than ``xcom_inline_limit`` (counted as ``max_messages`` counts)."""
        if not self._inline_only:
            return
        limit = self.settings.xcom_inline_limit
        assert limit is not None
        count = self.result.counted
        if count is None:
            count = source.total if source.total is not None else source.count()
        if count > limit:
            raise CascadeGuardrailError(
                f"the source holds {count} messages, more than xcom_inline_limit={limit} "
                "whose ids fit the XCom; nothing was sent: set results_path (e.g. "
                "'s3://bucket/cascade/{{ run_id }}.jsonl' or a file:// URI) so their ids are "
                "written there, or mark_sent_sql so the outbox holds them"
            )

    def _count(self, messages: int, batches: int) -> None:
        self.result.sent += messages
        self.result.batches += batches
        self._progress.update(self.result.sent)
        timeline = self.result.timeline
        timeline.append([round(time.monotonic() - self._progress.started, 3), self.result.sent])
        if len(timeline) > TIMELINE_POINTS:  # every other point, the first and last kept
            timeline[:] = [*timeline[:-1:2], timeline[-1]]

    def _finish(self) -> CascadeSendResult:
        """The result: ids inline up to the limit, else written to ``results_path``."""
        limit = self.settings.xcom_inline_limit
        entries = self._spool.count + self._left_out.count
        if limit is not None and entries > limit and self.settings.results_path:
            # What the guardrails left out follows the messages in the same file (no
            # message id; "suppressed", "duplicate_of" or "held" says why).
            self.result.results_path = self._spool.offload(
                self.settings.results_path, then=self._left_out
            )
            self.result.suppressed_ids = self.result.duplicates = self.result.held = None
            if self.ledger.parts is not None:
                # The results file holds every id now; a retry that finds a part gone reads it.
                self.ledger.parts.remove()
        else:
            # Past the limit without results_path only when the outbox holds every id.
            self.result.messages = self._spool.inline(limit)
            self.result.take_left_out(self._left_out.inline(limit))
            self.result.truncated = limit is not None and entries > limit
            if self.result.truncated:
                self.log.warning(
                    "%d message(s) are more than xcom_inline_limit=%d and there is no "
                    "results_path: the outbox (mark_sent_sql) holds every message id, the "
                    "XCom the counts and the first %d. A delivery wait on this send then needs "
                    "message_ids= read from the outbox, or a results_path on the send",
                    entries,
                    limit,
                    limit,
                )
        if self._forecast is not None:
            self.result.forecast = self._forecast.to_json(
                scheduled_by_quiet_hours=self.result.rescheduled,
                suppressed=self.result.suppressed,
                duplicates=self.result.duplicate_count,
                held=self.result.held_count,
                rejected=len(self.result.rejected),
            )
        self._progress.done(self.result)
        return self.result

    def run(self, source: Source) -> CascadeSendResult:
        """Send everything ``source`` holds.

        An in-memory list with ``on_invalid="fail"`` is checked whole first: nothing is sent
        from a list known to hold an invalid message.

        :raises CascadeError: as the sender raises it (``accepted`` set to what the service
            took before), or an invalid message with ``on_invalid="fail"``.
        """
        self._progress.total = source.total
        self._check_size(source)
        self._check_fits_inline(source)
        write_back = self.write_back is not None
        spared = _SparedCollector()
        try:
            listed = isinstance(source, ListSource) and not source.checked
            if listed and self.settings.on_invalid == "fail":
                # The whole list is there: its validity is known before sending.
                assert isinstance(source, ListSource)
                checked = self.check(RawBatch("message", 1, source.messages))
                source = ListSource(checked, checked=True)
            for raw in source.batches(self.settings.batch_size):
                keys: list[Any] | None = [] if write_back else None
                self.send(self.check(raw, keys), keys)
            self._drain()
        except BaseException as error:
            self._drain_after_error()
            failure = self._write_back_failure() if self._unmarked else error
            if isinstance(failure, CascadeError):
                failure.accepted = tuple(self.accepted)
            self._spool.close()
            self._left_out.close()
            if failure is error:
                raise
            raise failure from error
        finally:
            self._pool.shutdown(wait=True)
            spared.close()
        try:
            return self._finish()
        finally:
            self._spool.close()
            self._left_out.close()


@dataclass
class _Pending:
    """A batch handed to send(): what earlier tries settled, and its request if any."""

    held: list[SentMessage | ScheduledMessage] = field(default_factory=list)
    held_keys: list[Any] = field(default_factory=list)
    batch: list[CascadeMessage] = field(default_factory=list)
    batch_keys: list[Any] = field(default_factory=list)
    scheduled: bool = False  # a message of the batch has scheduled_sent
    number: int | None = None
    future: Future[tuple[list[SentMessage], int]] | None = None


def _sent(message_id: str, message: CascadeMessage) -> SentMessage | ScheduledMessage:
    if message.scheduled_sent is None:
        return SentMessage(message_id, message.tracking_id)
    return ScheduledMessage(message_id, message.tracking_id, message.scheduled_sent)


def _answered(pending: _Pending) -> bool:
    return pending.future is None or pending.future.done()


class _SparedCollector:
    """Keeps Python's full garbage collections off the objects that existed before the send.

    Measured in a real task run (``benchmarks/throughput.py``, 100,000 messages, a
    ``gc.callbacks`` timer): the send triggers one or two full collections, each walking
    every object of the worker process (Airflow, its API client, the DAG...): 0.55-1.07 s
    in all, 5-10 us a message, more than the send's own validation. Freezing the
    pre-existing objects (``gc.freeze``) makes those collections walk only the send's own.

    Scoped so that it never thaws what it did not freeze: only when nothing is frozen yet
    (a host that freezes objects itself, e.g. before forking workers, is left alone; with
    nothing frozen, ``get_freeze_count`` is instant), and undone when the send ends.
    """

    def __init__(self) -> None:
        self._froze = gc.isenabled() and gc.get_freeze_count() == 0
        if self._froze:
            gc.freeze()

    def close(self) -> None:
        if self._froze:
            gc.unfreeze()
            self._froze = False


def _sent_json(sent: SentMessage | ScheduledMessage) -> dict[str, str | None]:
    entry: dict[str, str | None] = dict(sent.to_json())
    entry["message_id"] = sent.message_id or None  # a dry run has no message id
    return entry


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def _utc(moment: str) -> datetime:
    """A checked ``scheduled_sent`` (``YYYY-MM-DDTHH:MM:SSZ``) as an aware datetime."""
    return datetime.strptime(moment, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_back_rows(
    sent: Sequence[SentMessage | ScheduledMessage], keys: Sequence[Any]
) -> list[dict[str, Any]]:
    sent_at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [
        {
            "message_id": message.message_id,
            # The outbox's own key, as the source gave it (an integer stays an integer).
            "tracking_id": message.tracking_id if key is None else key,
            "sent_at": sent_at,
        }
        for message, key in zip(sent, keys, strict=True)
    ]


class _Progress:
    """A progress line at most every ``interval`` seconds: count, rate, ETA."""

    def __init__(self, log: Log, total: int | None, interval: float) -> None:
        self.log = log
        self.total = total
        self.interval = interval
        self.started = time.monotonic()
        self.last = self.started

    def update(self, sent: int) -> None:
        now = time.monotonic()
        if now - self.last < self.interval:
            return
        self.last = now
        rate = sent / max(now - self.started, 1e-9)
        if self.total:
            eta = (self.total - sent) / rate if rate else float("inf")
            self.log.info(
                "Sent %d/%d messages (%.0f msg/s, ETA %.0f s)", sent, self.total, rate, eta
            )
        else:
            self.log.info("Sent %d messages (%.0f msg/s)", sent, rate)

    def done(self, result: CascadeSendResult) -> None:
        elapsed = time.monotonic() - self.started
        self.log.info(
            "%s %d message(s) in %d request(s) in %.1f s; %d rejected, %d in doubt",
            "Validated (dry run)" if result.dry_run else "Sent",
            result.sent,
            result.batches,
            elapsed,
            len(result.rejected),
            len(result.in_doubt),
        )


def send_messages(
    messages: Iterable[CascadeMessage | Mapping[str, Any]],
    *,
    cascade_conn_id: str = DEFAULT_CONN_ID,
    route: Route | str = Route.STANDARD,
    batch_size: int = MAX_BATCH_SIZE,
    sender: BatchSender | None = None,
    **hook_params: Any,
) -> list[SentMessage]:
    """Send many messages from plain Python (a script, a ``@task``), through the same loop
    as the operator: every message validated first, then batches of ``batch_size``, one
    after another, each paced and retried as :class:`~airflow_provider_cascade.hooks.
    cascade.CascadeHook` does. Progress is remembered in memory only (no task state store:
    use the operator for that).

    :param cascade_conn_id: the ``cascade`` connection.
    :param sender: a hook to send with instead of a new ``CascadeHook(cascade_conn_id,
        **hook_params)`` (which is closed afterwards).
    :param hook_params: :class:`CascadeHook` arguments (``max_retries``, ``timeout``...).
    :return: one :class:`SentMessage` per message, in the order given.
    :raises CascadeValidationError: an invalid message (nothing sent), or a batch the
        service refused with ``400``.
    :raises CascadeAuthError: the credentials were refused.
    :raises CascadeRateLimitError: still ``429`` after every retry.
    :raises CascadeBatchInDoubtError: a batch may or may not have been accepted.
    :raises CascadeServerError: the service could not be reached or kept failing.
    Every error carries ``accepted``: what earlier batches had already delivered.
    """
    settings = CampaignSettings(
        route=Route(route),
        batch_size=batch_size,
        recommended_ttl=False,  # the messages go as given
        max_in_flight=1,
        xcom_inline_limit=None,
    )
    if sender is not None:
        return _send_all(sender, settings, messages, logging.getLogger(__name__))
    from airflow_provider_cascade.hooks.cascade import CascadeHook

    hook = CascadeHook(cascade_conn_id, **hook_params)
    try:
        return _send_all(hook, settings, messages, hook.log)
    finally:
        hook.close()


def _send_all(
    sender: BatchSender,
    settings: CampaignSettings,
    messages: Iterable[CascadeMessage | Mapping[str, Any]],
    log: Log,
) -> list[SentMessage]:
    campaign = Campaign(sender, SendLedger(None), settings, log)
    campaign.run(ListSource(list(messages)))
    return campaign.accepted
