"""``CascadeDeliverySensor``: wait until sent messages reach a final delivery status.

A thin face over :mod:`~airflow_provider_cascade.delivery`: what to watch
(:mod:`~airflow_provider_cascade.delivery.watch`), one polling round per poke
(:mod:`~airflow_provider_cascade.delivery.rounds`, the trigger's own), write-back and the
report.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowSensorTimeout,
    BaseSensorOperator,
    PokeReturnValue,
    conf,
)

from airflow_provider_cascade.constants import DEFAULT_CONN_ID
from airflow_provider_cascade.delivery.options import (
    MOVED_SENSOR_ARGUMENTS,
    CascadeSample,
    CascadeWriteBack,
)
from airflow_provider_cascade.delivery.tracker import DeliveryTracker, SuccessWhen
from airflow_provider_cascade.delivery.watch import Watch
from airflow_provider_cascade.exceptions import CascadeAuthError, CascadeError
from airflow_provider_cascade.send.options import (
    CascadeResults,
    argument_group,
    depend_on_nested_outputs,
)
from airflow_provider_cascade.suggestions import ARGUMENT_SYNONYMS, check_arguments

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

#: Airflow's own deferral timeout is set this much after the wait's deadline: the trigger
#: ends on its deadline with everything it found, and Airflow's timeout, which would lose
#: that, is only a backstop (a trigger that cannot run at all).
DEFERRAL_BACKSTOP = timedelta(minutes=5)


class CascadeDeliverySensor(BaseSensorOperator):
    """Wait until every message is ``delivered``, ``undeliverable`` or ``permanenterror``.

    Statuses come from the connection's ``status_path`` (the core SMSBAT API's
    ``GET /bat/message/{message_id}``; not confirmed for Cascade ids). Only messages not yet
    final are polled again, concurrently, at the connection's status budget (default 40
    look-ups/s, under the published 50/s data limit), which every wait on the connection
    shares; a ``429`` pauses every look-up and the message is asked again. The report sums
    each message's cost and billed amount per bill currency.

    Give one input:

    :param send_result: a ``CascadeSendOperator``'s XCom value (``send.output``), inline or
        offloaded. Templated.
    :param message_ids: a list of message ids. Templated.

    :param cascade_conn_id: the ``cascade`` connection.
    :param success_when: ``all_final`` (default): done when every status is final;
        ``all_delivered``: an undeliverable message fails the sensor.
    :param fail_on_undeliverable: fail when any message ends undeliverable or in error,
        even with ``all_final``.
    :param max_requests_per_second: this wait's own pace. Default None: its share of the
        connection's ``status_requests_per_second`` (40), shared with every other wait on
        the connection in the same triggerer or worker process, and divided among a mapped
        wait's instances. A rate given here is not shared: the account's limit is then
        yours to respect.
    :param results: :class:`~airflow_provider_cascade.send.options.CascadeResults`: past
        ``xcom_inline_limit`` messages the per-message report goes to ``path`` (templated).
        With a path (or with a send result offloaded to its own), the wait keeps its
        working set and a checkpoint of final statuses, written as they arrive, under
        ``<path>.delivery/``: a triggerer restart, a reschedule poke or a retry never
        polls a final message again.
    :param sample: :class:`~airflow_provider_cascade.delivery.options.CascadeSample`: poll a
        uniform random sample and add ``estimate`` to the report (each status's and
        channel's share of the whole campaign, 95% Wilson interval). With a sample,
        ``all_delivered`` and ``fail_on_undeliverable`` fail when the interval's low bound
        for undeliverable messages is above 0.
    :param write_back: :class:`~airflow_provider_cascade.delivery.options.CascadeWriteBack`:
        a statement run for each message that became final (poke mode: after each round;
        deferrable: when the trigger is done, timed out or not).
    :param wait_for_scheduled: True (default): wait for messages scheduled for later too
        (not polled before they are due); False: count one as settled for now, under
        ``by_status["scheduled"]``.
    :param deferrable: poll in the triggerer, freeing the worker slot (default: Airflow's
        ``[operators] default_deferrable``). ``poke_interval`` and ``timeout`` apply as
        usual; a deferred wait ends on ``timeout`` itself, writing back what it found.

    :return: (XCom) ``{"total", "by_status": {status: n}, "by_channel": {channel: n},
        "cost": {currency: {"cost", "bill_amount"}},
        "messages": [{"message_id", "tracking_id", "status", "channel"}] or None when
        offloaded, "results_path"}``, and ``estimate`` for a sample.
    :raises CascadeDeliveryError: messages were not delivered and that is a failure here.
    :raises AirflowSensorTimeout: statuses were not all final within ``timeout`` (the
        message says how many are still waiting).
    :raises CascadeAuthError: the credentials were refused.
    """

    template_fields: Sequence[str] = ("send_result", "message_ids", "results", "write_back")

    def __init__(
        self,
        *,
        send_result: Any = None,
        message_ids: Any = None,
        cascade_conn_id: str = DEFAULT_CONN_ID,
        success_when: SuccessWhen = "all_final",
        fail_on_undeliverable: bool = False,
        max_requests_per_second: float | None = None,
        results: CascadeResults | None = None,
        sample: CascadeSample | None = None,
        write_back: CascadeWriteBack | None = None,
        wait_for_scheduled: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        check_arguments(type(self), kwargs, ARGUMENT_SYNONYMS, MOVED_SENSOR_ARGUMENTS)
        super().__init__(**kwargs)
        if (send_result is None) == (message_ids is None):
            raise ValueError("give exactly one input: send_result= or message_ids=")
        if success_when not in ("all_final", "all_delivered"):
            raise ValueError(
                f"success_when must be 'all_final' or 'all_delivered', not {success_when!r}"
            )
        if max_requests_per_second is not None and max_requests_per_second <= 0:
            raise ValueError("max_requests_per_second must be positive")
        self.send_result = send_result
        self.message_ids = message_ids
        self.cascade_conn_id = cascade_conn_id
        self.success_when: SuccessWhen = success_when
        self.fail_on_undeliverable = fail_on_undeliverable
        self.max_requests_per_second = max_requests_per_second
        self.results: CascadeResults = argument_group("results", results, CascadeResults)
        if sample is not None:
            argument_group("sample", sample, CascadeSample)
        if write_back is not None:
            argument_group("write_back", write_back, CascadeWriteBack)
        self.sample = sample
        self.write_back = write_back
        self.wait_for_scheduled = wait_for_scheduled
        self.deferrable = deferrable
        depend_on_nested_outputs(self, [self.results, self.write_back])
        self._watch: Watch | None = None
        self._tracker: DeliveryTracker | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._deadline: float | None = None
        self._shared_by: int | None = None

    def _the_watch(self, population: int | None = None) -> Watch:
        if self._watch is None:
            self._watch = Watch(
                send_result=self.send_result,
                message_ids=self.message_ids,
                results=self.results,
                sample=self.sample,
                write_back=self.write_back,
                wait_for_scheduled=self.wait_for_scheduled,
                log=self.log,
                population=population,
                metric_tags={
                    "conn_id": self.cascade_conn_id,
                    "dag_id": self.dag_id,
                    "task_id": self.task_id,
                },
            )
        return self._watch

    # --- poke mode ------------------------------------------------------------------------

    def poke(self, context: Context) -> PokeReturnValue:
        watch = self._the_watch()
        if self._tracker is None:
            self._tracker = watch.tracker()
        tracker = self._tracker
        if self._loop is None:  # one event loop for every poke of this try
            self._loop = asyncio.new_event_loop()
        done = self._loop.run_until_complete(self._poll_round(tracker, context))
        watch.write_back_rows(tracker, done.became_final)
        self.log.info("Delivery: %s; %d look-up(s) failed", tracker.summary(), done.failed)
        if not tracker.done:
            self.log.info("Still waiting: %s", tracker.waiting())
            if (due := tracker.next_due()) is not None:
                self.log.info(
                    "Scheduled messages not polled before they are due (next: %s)",
                    time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(due)),
                )
            return PokeReturnValue(is_done=False)
        return PokeReturnValue(is_done=True, xcom_value=watch.finish(self._verdict(), tracker))

    async def _poll_round(self, tracker: DeliveryTracker, context: Context) -> Any:
        """One round, as the trigger runs it (imported here: DAG files import this module,
        and parsing them stays cheap)."""
        from airflow_provider_cascade.delivery.rounds import poll_round, polling

        workspace = self._the_watch().workspace
        async with polling(
            self.cascade_conn_id, self.max_requests_per_second, self._sharing(context), self.log
        ) as poller:
            return await poll_round(
                tracker,
                poller,
                write_part=workspace.append_final if workspace is not None else None,
                deadline=self._deadline,
            )

    def _sharing(self, context: Context) -> int:
        """How many instances of this (mapped) wait share the connection's budget (asked of
        Airflow once a try)."""
        if self.max_requests_per_second is not None:
            return 1
        if self._shared_by is None:
            from airflow_provider_cascade.partitions import sharing_the_budget

            limit = getattr(self, "max_active_tis_per_dagrun", None)
            self._shared_by = sharing_the_budget(context, limit)
        return self._shared_by

    def _verdict(self) -> tuple[SuccessWhen, bool]:
        return self.success_when, self.fail_on_undeliverable

    # --- both modes -----------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        watch = self._the_watch()
        watch.check_write_back()
        # A round never runs past the wait's timeout (in reschedule mode each poke is a new
        # try of execute(), and Airflow keeps the clock between them).
        self._deadline = None if self.reschedule else time.time() + self.timeout
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
            finally:
                if self._loop is not None:
                    self._loop.close()
                    self._loop = None
        messages = watch.trigger_messages()
        if messages is None:  # nothing to wait for
            return watch.finish(self._verdict(), watch.tracker())
        from airflow_provider_cascade.triggers.cascade import CascadeDeliveryTrigger

        self.defer(
            trigger=CascadeDeliveryTrigger(
                cascade_conn_id=self.cascade_conn_id,
                messages=messages,
                poll_interval=self.poke_interval,
                max_requests_per_second=self.max_requests_per_second,
                budget_sharing=self._sharing(context),
                deadline=time.time() + self.timeout,
                workspace=watch.workspace.base if watch.workspace is not None else None,
                wait_for_scheduled=self.wait_for_scheduled,
            ),
            method_name="execute_complete",
            kwargs={"population": watch.population},
            timeout=timedelta(seconds=self.timeout) + DEFERRAL_BACKSTOP,
        )

    def execute_complete(
        self, context: Context, event: dict[str, Any], population: int | None = None
    ) -> dict[str, Any]:
        """Turn the trigger's event into the report, or the error it carries; the final
        statuses it found are written back first, whatever the event."""
        from airflow_provider_cascade.triggers.cascade import AUTH_REFUSED

        watch = self._the_watch(population)
        tracker = watch.tracker_of_event(event)
        if tracker is not None:
            watch.write_back_rows(tracker, set(tracker.tracking_ids) - tracker.pending)
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
        return watch.finish(self._verdict(), tracker)
