"""The send loop behind the operator: validate each batch, skip what earlier tries sent,
record progress durably, send, write back, and build the result. Plain Python: tests
drive it without Airflow."""

from __future__ import annotations

import gc
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Literal, Protocol

from airflow_provider_cascade.exceptions import (
    CascadeBatchInDoubtError,
    CascadeError,
    CascadeValidationError,
    Problem,
)
from airflow_provider_cascade.hooks.cascade import CascadeHook
from airflow_provider_cascade.ledger import IN_DOUBT, NOT_SENT, SendLedger
from airflow_provider_cascade.messages import CascadeMessage, Route, SentMessage, check_messages
from airflow_provider_cascade.results import CascadeSendResult, ResultSpool
from airflow_provider_cascade.sources import RawBatch

OnInvalid = Literal["fail", "skip"]
OnUncertain = Literal["resend", "skip"]
WriteBack = Callable[[Sequence[Mapping[str, Any]]], None]


class Log(Protocol):
    """A logger: the stdlib's, or Airflow's structlog one."""

    def info(self, event: str, *args: Any) -> Any: ...
    def warning(self, event: str, *args: Any) -> Any: ...
    def error(self, event: str, *args: Any) -> Any: ...


@dataclass
class CampaignSettings:
    """How to send; see :class:`~airflow_provider_cascade.operators.cascade.CascadeSendOperator`."""

    route: Route = Route.STANDARD
    defaults: Mapping[str, Any] = field(default_factory=dict)
    dry_run: bool = False
    on_invalid: OnInvalid = "fail"
    on_uncertain: OnUncertain = "resend"
    xcom_inline_limit: int = 10_000
    results_path: str | None = None
    max_in_flight: int = 8
    progress_interval: float = 5.0


