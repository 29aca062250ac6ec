"""``CascadeDeliverySensor``: wait until sent messages reach a final delivery status.

Longer than 300 lines: the sensor still holds its polling round and write-back; issue 25
moves them into a delivery package.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.common.compat.sdk import (
    AirflowSensorTimeout,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)

from airflow_provider_cascade.checkpoints import DeliveryWorkspace
from airflow_provider_cascade.constants import (
    DEFAULT_CONN_ID,
    DEFAULT_STATUS_REQUESTS_PER_SECOND,
    DEFAULT_XCOM_INLINE_LIMIT,
)
from airflow_provider_cascade.delivery import DeliveryTracker, SuccessWhen
from airflow_provider_cascade.exceptions import CascadeAuthError, CascadeError
from airflow_provider_cascade.results import CascadeSendResult, Watched
from airflow_provider_cascade.sampling import estimate, reservoir
from airflow_provider_cascade.suggestions import ARGUMENT_SYNONYMS, check_arguments

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context


class CascadeDeliverySensor(BaseSensorOperator):
    """Wait until every message is ``delivered``, ``undeliverable`` or ``permanenterror``.

    Statuses come from the connection's ``status_path`` (the core SMSBAT API's
    ``GET /bat/message/{message_id}``; not confirmed for Cascade ids). Only messages not yet
    final are polled again, with bounded concurrency so the pace (default 40 look-ups/s,
    under the published 50/s data limit) holds whatever the latency; a ``429`` pauses
    every look-up and the message is asked again. The report sums each message's cost
    and billed amount per bill currency.

    Give one input:

    :param send_result: a ``CascadeSendOperator``'s XCom value (``send.output``), inline or
        offloaded. Templated.
    :param message_ids: a list of message ids. Templated.

    :param cascade_conn_id: the ``cascade`` connection.
    :param success_when: ``all_final`` (default): done when every status is final;
        ``all_delivered``: an undeliverable message fails the sensor.
    :param fail_on_undeliverable: fail when any message ends undeliverable or in error,
        even with ``all_final``.
    :param max_requests_per_second: pacing of status look-ups (default 40).
    :param xcom_inline_limit: past this many messages the per-message report goes to
        ``results_path``.
    :param results_path: an ``ObjectStoragePath`` URI for the JSON Lines report. Templated.
        With it (or with a send result offloaded to its own ``results_path``), the wait
        keeps its working set and a checkpoint of every round's final statuses under
        ``<results_path>.delivery/``: the trigger's kwargs and events stay small whatever
        the number of messages, and a triggerer restart, a reschedule poke or a retry
        never polls a final message again.
    :param sample_size: poll a uniform random sample of this many messages instead of all
        (all when there are fewer), and add ``estimate`` to the report: the whole
        campaign's share of each status and channel with its 95% Wilson interval. With a
        sample, ``success_when="all_delivered"`` and ``fail_on_undeliverable`` fail when
        the interval's low bound for undeliverable messages is above 0 (undeliverable
        messages are then certain, at 95%, to be more than none).
    :param wait_for_scheduled: True (default): wait for messages scheduled for later too
        (they are not polled before they are due; the trigger sleeps until the earliest);
        False: count a message scheduled for later as settled for now and report it under
        ``by_status["scheduled"]``.
    :param sample_seed: the sample's seed (the same seed and messages give the same sample).
    :param sql_conn_id: with ``mark_delivered_sql``: any common-sql connection.
    :param mark_delivered_sql: run once per message that became final, after each polling
        round (deferrable: once, when the trigger is done), with named parameters
        ``message_id``, ``tracking_id``, ``status``, ``channel``, ``cost``, ``checked_at``
        (``%(status)s`` or ``:status`` per your driver), committed per 1,000 rows, as
        ``mark_sent_sql`` on the send side. Templated.
    :param deferrable: poll in the triggerer, freeing the worker slot (default: Airflow's
        ``[operators] default_deferrable``). ``poke_interval`` and ``timeout`` apply as usual.

    :return: (XCom) ``{"total", "by_status": {status: n}, "by_channel": {channel: n},
        "cost": {currency: {"cost", "bill_amount"}},
        "messages": [{"message_id", "tracking_id", "status", "channel"}] or None when
        offloaded, "results_path"}``.
    :raises CascadeDeliveryError: messages were not delivered and that is a failure here.
    :raises AirflowSensorTimeout: statuses were not all final within ``timeout``.
    :raises CascadeAuthError: the credentials were refused.
    """

    template_fields: Sequence[str] = (
        "send_result",
        "message_ids",
        "results_path",
        "mark_delivered_sql",
    )
    template_fields_renderers: ClassVar[dict[str, str]] = {"mark_delivered_sql": "sql"}

    def __init__(
        self,
        *,
        send_result: Any = None,
        message_ids: Any = None,
        cascade_conn_id: str = DEFAULT_CONN_ID,
        success_when: SuccessWhen = "all_final",
        fail_on_undeliverable: bool = False,
        max_requests_per_second: float = DEFAULT_STATUS_REQUESTS_PER_SECOND,
        xcom_inline_limit: int = DEFAULT_XCOM_INLINE_LIMIT,
        results_path: str | None = None,
        sample_size: int | None = None,
        sample_seed: int = 0,
        wait_for_scheduled: bool = True,
        sql_conn_id: str | None = None,
        mark_delivered_sql: str | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        check_arguments(type(self), kwargs, ARGUMENT_SYNONYMS)
        super().__init__(**kwargs)
        if (send_result is None) == (message_ids is None):
            raise ValueError("give exactly one input: send_result= or message_ids=")
        if success_when not in ("all_final", "all_delivered"):
            raise ValueError(
                f"success_when must be 'all_final' or 'all_delivered', not {success_when!r}"
            )
        self.send_result = send_result
        self.message_ids = message_ids
        self.cascade_conn_id = cascade_conn_id
        self.success_when: SuccessWhen = success_when
        self.fail_on_undeliverable = fail_on_undeliverable
        self.max_requests_per_second = max_requests_per_second
        self.xcom_inline_limit = xcom_inline_limit
        self.results_path = results_path
        if sample_size is not None and sample_size < 1:
            raise ValueError(f"sample_size must be 1 or more, not {sample_size}")
        if bool(sql_conn_id) != bool(mark_delivered_sql):
            raise ValueError("mark_delivered_sql= and sql_conn_id= go together: give both")
        self.sql_conn_id = sql_conn_id
        self.mark_delivered_sql = mark_delivered_sql
        self.wait_for_scheduled = wait_for_scheduled
        self.sample_size = sample_size
        self.sample_seed = sample_seed
        self.deferrable = deferrable
        self._tracker: DeliveryTracker | None = None
        self._population: int | None = None

    # --- input ----------------------------------------------------------------------------

    def _watched(self) -> list[Watched]:
        """The messages to poll: all of them, or a uniform sample of ``sample_size`` read in
        one streaming pass (an offloaded result is never loaded whole)."""
        pairs = self._all_messages()
        if self.sample_size is None:
            watched = list(pairs)
            self._population = len(watched)
            return watched
        watched, self._population = reservoir(pairs, self.sample_size, self.sample_seed)
        if self._population > len(watched):
            self.log.info(
                "Polling a random sample of %d of %d messages (seed %d)",
                len(watched),
                self._population,
                self.sample_seed,
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

    # --- poke mode ------------------------------------------------------------------------

    def poke(self, context: Context) -> PokeReturnValue:
        workspace = self._workspace()
        if self._tracker is None:
            self._tracker = self._tracker_of(self._watched())
            if workspace is not None and (
                restored := self._tracker.restore(workspace.read_finals())
            ):
                self.log.info("Resuming: %d message(s) already final, not polled again", restored)
        tracker = self._tracker
        waiting = set(tracker.pending)
        failed = asyncio.run(self._poll_round(tracker, tracker.due_now()))
        became_final = waiting - tracker.pending
        if workspace is not None:  # a reschedule poke or a retry starts from here
            workspace.append_final(tracker.finals_of(became_final))
        self._write_back(tracker, became_final)
        self.log.info("Delivery: %s; %d look-up(s) failed", tracker.summary(), failed)
        if not tracker.done:
            self.log.info("Still waiting: %s", tracker.waiting())
            if (due := tracker.next_due()) is not None:
                self.log.info(
                    "Scheduled messages not polled before they are due (next: %s)", _iso(due)
                )
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=self._finish(tracker))

    async def _poll_round(self, tracker: DeliveryTracker, message_ids: Sequence[str]) -> int:
        """One round over the messages not yet final and due, as the trigger does it."""
        if not message_ids:
            return 0
        # Imported here, as in execute(): DAG files import this module, and parsing them
        # must stay cheap (no requests/httpx at import time).
        from airflow_provider_cascade.hooks.cascade import CascadeAsyncHook
        from airflow_provider_cascade.polling import StatusPoller

        async with CascadeAsyncHook(
            self.cascade_conn_id, max_requests_per_second=self.max_requests_per_second
        ) as hook:
            poller = StatusPoller(hook, self.max_requests_per_second, self.log)
            answers, failed = await poller.poll(message_ids)
        for message_id, payload in answers.items():
            if payload is not None:  # unknown yet: asked again next poke
                tracker.record(message_id, payload)
        return failed

    def _check_write_back(self) -> None:
        """``mark_delivered_sql`` checked on its connection before the wait begins: a
        mistake found only after the wait would lose what it found."""
        if not self.mark_delivered_sql:
            return
        from airflow_provider_cascade.constants import MARK_DELIVERED_PARAMETERS
        from airflow_provider_cascade.sql import check_statement_on

        assert self.sql_conn_id is not None
        check_statement_on(
            self.sql_conn_id,
            self.mark_delivered_sql,
            MARK_DELIVERED_PARAMETERS,
            "mark_delivered_sql",
            self.log,
        )

    # --- deferrable mode ------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        self._check_write_back()
        if not self.deferrable:
            try:
                return super().execute(context)
            except AirflowSensorTimeout as timeout:
                if self._tracker is None:
                    raise
                raise AirflowSensorTimeout(
                    f"{timeout}: {self._tracker.summary()}; still waiting: "
                    f"{self._tracker.waiting()}"
                ) from timeout
        watched = self._watched()
        if not watched:
            return self._finish(self._tracker_of([]))
        from airflow_provider_cascade.checkpoints import INLINE_WATCH_BYTES, fits_inline
        from airflow_provider_cascade.triggers.cascade import CascadeDeliveryTrigger

        workspace = self._workspace()
        messages = [list(item) if item.scheduled_sent else list(item[:2]) for item in watched]
        if not fits_inline(messages):
            if workspace is None:
                raise CascadeError(
                    f"{len(messages)} messages are too many for the trigger's kwargs (at most "
                    f"{INLINE_WATCH_BYTES:,} bytes of JSON): set results_path (or send with "
                    "results_path) so the working set is kept there, or poll a sample "
                    "(sample_size=)"
                )
            workspace.write_watched(messages)  # the trigger's kwargs hold the path only
            messages = []
        self.defer(
            trigger=CascadeDeliveryTrigger(
                cascade_conn_id=self.cascade_conn_id,
                messages=messages,
                poll_interval=self.poke_interval,
                max_requests_per_second=self.max_requests_per_second,
                deadline=time.time() + self.timeout,
                workspace=workspace.base if workspace is not None else None,
                wait_for_scheduled=self.wait_for_scheduled,
            ),
            method_name="execute_complete",
            kwargs={"population": self._population},
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(
        self, context: Context, event: dict[str, Any], population: int | None = None
    ) -> dict[str, Any]:
        """Turn the trigger's event into the report, or the error it carries."""
        from airflow_provider_cascade.triggers.cascade import AUTH_REFUSED

        self._population = population
        tracker = None
        if event.get("workspace"):  # many messages: their statuses are in the workspace
            workspace = DeliveryWorkspace(event["workspace"])
            tracker = self._tracker_of(self._watched_again(workspace))
            tracker.restore(workspace.read_finals())
        elif event.get("tracker"):
            tracker = DeliveryTracker.from_json(
                event["tracker"], wait_for_scheduled=self.wait_for_scheduled
            )
        if tracker is not None:  # a deferred wait's final statuses, timed out or not
            self._write_back(tracker, set(tracker.tracking_ids) - tracker.pending)
        status = event.get("status")
        if status == "error":
            message = event.get("message", "delivery polling failed")
            if event.get("kind") == AUTH_REFUSED:
                raise CascadeAuthError(message)
            raise CascadeError(message)
        if status == "timeout":
            raise AirflowSensorTimeout(event.get("message", "delivery not final in time"))
        if status != "success" or tracker is None:
            raise CascadeError(f"unexpected trigger event: {status!r}")
        return self._finish(tracker)

    # --- both -----------------------------------------------------------------------------

    def _tracker_of(self, watched: Iterable[Sequence[Any]]) -> DeliveryTracker:
        return DeliveryTracker(watched, wait_for_scheduled=self.wait_for_scheduled)

    def _workspace(self) -> DeliveryWorkspace | None:
        """Where the working set and the checkpoints go: ``results_path``, else the send's
        offloaded ``results_path``; None for a small wait with neither."""
        base = self.results_path
        if not base and isinstance(self.send_result, Mapping):
            base = self.send_result.get("results_path")
        if not base and isinstance(self.send_result, CascadeSendResult):
            base = self.send_result.results_path
        return DeliveryWorkspace(base) if base else None

    def _watched_again(self, workspace: DeliveryWorkspace) -> Sequence[Sequence[Any]]:
        if workspace.has_watched():
            return workspace.read_watched()
        return self._watched()

    def _write_back(self, tracker: DeliveryTracker, became_final: set[str]) -> None:
        if not self.mark_delivered_sql or not became_final:
            return
        from airflow_provider_cascade.sql import write_rows

        assert self.sql_conn_id is not None
        write_rows(
            self.sql_conn_id, self.mark_delivered_sql, tracker.write_back_rows(sorted(became_final))
        )
        self.log.info("Wrote back %d final status(es)", len(became_final))

    def _finish(self, tracker: DeliveryTracker) -> dict[str, Any]:
        report = tracker.report(self.xcom_inline_limit, self.results_path or None)
        population = self._population or report["total"]
        if report["total"] < population:  # a sample: the estimate for the whole campaign
            report["estimate"] = estimate(
                report["by_status"], report["by_channel"], report["total"], population
            )
            self.log.info("Estimated for all %d messages: %s", population, report["estimate"])
        tracker.check(self.success_when, self.fail_on_undeliverable, report.get("estimate"))
        self.log.info(
            "All %d message(s) final: %s; delivered by channel: %s",
            report["total"],
            report["by_status"],
            report["by_channel"],
        )
        return report


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
