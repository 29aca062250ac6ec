"""Where settled batches go: the result (ids spooled, the left-out entries, the timeline,
progress in the log) and the write-back to the source's outbox (``mark_sent_sql``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from airflow_provider_cascade.exceptions import CascadeWriteBackError
from airflow_provider_cascade.results import CascadeSendResult, ResultSpool
from airflow_provider_cascade.send.dispatch import Accepted, Settled
from airflow_provider_cascade.send.guardrails.base import Log
from airflow_provider_cascade.send.ledger import SendLedger
from airflow_provider_cascade.send.settings import CampaignSettings

__all__ = ["ResultSink", "WriteBack", "WriteBackSink"]

#: The most points the result's timeline keeps.
TIMELINE_POINTS = 100

WriteBack = Callable[[Sequence[Mapping[str, Any]]], None]


class ResultSink:
    """Builds the send's :class:`~airflow_provider_cascade.results.CascadeSendResult`.

    The ids and what the guardrails left out are spooled (in memory up to the inline
    limit, then on disk), then put inline or into ``results_path`` at the end.
    """

    def __init__(self, settings: CampaignSettings, log: Log) -> None:
        self.settings = settings
        self.log = log
        self.result = CascadeSendResult(route=settings.route.value, dry_run=settings.dry_run)
        self._spool: ResultSpool[Accepted] = ResultSpool(_entry, settings.xcom_inline_limit)
        self._left_out: ResultSpool[dict[str, Any]] = ResultSpool(dict, settings.xcom_inline_limit)
        self._progress = _Progress(log, settings.progress_interval)

    @property
    def accepted(self) -> list[Accepted]:
        """What the service accepted so far, in send order (while it is held in memory)."""
        return list(self._spool.held or ())

    def start(self, total: int | None) -> None:
        self._progress.total = total

    def settled(self, settled: Settled) -> None:
        result = self.result
        result.in_doubt.extend(settled.in_doubt)
        self._spool.extend(settled.accepted, settled.lines)
        result.sent += len(settled.accepted)
        result.batches += settled.requests
        self._progress.update(result.sent)
        timeline = result.timeline
        timeline.append([round(time.monotonic() - self._progress.started, 3), result.sent])
        if len(timeline) > TIMELINE_POINTS:  # every other point, the first and last kept
            timeline[:] = [*timeline[:-1:2], timeline[-1]]

    def leave_out(self, entries: Sequence[dict[str, Any]]) -> None:
        """Messages a guardrail left out, one entry each (``suppressed``, ``duplicate_of``
        or ``held`` says why)."""
        if entries:
            self._left_out.extend(entries)

    def finish(self, ledger: SendLedger) -> CascadeSendResult:
        """The result: ids inline up to the limit, else written to ``results_path``."""
        result = self.result
        limit = self.settings.xcom_inline_limit
        entries = self._spool.count + self._left_out.count
        if limit is not None and entries > limit and self.settings.results_path:
            # What the guardrails left out follows the messages in the same file (no
            # message id; "suppressed", "duplicate_of" or "held" says why).
            result.results_path = self._spool.offload(
                self.settings.results_path, then=self._left_out
            )
            result.suppressed_ids = result.duplicates = result.held = None
            if ledger.parts is not None:
                # The results file holds every id now; a retry that finds a part gone reads it.
                ledger.parts.remove()
        else:
            # Past the limit without results_path only when the outbox holds every id.
            result.messages = self._spool.inline(limit)
            result.take_left_out(self._left_out.inline(limit))
            result.truncated = limit is not None and entries > limit
            if result.truncated:
                self.log.warning(
                    "%d message(s) are more than xcom_inline_limit=%d and there is no "
                    "results_path: the outbox (mark_sent_sql) holds every message id, the "
                    "XCom the counts and the first %d. A delivery wait on this send then needs "
                    "message_ids= read from the outbox, or a results_path on the send",
                    entries,
                    limit,
                    limit,
                )
        self._progress.done(result)
        return result

    def close(self) -> None:
        """Remove the spill files."""
        self._spool.close()
        self._left_out.close()


class WriteBackSink:
    """Runs ``mark_sent_sql`` (through ``write``) after each batch, with one row per message
    the service holds: ``message_id``, ``tracking_id`` as the source gave it, ``sent_at``.

    Once it fails, nothing more is tried: the send stops at once, and what stays unmarked is
    collected for :meth:`failure`.
    """

    def __init__(self, write: WriteBack, log: Log) -> None:
        self.write = write
        self.log = log
        #: Accepted messages the failed write-back left unmarked.
        self.unmarked: list[Accepted] = []
        self._error = ""

    def settled(self, settled: Settled) -> None:
        accepted = settled.accepted
        if not accepted:
            return
        if self._error:  # the write-back failed already: nothing more is tried
            self.unmarked.extend(accepted)
            return
        try:
            self.write(_rows(accepted, settled.keys))
        except Exception as error:
            self.unmarked.extend(accepted)
            self._error = f"{type(error).__name__}: {_first_line(error)}"
            raise CascadeWriteBackError(self._error, unmarked=accepted) from error

    def failure(self, accepted_in_all: int, durable: bool) -> CascadeWriteBackError:
        """What to say when accepted messages could not be written back: how many, where
        their ids are, and what a retry does."""
        unmarked = self.unmarked
        self.log.error(
            "Accepted and not written back (tracking id -> message id): %s",
            ", ".join(f"{m.tracking_id} -> {m.message_id}" for m in unmarked),
        )
        if durable:
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
            f"mark_sent_sql failed ({self._error}) after the service accepted "
            f"{len(unmarked)} message(s) that are not marked; the send stopped at once "
            f"({accepted_in_all} accepted in all). Their ids are in the task log above and "
            f"in the error's 'unmarked'; {retry}",
            unmarked=unmarked,
        )


def _entry(sent: Accepted) -> dict[str, str | None]:
    entry: dict[str, str | None] = dict(sent.to_json())
    entry["message_id"] = sent.message_id or None  # a dry run has no message id
    return entry


def _rows(sent: Sequence[Accepted], keys: Sequence[Any]) -> list[dict[str, Any]]:
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


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


class _Progress:
    """A progress line at most every ``interval`` seconds: count, rate, ETA."""

    def __init__(self, log: Log, interval: float) -> None:
        self.log = log
        self.total: int | None = None
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