class Campaign:
    """One send of many batches.

    :param hook: sends one batch per request (``send_batch``).
    :param ledger: what earlier tries sent; records this try's progress.
    :param write_back: called after each batch with one row per message the service holds
        (``message_id``, ``tracking_id`` as the source gave it, ``sent_at``).
    :param total: how many messages the source has, when known (for progress and ETA).
    """

    def __init__(
        self,
        hook: CascadeHook,
        ledger: SendLedger,
        settings: CampaignSettings,
        log: Log,
        *,
        write_back: WriteBack | None = None,
        total: int | None = None,
    ) -> None:
        self.hook = hook
        self.ledger = ledger
        self.settings = settings
        self.log = log
        self.write_back = write_back
        self.result = CascadeSendResult(route=settings.route.value, dry_run=settings.dry_run)
        self._spool = ResultSpool()
        self._seen: set[int] = set()
        self._progress = _Progress(log, total, settings.progress_interval)
        self._planned = 0  # messages handed to send(), finished or in flight
        self._in_flight: deque[_Pending] = deque()
        self._pool = ThreadPoolExecutor(settings.max_in_flight, thread_name_prefix="cascade")

    def check(self, raw: RawBatch) -> list[CascadeMessage]:
        """Validate a batch; invalid messages fail the send or are recorded as rejected."""
        messages, problems = check_batch(raw, self.settings, self._seen)
        if problems:
            if self.settings.on_invalid == "fail":
                if self.result.sent:
                    self.log.error(
                        "Stopping before an invalid batch; %d message(s) of earlier batches "
                        "were already sent",
                        self.result.sent,
                    )
                raise CascadeValidationError(problems)
            self.result.rejected.extend(_rejected(p) for p in problems)
            self.log.warning("Skipped %d invalid message(s): %s", len(problems), problems[0])
        return messages

    def send(self, raw: RawBatch, messages: Sequence[CascadeMessage]) -> None:
        """Send the valid messages of one batch (those earlier tries did not settle).

        Up to ``max_in_flight`` requests run at once; their outcomes are recorded in the
        order the batches came, so write-back and the result keep the source's order.
        """
        if not messages:
            return
        self._make_room_for(len(messages))
        self._planned += len(messages)
        if self.settings.dry_run:
            for message in messages:
                self._spool.add({"message_id": None, "tracking_id": message.tracking_id})
            self._count(len(messages), batches=1)
            return

        pending = _Pending(raw)
        for message in messages:
            message_id = self.ledger.accepted.get(message.tracking_id)
            if message_id is not None:
                pending.held.append(SentMessage(message_id, message.tracking_id))
            elif message.tracking_id in self.ledger.uncertain and self.skip_uncertain:
                self.result.in_doubt.append(message.tracking_id)
            else:
                pending.batch.append(message)
        if pending.held:
            self.log.info(
                "%d message(s) were accepted by an earlier try: not sent again",
                len(pending.held),
            )
        # Free a slot first: the finished batch's outcome and this batch's start then
        # reach the state store in one write, before this batch's request leaves.
        while len(self._in_flight) >= self.settings.max_in_flight:
            self._complete(self._in_flight.popleft())
        if pending.batch:
            pending.number = self.ledger.begin(pending.batch)
            self.ledger.flush()
            pending.future = self._pool.submit(
                self.hook.send_batch, pending.batch, self.settings.route
            )
        self._in_flight.append(pending)

    @property
    def skip_uncertain(self) -> bool:
        return self.settings.on_uncertain == "skip"

    def _complete(self, pending: _Pending) -> None:
        """Record one batch's outcome: ledger, result, write-back, progress."""
        held = pending.held + self._outcome(pending)
        self._spool.add_sent(held)
        if held and self.write_back is not None:
            self.write_back(_write_back_rows(pending.raw, held))
        self._count(len(held), batches=1 if pending.batch else 0)

    def _outcome(self, pending: _Pending) -> list[SentMessage]:
        if pending.future is None or pending.number is None:
            return []
        batch, number = pending.batch, pending.number
        try:
            sent = pending.future.result()
        except CascadeBatchInDoubtError as error:
            self.ledger.finish(number, batch, IN_DOUBT)
            if not self.skip_uncertain:
                raise CascadeBatchInDoubtError(
                    f"{error.reason}; a retry of this task sends it again (on_uncertain='resend')",
                    tracking_ids=error.tracking_ids,
                    status=error.status,
                ) from error
            self.result.in_doubt.extend(error.tracking_ids)
            self.log.warning(
                "Not re-sending %d message(s) in doubt (on_uncertain='skip'): %s",
                len(error.tracking_ids),
                ", ".join(error.tracking_ids),
            )
            return []
        except CascadeError:
            self.ledger.finish(number, batch, NOT_SENT)
            raise
        # Anything else leaves the batch recorded in flight: a retry treats it as in doubt.
        self.ledger.accept(number, sent)
        return sent

    def _drain(self) -> None:
        while self._in_flight:
            self._complete(self._in_flight.popleft())
        self.ledger.flush()

    def _drain_after_error(self) -> None:
        """Record what the batches still in flight did, so that none is left unknown."""
        while self._in_flight:
            try:
                self._complete(self._in_flight.popleft())
            except Exception as other:  # the first error is the one raised
                self.log.error("Another batch failed too: %s", other)
        self.ledger.flush()

    def _make_room_for(self, count: int) -> None:
        limit = self.settings.xcom_inline_limit
        if self.settings.results_path is None and self._planned + count > limit:
            raise CascadeError(
                f"this send holds more than xcom_inline_limit={limit} messages: set "
                "results_path (e.g. 's3://bucket/cascade/{{ run_id }}.jsonl' or a file:// URI) "
                f"so their ids are written there; {self._planned} were sent so far"
            )

    def _count(self, messages: int, batches: int) -> None:
        self.result.sent += messages
        self.result.batches += batches
        self._progress.update(self.result.sent)

    def finish(self) -> CascadeSendResult:
        """The result: ids inline up to the limit, else written to ``results_path``."""
        try:
            if self._spool.count > self.settings.xcom_inline_limit and self.settings.results_path:
                self.result.results_path = self._spool.offload(self.settings.results_path)
            else:
                self.result.messages = self._spool.inline()
        finally:
            self._spool.close()
        self._progress.done(self.result)
        return self.result

    def run(self, batches: Iterable[RawBatch]) -> CascadeSendResult:
        # The objects that exist before the send (Airflow, its modules, the DAG) are old and
        # many; freezing them keeps the collector's full passes, which a large send triggers
        # again and again, to what the send itself allocates. Undone when the send ends.
        gc.freeze()
        try:
            for raw in batches:
                self.send(raw, self.check(raw))
            self._drain()
        except BaseException:
            self._drain_after_error()
            self._spool.close()
            raise
        finally:
            self._pool.shutdown(wait=True)
            gc.unfreeze()
        return self.finish()


@dataclass
class _Pending:
    """A batch handed to send(): what earlier tries settled, and its request if any."""

    raw: RawBatch
    held: list[SentMessage] = field(default_factory=list)
    batch: list[CascadeMessage] = field(default_factory=list)
    number: int | None = None
    future: Future[list[SentMessage]] | None = None


def check_batch(
    raw: RawBatch, settings: CampaignSettings, seen: set[int] | None = None
) -> tuple[list[CascadeMessage], list[Problem]]:
    """Validate ``raw`` with the send's defaults (and the type's recommended ttl)."""
    return check_messages(
        raw.items,
        label=raw.label,
        start=raw.start,
        defaults=settings.defaults,
        recommended_ttl=True,
        seen=seen,
    )


def _rejected(problem: Problem) -> dict[str, Any]:
    return {"ref": problem.ref, "field": problem.field, "rule": problem.rule, "code": problem.code}


def _write_back_rows(raw: RawBatch, held: Sequence[SentMessage]) -> list[dict[str, Any]]:
    # The outbox's own key, as the source gave it (an integer stays an integer).
    source_ids = {}
    for item in raw.items:
        if isinstance(item, Mapping) and (key := item.get("tracking_id")) is not None:
            source_ids[str(key)] = key
    sent_at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [
        {
            "message_id": sent.message_id,
            "tracking_id": source_ids.get(sent.tracking_id, sent.tracking_id),
            "sent_at": sent_at,
        }
        for sent in held
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
