"""The send loop: each batch of the source checked, screened by the guardrails, handed
to the dispatcher; each settled batch to the sinks (the result, the write-back).

Everything that sends many messages goes through :class:`Campaign`: the operator (a
``messages=`` list or a streamed SQL query, with the task state store as its ledger) and
:func:`send_messages` (plain Python, an in-memory ledger); the notifier's few pages go
straight to the hook. The steps, top to bottom as a message travels them:

- :mod:`~airflow_provider_cascade.send.sources`: a list, or SQL rows streamed;
- :mod:`~airflow_provider_cascade.send.checks`: the contract's rules, ``on_invalid``;
- :mod:`~airflow_provider_cascade.send.guardrails`: who is left out, when to stop;
- :mod:`~airflow_provider_cascade.send.dispatch`: the requests, the ledger;
- :mod:`~airflow_provider_cascade.send.sinks`: the result, the write-back.

It is typed against small protocols (``BatchSender``, ``Source``, ``Guardrail``), so tests
drive it without Airflow.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from airflow_provider_cascade.constants import DEFAULT_CONN_ID, MAX_BATCH_SIZE
from airflow_provider_cascade.exceptions import CascadeError
from airflow_provider_cascade.messages import CascadeMessage, Route, SentMessage
from airflow_provider_cascade.results import CascadeSendResult
from airflow_provider_cascade.send.checks import Checks
from airflow_provider_cascade.send.dispatch import (
    BatchSender,
    Dispatch,
    Dispatcher,
    DryRun,
    Settled,
)
from airflow_provider_cascade.send.guardrails.base import Batch, Guardrail, Log, Start
from airflow_provider_cascade.send.guardrails.caps import InlineLimit
from airflow_provider_cascade.send.ledger import SendLedger
from airflow_provider_cascade.send.settings import CampaignSettings, OnInvalid, OnUncertain
from airflow_provider_cascade.send.sinks import ResultSink, WriteBack, WriteBackSink
from airflow_provider_cascade.send.sources import ListSource, RawBatch, Source

__all__ = [
    "BatchSender",
    "Campaign",
    "CampaignSettings",
    "OnInvalid",
    "OnUncertain",
    "WriteBack",
    "send_messages",
]


class Campaign:
    """One send of many batches.

    :param sender: sends one batch per request.
    :param ledger: what earlier tries sent; records this try's progress.
    :param settings: how to send.
    :param guardrails: the steps that may stop the send or leave messages out, in order
        (``CascadeGuardrails.steps()``).
    :param write_back: called after each batch with one row per message the service holds
        (``message_id``, ``tracking_id`` as the source gave it, ``sent_at``).
    """

    def __init__(
        self,
        sender: BatchSender,
        ledger: SendLedger,
        settings: CampaignSettings,
        log: Log,
        *,
        guardrails: Sequence[Guardrail] = (),
        write_back: WriteBack | None = None,
    ) -> None:
        self.ledger = ledger
        self.settings = settings
        self.log = log
        self.guardrails = list(guardrails)
        limit = settings.xcom_inline_limit
        if limit is not None and not settings.results_path and write_back is None:
            # Every id must fit the XCom: nothing to offload to, no outbox that holds them.
            self.guardrails.append(InlineLimit(limit))
        self.checks = Checks(settings, log)
        self.sink = ResultSink(settings, log)
        self.write_back = (
            WriteBackSink(write_back, log) if write_back and not settings.dry_run else None
        )
        self.dispatch: Dispatch
        self._dry_run: DryRun | None
        if settings.dry_run:
            self.dispatch = self._dry_run = DryRun(self._settled)
        else:
            self._dry_run = None
            self.dispatch = Dispatcher(sender, ledger, settings, log, self._settled)

    @property
    def result(self) -> CascadeSendResult:
        """The result as it stands (final once :meth:`run` returned)."""
        return self.sink.result

    @property
    def accepted(self) -> list[SentMessage]:
        """What the service accepted so far, in send order (while it is held in memory)."""
        return [SentMessage(s.message_id, s.tracking_id) for s in self.sink.accepted]

    def _settled(self, settled: Settled) -> None:
        self.sink.settled(settled)
        if self.write_back is not None:
            self.write_back.settled(settled)

    def run(self, source: Source) -> CascadeSendResult:
        """Send everything ``source`` holds.

        An in-memory list with ``on_invalid="fail"`` is checked whole first: nothing is sent
        from a list known to hold an invalid message.

        :raises CascadeError: as the sender raises it (``accepted`` set to what the service
            took before), an invalid message with ``on_invalid="fail"``, or a guardrail's.
        """
        self.sink.start(source.total)
        start = Start(source, self.settings.dry_run, self.log)
        for guardrail in self.guardrails:
            guardrail.start(start)
        spared = _SparedCollector()
        try:
            listed = isinstance(source, ListSource) and not source.checked
            if listed and self.settings.on_invalid == "fail":
                # The whole list is there: its validity is known before sending.
                assert isinstance(source, ListSource)
                whole = self._screen(RawBatch("message", 1, source.messages))
                source = ListSource(whole.messages, checked=True)
            for raw in source.batches(self.settings.batch_size):
                self.dispatch.send(self._screen(raw))
            self.dispatch.drain()
        except BaseException as error:
            self.dispatch.drain_after_error()
            failure: BaseException = error
            if self.write_back is not None and self.write_back.unmarked:
                failure = self.write_back.failure(self.result.sent, self.ledger.durable)
            if isinstance(failure, CascadeError):
                failure.accepted = tuple(self.accepted)
            self.sink.close()
            if failure is error:
                raise
            raise failure from error
        finally:
            self.dispatch.close()
            spared.close()
        try:
            return self._finish()
        finally:
            self.sink.close()

    def _screen(self, raw: RawBatch) -> Batch:
        """A raw batch checked, then through every guardrail: what goes on."""
        batch, problems = self.checks.check(raw)
        if not raw.checked:
            now = datetime.now(timezone.utc).replace(microsecond=0)
            for guardrail in self.guardrails:
                screened = guardrail.screen(batch, now)
                if screened.left_out:
                    self.sink.leave_out(screened.left_out)
                    self.log.info(
                        "Not sending %d message(s): %s", len(screened.left_out), guardrail.name
                    )
                problems.extend(screened.problems)
                batch = screened.kept
            tally = self.checks.settle(problems, len(raw.items), self.result.sent)
            for guardrail in self.guardrails:
                guardrail.checked(tally)
        return batch

    def _finish(self) -> CascadeSendResult:
        result = self.result
        result.rejected = self.checks.rejected
        figures: dict[str, int] = {}
        labelled: dict[str, int] = {}
        for guardrail in self.guardrails:
            for name, value in guardrail.figures().items():
                figures[name] = value
                labelled[guardrail.labels.get(name, name)] = value
        result.record(figures)
        if self._dry_run is not None:
            result.forecast = self._dry_run.forecast.to_json(
                **labelled, rejected=len(result.rejected)
            )
        return self.sink.finish(self.ledger)


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
