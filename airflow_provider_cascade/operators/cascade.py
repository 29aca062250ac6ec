"""``CascadeSendOperator``: send a batch of messages from XCom, a literal list, or SQL.

Longer than 300 lines: most of it is the operator's docstring, what a DAG author reads;
the code is the wiring of source, guardrails, hook and result.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_cascade.constants import DEFAULT_CONN_ID
from airflow_provider_cascade.send.guardrails import CascadeGuardrails
from airflow_provider_cascade.send.options import (
    MOVED_ARGUMENTS,
    CascadeRequests,
    CascadeResults,
    argument_group,
    depend_on_nested_outputs,
)
from airflow_provider_cascade.send.preview import Messages
from airflow_provider_cascade.send.settings import CampaignSettings, OnInvalid, OnUncertain
from airflow_provider_cascade.suggestions import ARGUMENT_SYNONYMS, check_arguments
from airflow_provider_cascade.wire import Route

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_cascade.results import CascadeSendResult
    from airflow_provider_cascade.send.campaign import WriteBack
    from airflow_provider_cascade.send.sources import Source

# The send machinery (requests, tenacity, the campaign loop) is imported inside execute():
# every scheduler and DAG processor parse imports this module, and that must stay cheap.

#: XCom key under which the message ids (a list, in send order) are pushed when inline.
MESSAGE_IDS_KEY = "message_ids"


class CascadeSendOperator(BaseOperator):
    """Send messages through the SMSBAT Cascade API, in batches, exactly once per message.

    Give exactly one source:

    :param messages: a list of dicts (``tracking_id``/``id``, ``from_name``, ``to_phone``,
        ``message_type``, ``text``, ``ttl``, ``scheduled_sent``, ``survey_options``; the
        API's own names work too) or ``CascadeMessage`` objects; literal, templated, or an
        upstream task's output (``messages=build.output``); a JSON text of such a list is
        parsed. Shown in the UI masked.
    :param sql: a query (or a ``.sql`` file) whose columns are those fields; rows are
        streamed a batch at a time. NULL means "use the default". Templated.
    :param sql_conn_id: any common-sql connection (PostgreSQL, MySQL, SQLite...).
    :param parameters: the query's parameters. Templated.
    :param mark_sent_sql: with ``sql=``: run after each accepted batch on the same connection,
        once per message with named parameters ``message_id``, ``tracking_id``, ``sent_at``
        (``%(message_id)s`` or ``:message_id`` per your driver), then committed; checked
        before the first request (placeholders, then ``EXPLAIN``). Templated.

    Defaults for fields a message leaves out (or sets to None):

    :param from_name: the sender name. Templated.
    :param message_type: ``transaction``, ``promo``, ``viber_survey`` or ``flashcall``. Templated.
    :param ttl: seconds; when still missing, the service's recommendation for the type.
    :param scheduled_sent: when to deliver, e.g. ``"{{ data_interval_end.add(hours=2) }}"``;
        normalised to UTC. Templated.

    How to send:

    :param cascade_conn_id: the ``cascade`` connection.
    :param route: ``standard`` (every channel in turn) or ``tg_viber`` (Telegram and Viber first).
    :param dry_run: validate and guard everything, return what would be sent and a
        ``forecast``; send nothing.
    :param on_invalid: ``fail`` (default): an invalid message fails the task before its
        batch is sent (for ``messages=`` before anything is sent), with ONE error listing
        every problem; ``skip``: send the valid ones and list the others in ``rejected``.
    :param on_uncertain: a batch whose fate is unknown (5xx, timeout, reset after the request
        went out, a worker killed mid-request): ``resend`` (default, at-least-once) sends it
        again; ``skip`` (at-most-once) never re-sends it and lists it in ``in_doubt``.
    :param guardrails: :class:`~airflow_provider_cascade.send.guardrails.CascadeGuardrails`:
        a size cap, a rejection brake, dedupe, suppression, quiet hours.
    :param requests: :class:`~airflow_provider_cascade.send.options.CascadeRequests`: batch
        size, pacing, concurrency, retries, timeout.
    :param results: :class:`~airflow_provider_cascade.send.options.CascadeResults`: where
        the ids of a large send go (``path``) past ``xcom_inline_limit``.
    :param durable: keep the send's progress in the task state store so a retry never
        re-sends an accepted batch (Airflow 3.3+); ``False``: a retry sends everything again.

    :return: (XCom) :class:`~airflow_provider_cascade.results.CascadeSendResult` as a dict
        (``sent``, ``rejected``, ``in_doubt``, ``messages`` or ``results_path``, what each
        guardrail did, a dry run's ``forecast``); the ids alone also under the XCom key
        ``message_ids`` when inline. Read either with ``CascadeSendResult.load``. With
        ``outlets=[Asset(...)]`` each asset event's ``extra`` carries the figures.
    :raises CascadeValidationError: invalid input (``on_invalid="fail"``), an unreadable
        suppressed number, or a 400.
    :raises CascadeGuardrailError: a guardrail stopped the send.
    :raises CascadeStatementError: ``mark_sent_sql`` cannot run on its connection.
    :raises CascadeWriteBackError: the database failed while marking accepted messages;
        a retry marks them without sending them again.
    :raises CascadeAuthError: the credentials were refused.
    :raises CascadeConnectionError: ``cascade_conn_id`` is not a ``cascade`` connection.
    :raises CascadeBatchInDoubtError: a batch in doubt with ``on_uncertain="resend"``: the
        task's retry sends it again; batches accepted before are not re-sent.

    Errors a retry cannot fix (validation, statement, guardrail, credentials, connection
    type) fail the task without using its retries. Bad arguments raise ValueError or
    TypeError at DAG parse.
    """

    template_fields: Sequence[str] = (
        "messages",
        "sql",
        "parameters",
        "from_name",
        "message_type",
        "scheduled_sent",
        "mark_sent_sql",
        "guardrails",
        "results",
    )
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers: ClassVar[dict[str, str]] = {
        "sql": "sql",
        "mark_sent_sql": "sql",
        "messages": "json",
        "parameters": "json",
    }
    ui_color = "#dff5e8"

    def __init__(
        self,
        *,
        messages: Any = None,
        sql: str | None = None,
        sql_conn_id: str | None = None,
        parameters: Any = None,
        mark_sent_sql: str | None = None,
        from_name: str | None = None,
        message_type: str | None = None,
        ttl: int | None = None,
        scheduled_sent: Any = None,
        cascade_conn_id: str = DEFAULT_CONN_ID,
        route: Route | str = Route.STANDARD,
        dry_run: bool = False,
        on_invalid: OnInvalid = "fail",
        on_uncertain: OnUncertain = "resend",
        guardrails: CascadeGuardrails | None = None,
        requests: CascadeRequests | None = None,
        results: CascadeResults | None = None,
        durable: bool = True,
        **kwargs: Any,
    ) -> None:
        check_arguments(type(self), kwargs, ARGUMENT_SYNONYMS, MOVED_ARGUMENTS)
        super().__init__(**kwargs)
        self._check_source(messages, sql, sql_conn_id, mark_sent_sql)
        guardrails = argument_group("guardrails", guardrails, CascadeGuardrails)
        requests = argument_group("requests", requests, CascadeRequests)
        results = argument_group("results", results, CascadeResults)
        guardrails.check(on_invalid=on_invalid, sql_conn_id=sql_conn_id)
        # Every limit and mode, checked once (ValueError here, at DAG parse).
        self.settings = CampaignSettings(
            route=Route(route),
            batch_size=requests.batch_size,
            dry_run=dry_run,
            on_invalid=on_invalid,
            on_uncertain=on_uncertain,
            xcom_inline_limit=results.xcom_inline_limit,
            max_in_flight=requests.max_in_flight,
        )
        self.messages = None if messages is None else Messages(messages)
        self.sql = sql
        self.sql_conn_id = sql_conn_id
        self.parameters = parameters
        self.mark_sent_sql = mark_sent_sql
        self.from_name = from_name
        self.message_type = message_type
        self.ttl = ttl
        self.scheduled_sent = scheduled_sent
        self.cascade_conn_id = cascade_conn_id
        self.guardrails = guardrails
        self.requests = requests
        self.results = results
        self.durable = durable
        # Airflow finds an upstream task's output in a template field's value, but not
        # inside an object's own template fields: the groups' are looked at here.
        depend_on_nested_outputs(self, (self.messages, guardrails, results))

    def _check_source(
        self, messages: Any, sql: str | None, sql_conn_id: str | None, mark_sent_sql: str | None
    ) -> None:
        """Exactly one source, and what it needs (ValueError at DAG parse)."""
        if (messages is None) == (sql is None):
            raise ValueError("give exactly one source: messages= or sql=")
        if sql is not None and not sql_conn_id:
            raise ValueError("sql= needs sql_conn_id=")
        if mark_sent_sql and sql is None:
            raise ValueError("mark_sent_sql= writes back to the sql= source: give sql= too")

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_cascade.exceptions import CascadeError

        try:
            return self._send(context)
        except CascadeError as error:
            self._count_failure(error)
            # The Cascade tab of a failed send shows what failed (problems masked) and
            # what was accepted before; the XCom under FAILURE_KEY holds it.
            from airflow_provider_cascade.results import FAILURE_KEY, failure_summary

            ti = context.get("ti")
            try:
                if ti is not None:
                    ti.xcom_push(key=FAILURE_KEY, value=failure_summary(error))
            except Exception as other:  # the send's own error is the one that matters
                self.log.warning("Could not record the failure for the Cascade tab: %s", other)
            raise

    def _send(self, context: Context) -> dict[str, Any]:
        from airflow_provider_cascade.exceptions import CascadeBatchInDoubtError
        from airflow_provider_cascade.hooks.cascade import CascadeHook
        from airflow_provider_cascade.partitions import sharing_the_budget
        from airflow_provider_cascade.send.campaign import Campaign
        from airflow_provider_cascade.send.ledger import SendLedger

        settings = self._run_settings()
        # A mapped send shares the account's budget with the instances running beside it.
        share = 1
        if self.requests.max_requests_per_second is None:
            share = sharing_the_budget(context, self.max_active_tis_per_dagrun)
        hook = CascadeHook(
            self.cascade_conn_id,
            resend_uncertain=settings.resend_uncertain,
            budget_share=share,
            **self.requests.hook_arguments(),
        )
        if share > 1 and not settings.dry_run:
            self.log.info(
                "Pacing at %.1f requests/s: the connection's %.0f/s shared by %d mapped "
                "instances running at once",
                hook.rate,
                hook.config.max_requests_per_second,
                share,
            )
        if settings.dry_run or not self.durable:
            ledger = SendLedger(None)
        else:
            ledger = SendLedger.from_context(context, self.log, results_path=settings.results_path)
        if ledger.resumed:
            self.log.info(
                "Resuming: %d message(s) were accepted by an earlier try and will not be sent "
                "again; %d were in doubt",
                ledger.accepted_count,
                ledger.uncertain_count,
            )
        guardrails = self.guardrails.steps(self.log, sql_conn_id=self.sql_conn_id)
        with self._source(context) as (source, write_back):
            campaign = Campaign(
                hook, ledger, settings, self.log, guardrails=guardrails, write_back=write_back
            )
            try:
                result = campaign.run(source)
            except CascadeBatchInDoubtError as error:
                raise CascadeBatchInDoubtError(
                    f"{error.reason}; a retry of this task sends it again (on_uncertain='resend')",
                    tracking_ids=error.tracking_ids,
                    status=error.status,
                ) from error
            finally:
                hook.close()
        if result.messages is not None and not result.dry_run:
            context["ti"].xcom_push(key=MESSAGE_IDS_KEY, value=result.message_ids)
        self._describe_outlets(context, result)
        if not result.dry_run:
            self._count(result)
        return result.to_xcom()

    def _count(self, result: CascadeSendResult) -> None:
        """The send's figures as metrics (:mod:`~airflow_provider_cascade.metrics`)."""
        from airflow_provider_cascade.metrics import incr

        tags = self._metric_tags()
        incr("cascade.send.sent", result.sent, **tags)
        incr("cascade.send.rejected", len(result.rejected), **tags)
        incr("cascade.send.in_doubt", len(result.in_doubt), **tags)
        for guardrail, count in (
            ("suppression", result.suppressed),
            ("dedupe", result.duplicate_count),
            ("quiet_hours", result.held_count),
        ):
            incr("cascade.send.suppressed", count, guardrail=guardrail, **tags)

    def _count_failure(self, error: Exception) -> None:
        from airflow_provider_cascade.metrics import incr

        tags = self._metric_tags()
        incr("cascade.send.failed", error=type(error).__name__, **tags)
        incr("cascade.send.sent", len(getattr(error, "accepted", ())), **tags)

    def _metric_tags(self) -> dict[str, str]:
        return {"conn_id": self.cascade_conn_id, "dag_id": self.dag_id, "task_id": self.task_id}

    def _describe_outlets(self, context: Context, result: CascadeSendResult) -> None:
        """Put the send's figures in each outlet asset's event ``extra``, so that a DAG
        scheduled on the asset starts its follow-up with them. Never phones or texts."""
        events = context.get("outlet_events")
        if not self.outlets or events is None:
            return
        figures: dict[str, Any] = {
            "sent": result.sent,
            "rejected": len(result.rejected),
            "in_doubt": len(result.in_doubt),
            "suppressed": result.suppressed,
            "route": result.route,
            "dry_run": result.dry_run,
            "results_path": result.results_path,
        }
        for outlet in self.outlets:
            try:
                events[outlet].extra.update(figures)
            except (KeyError, TypeError, AttributeError) as error:  # not an asset outlet
                self.log.debug("No asset event for outlet %r: %s", outlet, error)

    @property
    def is_dry_run(self) -> bool:
        """``dry_run=`` (not ``dry_run``: BaseOperator has a ``dry_run()`` method)."""
        return self.settings.dry_run

    def _run_settings(self) -> CampaignSettings:
        """The settings with what is rendered only now: the defaults and the results path."""
        from dataclasses import replace

        defaults = {
            name: value
            for name, value in (
                ("from_name", self.from_name),
                ("message_type", self.message_type),
                ("ttl", self.ttl),
                ("scheduled_sent", self.scheduled_sent),
            )
            if value not in (None, "")
        }
        return replace(self.settings, defaults=defaults, results_path=self.results.path or None)

    @contextmanager
    def _source(self, context: Context) -> Iterator[tuple[Source, WriteBack | None]]:
        """The messages, and where accepted ones are written back (None: nowhere)."""
        from airflow_provider_cascade.send.sources import ListSource, SqlSource, as_message_list

        if self.messages is not None:
            yield ListSource(as_message_list(self.messages.current)), None
            return
        assert self.sql is not None and self.sql_conn_id is not None
        with SqlSource(self.sql_conn_id, self.sql, self.parameters) as source:
            write_back: WriteBack | None = None
            if self.mark_sent_sql:
                mark_sent_sql = self.mark_sent_sql
                source.check_write_back(mark_sent_sql, self.log)  # before the first request
                write_back = lambda rows: source.write_back(mark_sent_sql, rows)  # noqa: E731
            yield source, write_back
