"""What one delivery wait watches, where it keeps its working set, what it writes back and
what it reports: the sensor's whole job but the Airflow parts (poke, defer, resume).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import cached_property
from typing import Any

from airflow_provider_cascade.delivery.checkpoints import (
    INLINE_WATCH_BYTES,
    DeliveryWorkspace,
    fits_inline,
)
from airflow_provider_cascade.delivery.options import CascadeSample, CascadeWriteBack
from airflow_provider_cascade.delivery.report import report
from airflow_provider_cascade.delivery.sampling import reservoir
from airflow_provider_cascade.delivery.tracker import DeliveryTracker, SuccessWhen
from airflow_provider_cascade.exceptions import CascadeError
from airflow_provider_cascade.results import CascadeSendResult, Watched
from airflow_provider_cascade.send.options import CascadeResults

__all__ = ["Watch"]


class Watch:
    """One wait's messages and their fate (see :class:`CascadeDeliverySensor`'s arguments).

    :param population: how many messages the campaign had, when known already (a resumed
        deferred wait); otherwise counted while the messages are read.
    :param metric_tags: what the wait's metrics are tagged with (connection, DAG, task).
    """

    def __init__(
        self,
        *,
        send_result: Any,
        message_ids: Any,
        results: CascadeResults,
        sample: CascadeSample | None,
        write_back: CascadeWriteBack | None,
        wait_for_scheduled: bool,
        log: Any,
        population: int | None = None,
        metric_tags: dict[str, str] | None = None,
    ) -> None:
        self.send_result = send_result
        self.message_ids = message_ids
        self.results = results
        self.sample = sample
        self.write_back = write_back
        self.wait_for_scheduled = wait_for_scheduled
        self.log = log
        self.population = population
        self.metric_tags = metric_tags or {}

    # --- what is watched ------------------------------------------------------------------

    def watched(self) -> list[Watched]:
        """The messages to poll: all of them, or a uniform sample read in one streaming
        pass (an offloaded result is never loaded whole)."""
        pairs = self._all_messages()
        if self.sample is None:
            watched = list(pairs)
            self.population = len(watched)
            return watched
        watched, self.population = reservoir(pairs, self.sample.size, self.sample.seed)
        if self.population > len(watched):
            self.log.info(
                "Polling a random sample of %d of %d messages (seed %d)",
                len(watched),
                self.population,
                self.sample.seed,
            )
        return watched

    def _all_messages(self) -> Iterator[Watched]:
        if self.send_result is not None:
            value = self.send_result
            if isinstance(value, CascadeSendResult):
                result = value
            elif isinstance(value, Mapping):
                result = CascadeSendResult.from_xcom(value)
            else:
                raise CascadeError(
                    f"send_result must be a CascadeSendOperator result, not {type(value).__name__}"
                )
            if result.truncated:
                raise CascadeError(
                    f"this send result holds only the first {len(result.messages or ())} of its "
                    f"{result.sent} message ids (it had no results_path; its mark_sent_sql "
                    "outbox holds them all): wait on message_ids= read from the outbox, or give "
                    "the send a results_path"
                )
            return result.iter_watched()
        ids = self.message_ids
        if isinstance(ids, str) or not isinstance(ids, Sequence):
            raise CascadeError(f"message_ids must be a list, not {type(ids).__name__}")
        return (Watched(str(message_id), None) for message_id in ids)

    @cached_property
    def workspace(self) -> DeliveryWorkspace | None:
        """Where the working set and the checkpoints go: the results path, else the send's
        offloaded one; None for a small wait with neither."""
        base = self.results.path
        if not base and isinstance(self.send_result, Mapping):
            base = self.send_result.get("results_path")
        if not base and isinstance(self.send_result, CascadeSendResult):
            base = self.send_result.results_path
        return DeliveryWorkspace(base) if base else None

    def tracker(self) -> DeliveryTracker:
        """A tracker of the watched messages, with the finals an earlier try recorded."""
        tracker = self._tracker_of(self.watched())
        restored = tracker.restore(self.workspace.read_finals()) if self.workspace else 0
        if restored:
            self.log.info("Resuming: %d message(s) already final, not polled again", restored)
        return tracker

    def _tracker_of(self, watched: Iterable[Sequence[Any]]) -> DeliveryTracker:
        return DeliveryTracker(watched, wait_for_scheduled=self.wait_for_scheduled)

    # --- a deferred wait ------------------------------------------------------------------

    def trigger_messages(self) -> list[list[str | None]] | None:
        """The trigger's ``messages``: inline when they fit, else written to the workspace
        (and empty); None when there is nothing to wait for.

        :raises CascadeError: too many to go inline, and no workspace.
        """
        watched = self.watched()
        if not watched:
            return None
        messages = [list(item) if item.scheduled_sent else list(item[:2]) for item in watched]
        if fits_inline(messages):
            return messages
        if self.workspace is None:
            raise CascadeError(
                f"{len(messages)} messages are too many for the trigger's kwargs (at most "
                f"{INLINE_WATCH_BYTES:,} bytes of JSON): give results=CascadeResults(path=...) "
                "(or send with one) so the working set is kept there, or poll a sample "
                "(sample=CascadeSample(size=...))"
            )
        self.workspace.write_watched(messages)  # the trigger's kwargs hold the path only
        return []

    def tracker_of_event(self, event: Mapping[str, Any]) -> DeliveryTracker | None:
        """The statuses a trigger's event carries (inline, or in its workspace)."""
        if event.get("workspace"):
            workspace = DeliveryWorkspace(event["workspace"])
            watched = workspace.read_watched() if workspace.has_watched() else self.watched()
            tracker = self._tracker_of(watched)
            tracker.restore(workspace.read_finals())
            return tracker
        if event.get("tracker"):
            return DeliveryTracker.from_json(
                event["tracker"], wait_for_scheduled=self.wait_for_scheduled
            )
        return None

    # --- write-back and the report --------------------------------------------------------

    def check_write_back(self) -> None:
        """The write-back statement checked on its connection before the wait begins: a
        mistake found only after the wait would lose what it found."""
        if self.write_back is None:
            return
        from airflow_provider_cascade.constants import MARK_DELIVERED_PARAMETERS
        from airflow_provider_cascade.sql import check_statement_on

        check_statement_on(
            self.write_back.conn_id,
            self.write_back.sql,
            MARK_DELIVERED_PARAMETERS,
            "CascadeWriteBack(sql=...)",
            self.log,
        )

    def write_back_rows(self, tracker: DeliveryTracker, became_final: Iterable[str]) -> None:
        final = sorted(became_final)
        if self.write_back is None or not final:
            return
        from airflow_provider_cascade.sql import write_rows

        write_rows(self.write_back.conn_id, self.write_back.sql, tracker.write_back_rows(final))
        self.log.info("Wrote back %d final status(es)", len(final))

    def finish(self, verdict: tuple[SuccessWhen, bool], tracker: DeliveryTracker) -> dict[str, Any]:
        """The report (XCom value), once every status is final.

        :raises CascadeDeliveryError: as ``success_when`` / ``fail_on_undeliverable`` say.
        """
        value = report(
            tracker, self.results.xcom_inline_limit, self.results.path or None, self.population
        )
        if "estimate" in value:
            self.log.info("Estimated for all %d messages: %s", self.population, value["estimate"])
        success_when, fail_on_undeliverable = verdict
        tracker.check(success_when, fail_on_undeliverable, value.get("estimate"))
        self.log.info(
            "All %d message(s) final: %s; delivered by channel: %s",
            value["total"],
            value["by_status"],
            value["by_channel"],
        )
        _count(value, self.metric_tags)
        return value


def _count(value: dict[str, Any], tags: dict[str, str]) -> None:
    """A finished wait's figures as metrics (:mod:`~airflow_provider_cascade.metrics`)."""
    from airflow_provider_cascade.metrics import gauge, incr

    total = sum(value["by_status"].values())
    for status, count in value["by_status"].items():
        incr("cascade.delivery.final", count, status=status, **tags)
        gauge("cascade.delivery.share", count / total if total else 0.0, status=status, **tags)
    for channel, count in value["by_channel"].items():
        incr("cascade.delivery.by_channel", count, channel=channel, **tags)
