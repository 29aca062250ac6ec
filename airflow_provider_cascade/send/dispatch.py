"""The dispatcher: batches to the service with bounded concurrency, each one's fate kept
in the ledger, outcomes handed on in the order the batches came.

This is the one place that keeps the ledger's invariants
(:mod:`~airflow_provider_cascade.send.ledger`): a batch an earlier try had accepted is not
sent again; with ``on_uncertain="skip"`` a batch's in-flight record is durable before its
request leaves, and one an earlier try left in doubt is never re-sent; and at most
``max_in_flight`` batches are at risk at once (in flight, or answered with their record not
yet durable: invariant 3, kept by :meth:`Dispatcher._make_room`).

A dry run dispatches nothing: :class:`DryRun` counts what would go (the forecast).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

from airflow_provider_cascade.exceptions import CascadeBatchInDoubtError, CascadeError
from airflow_provider_cascade.messages import CascadeMessage, Route, SentMessage
from airflow_provider_cascade.results import ScheduledMessage, sent_lines
from airflow_provider_cascade.send.forecast import CampaignForecast
from airflow_provider_cascade.send.guardrails.base import Batch, Log
from airflow_provider_cascade.send.ledger import IN_DOUBT, NOT_SENT, SendLedger
from airflow_provider_cascade.send.settings import CampaignSettings

__all__ = ["BatchSender", "Dispatch", "Dispatcher", "DryRun", "Settled"]

Accepted = SentMessage | ScheduledMessage


class BatchSender(Protocol):
    """Sends one batch in one request (``CascadeHook``); raises a ``CascadeError`` when not."""

    def send_batch(self, batch: Sequence[CascadeMessage], route: Route) -> list[SentMessage]: ...


@dataclass
class Settled:
    """One batch's outcome: what the service holds of it (accepted by an earlier try or
    now, with each one's source key), whether a request went out, and the tracking ids
    left in doubt and not re-sent (``on_uncertain="skip"``)."""

    accepted: list[Accepted] = field(default_factory=list)
    keys: list[Any] = field(default_factory=list)
    requests: int = 0
    in_doubt: list[str] = field(default_factory=list)
    #: ``accepted`` as JSON lines, when they were made for the batch's part object.
    lines: str | None = None


OnSettled = Callable[[Settled], None]


class Dispatch(Protocol):
    """Where checked batches go: the service (:class:`Dispatcher`) or a forecast."""

    def send(self, batch: Batch) -> None: ...
    def drain(self) -> None: ...
    def drain_after_error(self) -> None: ...
    def close(self) -> None: ...


@dataclass
class _Pending:
    """A batch handed to send(): what earlier tries settled, and its request if any."""

    settled: Settled = field(default_factory=Settled)
    batch: list[CascadeMessage] = field(default_factory=list)
    batch_keys: list[Any] = field(default_factory=list)
    scheduled: bool = False  # a message of the batch has scheduled_sent
    number: int | None = None
    future: Future[tuple[list[SentMessage], int, str | None]] | None = None

    def answered(self) -> bool:
        return self.future is None or self.future.done()


class Dispatcher:
    """Sends batches, up to ``max_in_flight`` at once on a thread pool.

    :param on_settled: called with each batch's :class:`Settled`, in the order the batches
        were given (write-back and the result keep the source's order); what it raises
        stops the send.
    """

    def __init__(
        self,
        sender: BatchSender,
        ledger: SendLedger,
        settings: CampaignSettings,
        log: Log,
        on_settled: OnSettled,
    ) -> None:
        self.sender = sender
        self.ledger = ledger
        self.route = settings.route
        self.max_in_flight = settings.max_in_flight
        self.at_most_once = not settings.resend_uncertain
        self.log = log
        self.on_settled = on_settled
        self._in_flight: deque[_Pending] = deque()
        self._unsettled: deque[int] = deque()  # ledger tickets of answered batches
        self._pool = ThreadPoolExecutor(self.max_in_flight, thread_name_prefix="cascade")

    def send(self, batch: Batch) -> None:
        """Send the messages of a batch that earlier tries did not settle."""
        if not batch.messages:
            return
        pending = _Pending()
        settled = pending.settled
        ledger = self.ledger
        if not ledger.resumed:  # no earlier try: every message goes (a fresh send's hot path)
            pending.batch, pending.batch_keys = batch.messages, batch.keys
            pending.scheduled = any(m.scheduled_sent is not None for m in batch.messages)
        for message, key in zip(*_earlier_tries(batch, ledger.resumed), strict=True):
            message_id = ledger.accepted_id(message.tracking_id)
            if message_id is not None:
                settled.accepted.append(_accepted(message_id, message))
                settled.keys.append(key)
            elif self.at_most_once and ledger.was_uncertain(message.tracking_id):
                settled.in_doubt.append(message.tracking_id)
            else:
                pending.batch.append(message)
                pending.batch_keys.append(key)
                pending.scheduled = pending.scheduled or message.scheduled_sent is not None
        if settled.accepted:
            self.log.info(
                "%d message(s) were accepted by an earlier try: not sent again",
                len(settled.accepted),
            )
        if settled.in_doubt:
            self.log.warning(
                "Not re-sending %d message(s) left in doubt by an earlier try "
                "(on_uncertain='skip'): %s",
                len(settled.in_doubt),
                ", ".join(settled.in_doubt),
            )
        self._make_room()
        if pending.batch:
            pending.number = ledger.begin()
            pending.future = self._pool.submit(self._send_one, pending.number, pending.batch)
        self._in_flight.append(pending)

    def _make_room(self) -> None:
        """Keep the batches at risk (in flight, or answered with their record not yet
        durable) under ``max_in_flight``: the ledger's invariant 3. Answered batches are
        taken first, so that one write of the ledger settles all of them."""
        unsettled, in_flight = self._unsettled, self._in_flight
        while True:
            while in_flight and in_flight[0].answered():
                self._complete(in_flight.popleft())
            while unsettled and self.ledger.is_durable(unsettled[0]):
                unsettled.popleft()
            if len(in_flight) + len(unsettled) < self.max_in_flight:
                return
            if unsettled:
                self.ledger.wait(unsettled.popleft())
            else:
                self._complete(in_flight.popleft())

    def _send_one(
        self, number: int, batch: list[CascadeMessage]
    ) -> tuple[list[SentMessage], int, str | None]:
        """One batch, in a pool thread: record it in flight if at-most-once (and wait for
        that), send it, write its part object where there is one, and hand its record to
        the ledger at once (so the next write carries every batch answered meanwhile).

        :return: the accepted messages, the ticket of their record, and their JSON lines
            when the part object needed them (the result's spool reuses them).
        """
        if self.at_most_once:
            self.ledger.wait(self.ledger.mark_sending(number, [m.tracking_id for m in batch]))
        sent = self.sender.send_batch(batch, self.route)
        lines = sent_lines(sent) if self.ledger.parts is not None else None
        try:
            part = self.ledger.accepted_part(number, sent, lines)
        except Exception as error:  # the ids then go inline: never lose an accepted batch
            self.log.warning(
                "Could not write batch %d's part object (%s); recording it inline", number, error
            )
            part = None
        return sent, self.ledger.accept(number, sent, part), lines

    def _complete(self, pending: _Pending) -> None:
        """Hand one batch's outcome on, as the service and the ledger left it."""
        settled = pending.settled
        sent, lines = self._outcome(pending)
        if sent:
            if not settled.accepted and not pending.scheduled:
                settled.lines = lines  # the very entries of the result
            if pending.scheduled:  # the result says when each scheduled one is due
                settled.accepted.extend(
                    _accepted(s.message_id, m) for s, m in zip(sent, pending.batch, strict=True)
                )
            else:
                settled.accepted.extend(sent)
            settled.keys.extend(pending.batch_keys[: len(sent)])
        if pending.batch:
            settled.requests = 1
        self.on_settled(settled)

    def _outcome(self, pending: _Pending) -> tuple[list[SentMessage], str | None]:
        if pending.future is None or pending.number is None:
            return [], None
        number = pending.number
        try:
            sent, ticket, lines = pending.future.result()
        except CascadeBatchInDoubtError as error:
            if not self.at_most_once:
                raise  # the retry sends it again: nothing to record
            self.ledger.finish(number, IN_DOUBT)
            pending.settled.in_doubt.extend(error.tracking_ids)
            self.log.warning(
                "Not re-sending %d message(s) in doubt (on_uncertain='skip'): %s",
                len(error.tracking_ids),
                ", ".join(error.tracking_ids),
            )
            return [], None
        except CascadeError:
            if self.at_most_once:
                self.ledger.finish(number, NOT_SENT)
            raise
        # Anything else leaves an at-most-once batch recorded in flight: a retry treats it
        # as in doubt.
        if ticket:
            self._unsettled.append(ticket)
        return sent, lines

    def drain(self) -> None:
        """Wait for every batch in flight and make the ledger durable."""
        while self._in_flight:
            self._complete(self._in_flight.popleft())
        self.ledger.close()

    def drain_after_error(self) -> None:
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

    def close(self) -> None:
        self._pool.shutdown(wait=True)


class DryRun:
    """Sends nothing: counts what would go (:class:`~airflow_provider_cascade.send.
    forecast.CampaignForecast`) and settles each batch at once, without a message id."""

    def __init__(self, on_settled: OnSettled) -> None:
        self.forecast = CampaignForecast()
        self.on_settled = on_settled

    def send(self, batch: Batch) -> None:
        if batch.messages:
            self.forecast.add(batch.messages)
            accepted: list[Accepted] = [SentMessage("", m.tracking_id) for m in batch.messages]
            self.on_settled(Settled(accepted, list(batch.keys), requests=1))

    def drain(self) -> None:
        """Nothing is in flight."""

    def drain_after_error(self) -> None:
        """Nothing is in flight."""

    def close(self) -> None:
        """Nothing to release."""


def _earlier_tries(batch: Batch, resumed: bool) -> tuple[list[CascadeMessage], list[Any]]:
    """The messages (and keys) to look up in what earlier tries did: none on a first try."""
    return (batch.messages, batch.keys) if resumed else ([], [])


def _accepted(message_id: str, message: CascadeMessage) -> Accepted:
    if message.scheduled_sent is None:
        return SentMessage(message_id, message.tracking_id)
    return ScheduledMessage(message_id, message.tracking_id, message.scheduled_sent)
