"""``CascadeSendOperator``: send a batch of messages from XCom, a literal list, or SQL."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence, Sized
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_cascade.constants import (
    DEFAULT_CONN_ID,
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_XCOM_INLINE_LIMIT,
    MAX_BATCH_SIZE,
)
from airflow_provider_cascade.privacy import mask_phone
from airflow_provider_cascade.quiet_hours import QuietHours, QuietPolicy
from airflow_provider_cascade.settings import CampaignSettings, Dedupe, OnInvalid, OnUncertain
from airflow_provider_cascade.suggestions import ARGUMENT_SYNONYMS, check_arguments
from airflow_provider_cascade.wire import Route

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_cascade.campaign import WriteBack
    from airflow_provider_cascade.results import CascadeSendResult
    from airflow_provider_cascade.sources import Source
    from airflow_provider_cascade.suppression import PhoneSet

# The send machinery (requests, tenacity, the campaign loop) is imported inside execute():
# every scheduler and DAG processor parse imports this module, and that must stay cheap.

#: XCom key under which the message ids (a list, in send order) are pushed when inline.
MESSAGE_IDS_KEY = "message_ids"
#: The hook arguments the operator sets from its own: not to be given in ``hook_params``.
_HOOK_ARGUMENTS_OF_THE_OPERATOR = {
    "cascade_conn_id": "cascade_conn_id",
    "max_requests_per_second": "max_requests_per_second",
    "resend_uncertain": "on_uncertain",
    "budget_share": "max_active_tis_per_dagrun",
}
#: Fields a preview shows as they are (neither personal nor bulky); to_phone is masked, the
#: text and survey options shown by their size, any other key counted.
_PREVIEW_KEPT = frozenset({"tracking_id", "from_name", "message_type", "ttl", "scheduled_sent"})


class CascadeSendOperator(BaseOperator):
    """Send messages through the SMSBAT Cascade API, in batches, exactly once per message.

    Give exactly one source:

    :param messages: a list of dicts (``tracking_id``/``id``, ``from_name``, ``to_phone``,
        ``message_type``, ``text``, ``ttl``, ``scheduled_sent``, ``survey_options``; the
        API's own names work too) or ``CascadeMessage`` objects; literal, templated, or an
        upstream task's output (``messages=build.output``). A JSON text of such a list is
        parsed. Templated.
    :param sql: a query (or a ``.sql`` file) whose columns are those fields; rows are
        streamed ``batch_size`` at a time, never fetched all at once. NULL means "use the
        default". Templated.
    :param sql_conn_id: any common-sql connection (PostgreSQL, MySQL, SQLite...).
    :param parameters: the query's parameters. Templated.

    Defaults for fields a message leaves out (or sets to None):

    :param from_name: the sender name. Templated.
    :param message_type: ``transaction``, ``promo``, ``viber_survey`` or ``flashcall``. Templated.
    :param ttl: seconds; when still missing, the service's recommendation for the type
        (300 flashcall, 86,400 transaction, 259,200 promo, 604,800 survey).
    :param scheduled_sent: when to deliver, e.g. ``"{{ data_interval_end.add(hours=2) }}"``;
        normalised to UTC. Templated.

    How to send:

    :param cascade_conn_id: the ``cascade`` connection.
    :param route: ``standard`` (every channel in turn) or ``tg_viber`` (Telegram and Viber first).
    :param batch_size: messages per request, 1 to 1,000 (default 1,000).
    :param max_requests_per_second: client-side pacing; default the connection's (80),
        the account's budget: a mapped send divides it by the instances that can run at
        once (``max_active_tis_per_dagrun``, or the mapped count when smaller).
    :param max_in_flight: requests in flight at once on the pooled session (default 8),
        so validating the next batch overlaps the network; pacing still applies.
    :param hook_params: more :class:`CascadeHook` arguments (``max_retries``,
        ``retry_wait``, ``max_retry_wait``, ``timeout``); those the operator has an
        argument for (``max_requests_per_second``, ``on_uncertain``...) raise ValueError.
    :param dry_run: validate everything and return the result it would send; send nothing.
    :param on_invalid: ``fail`` (default): an invalid message fails the task before its
        batch is sent (for ``messages=`` before anything is sent), with ONE error listing
        every problem; ``skip``: send the valid ones and list the others in ``rejected``.
    :param on_uncertain: a batch whose fate is unknown (5xx, timeout, reset after the request
        went out, or a worker killed mid-request): ``resend`` (default, at-least-once) sends
        it again (retries, then the next task try); ``skip`` (at-most-once) never re-sends it
        and lists its tracking ids in ``in_doubt``.
    :param mark_sent_sql: with ``sql=``: run after each accepted batch on the same connection,
        once per message with named parameters ``message_id``, ``tracking_id``, ``sent_at``
        (``%(message_id)s`` or ``:message_id`` per your driver), then committed; checked
        before the first request (placeholders, then ``EXPLAIN``). Templated.
    :param xcom_inline_limit: past this many messages, the ids go to ``results_path``;
        without one, a send with ``mark_sent_sql`` keeps the first ids (``truncated``) and
        a send without either fails before sending when the source holds more.
    :param results_path: an ``ObjectStoragePath`` URI (``s3://...``, ``file:///...``) for
        the JSON Lines id mapping of large sends. Templated. While the send runs, each
        accepted batch's ids also go to ``<results_path>.parts/`` (removed once the
        results file is written), so a retry can tell what was sent.
    :param max_messages: a safety cap: the source is counted first (``SELECT COUNT(*) FROM
        (<sql>) AS q`` with the same parameters, on the same connection; a list's length)
        and the send fails before sending anything when it holds more. A dry run reports
        the count (``counted``) and does not fail.
    :param max_reject_ratio: with ``on_invalid="skip"``: stop the send once more than this
        share of the messages seen so far (after at least 100) were rejected; what was
        sent before stays sent and recorded.
    :param dedupe: ``"phone"``: send one message per number, the first the source gives;
        ``"phone_and_type"``: one per number and message type. The others are not sent
        and are listed in the result's ``duplicates`` with the tracking id they duplicate;
        across batches of a streamed source and across task retries (the source read in
        the same order).
    :param suppress_sql: a query whose first column holds numbers never to send to
        (opt-outs, complaints, legal holds), streamed into a compact set (10,000,000
        numbers take about 110 MB); run on ``suppress_conn_id``. Templated.
    :param suppress_conn_id: the SQL connection of ``suppress_sql`` (default ``sql_conn_id``).
    :param suppress_phones: more numbers never to send to. Templated. Numbers of both are
        compared as E.164 (``+380 50 123 45 67``, ``00380501234567`` and ``380501234567``
        are one number); one that cannot be read as international fails the send before
        anything is sent. A suppressed message is not sent, is counted in the result's
        ``suppressed`` (its tracking id in ``suppressed_ids``) and is not written back.
    :param quiet_hours: ``("21:00", "08:00")``: messages of ``quiet_hours_types`` are not
        delivered inside that window of the recipient's local time, whose zone comes from
        the number (country and area code, the ``phonenumbers`` library); a number in
        several zones gets the time allowed in all of them.
    :param quiet_hours_types: the types held (default ``promo`` and ``viber_survey``).
    :param quiet_hours_zones: country calling code -> IANA zone (``{"7": "Europe/Moscow"}``),
        used where the number's zones share no allowed time or the library cannot place
        it; without one such a message is held, listed in the result's ``held`` with why.
    :param quiet_hours_policy: ``schedule`` (default): ``scheduled_sent`` becomes the
        window's end in UTC (also for a message already scheduled inside it; moved past the
        30-day limit it is rejected); ``skip``: it is not sent and is listed in ``held``.
    :param durable: keep the send's progress in the task state store so a retry never
        re-sends an accepted batch (Airflow 3.3+; the ``ResumableJobMixin`` convention).
        ``False``: no state-store writes, a retry sends everything again.

    With ``outlets=[Asset(...)]``, each outlet's asset event carries the figures in its
    ``extra``: ``sent``, ``rejected``, ``in_doubt``, ``suppressed``, ``route``,
    ``dry_run``, ``results_path`` (never phones or texts).

    :return: (XCom) :class:`~airflow_provider_cascade.results.CascadeSendResult` as a dict:
        ``route``, ``sent``, ``batches``, ``dry_run``, ``rejected``, ``in_doubt``,
        ``messages`` (``{"message_id", "tracking_id"}`` in send order, or None when
        offloaded), ``results_path``, and the guardrails' ``counted``, ``duplicates``,
        ``suppressed``, ``suppressed_ids``, ``held``, ``rescheduled``, and ``timeline``
        (seconds, messages sent: the UI's chart); a dry run adds
        ``forecast`` (counts by type and calling code, SMS parts, what each guardrail would do).
        The ids alone are also pushed under the XCom key
        ``message_ids`` when inline. Read either form with ``CascadeSendResult.load``.
    :raises CascadeValidationError: invalid input (``on_invalid="fail"``), an unreadable
        suppressed number, or a 400.
    :raises CascadeGuardrailError: ``max_messages`` or ``max_reject_ratio`` stopped it.
    :raises CascadeStatementError: ``mark_sent_sql`` cannot run on its connection (before
        anything is sent).
    :raises CascadeWriteBackError: the database failed while marking accepted messages:
        the send stopped at once; a retry marks them without sending them again.
    :raises CascadeAuthError: the credentials were refused.
    :raises CascadeConnectionError: ``cascade_conn_id`` is not a ``cascade`` connection.
    :raises CascadeBatchInDoubtError: a batch in doubt with ``on_uncertain="resend"``:
        the task's retry sends it again; batches accepted before are not re-sent.
    :raises CascadeError: anything else the hook raises; bad arguments raise ValueError.

    Errors a retry cannot fix (validation, statement, guardrail, credentials, connection
    type) fail the task without using its retries; on 3.3+ ``retry_policy=
    CascadeRetryPolicy()`` also waits out a 429 for its ``Retry-After``.

    Retries never re-send what the service accepted: on Airflow 3.3+ each batch's progress
    is kept in the task state store. Older Airflow logs a warning; pair ``sql=`` selecting
    unsent rows with ``mark_sent_sql`` to stay idempotent there.
    """

    template_fields: Sequence[str] = (
        "messages",
        "sql",
        "parameters",
        "from_name",
        "message_type",
        "scheduled_sent",
        "mark_sent_sql",
        "results_path",
        "suppress_sql",
        "suppress_phones",
    )
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers: ClassVar[dict[str, str]] = {
        "sql": "sql",
        "mark_sent_sql": "sql",
        "suppress_sql": "sql",
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
        from_name: str | None = None,
        message_type: str | None = None,
        ttl: int | None = None,
        scheduled_sent: Any = None,
        cascade_conn_id: str = DEFAULT_CONN_ID,
        route: Route | str = Route.STANDARD,
        batch_size: int = MAX_BATCH_SIZE,
        max_requests_per_second: float | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        hook_params: Mapping[str, Any] | None = None,
        dry_run: bool = False,
        on_invalid: OnInvalid = "fail",
        on_uncertain: OnUncertain = "resend",
        mark_sent_sql: str | None = None,
        xcom_inline_limit: int = DEFAULT_XCOM_INLINE_LIMIT,
        results_path: str | None = None,
        durable: bool = True,
        max_messages: int | None = None,
        max_reject_ratio: float | None = None,
        dedupe: Dedupe | None = None,
        suppress_sql: str | None = None,
        suppress_conn_id: str | None = None,
        suppress_phones: Sequence[str | int] | None = None,
        quiet_hours: Sequence[str] | None = None,
        quiet_hours_types: Sequence[str] | None = None,
        quiet_hours_zones: Mapping[str, str] | None = None,
        quiet_hours_policy: QuietPolicy = "schedule",
        **kwargs: Any,
    ) -> None:
        check_arguments(type(self), kwargs, ARGUMENT_SYNONYMS)
        super().__init__(**kwargs)
        if (messages is None) == (sql is None):
            raise ValueError("give exactly one source: messages= or sql=")
        if sql is not None and not sql_conn_id:
            raise ValueError("sql= needs sql_conn_id=")
        if mark_sent_sql and sql is None:
            raise ValueError("mark_sent_sql= writes back to the sql= source: give sql= too")
        if suppress_sql is not None and not (suppress_conn_id or sql_conn_id):
            raise ValueError("suppress_sql= needs suppress_conn_id= (or sql_conn_id=)")
        if quiet_hours is None and (quiet_hours_types or quiet_hours_zones):
            raise ValueError("quiet_hours_types= and quiet_hours_zones= need quiet_hours= too")
        clashes = sorted(set(hook_params or ()) & set(_HOOK_ARGUMENTS_OF_THE_OPERATOR))
        if clashes:
            raise ValueError(
                "hook_params may not set "
                + ", ".join(
                    f"{name!r} (use the operator's {_HOOK_ARGUMENTS_OF_THE_OPERATOR[name]}=)"
                    for name in clashes
                )
            )
        # Every limit and mode, checked once (ValueError here, at DAG parse).
        self.settings = CampaignSettings(
            route=Route(route),
            batch_size=batch_size,
            dry_run=dry_run,
            on_invalid=on_invalid,
            on_uncertain=on_uncertain,
            xcom_inline_limit=xcom_inline_limit,
            max_in_flight=max_in_flight,
            max_messages=max_messages,
            max_reject_ratio=max_reject_ratio,
            dedupe=dedupe,
            quiet_hours=None
            if quiet_hours is None
            else QuietHours.of(
                quiet_hours, quiet_hours_types, quiet_hours_zones, quiet_hours_policy
            ),
        )
        self.messages = messages
        self.sql = sql
        self.sql_conn_id = sql_conn_id
        self.parameters = parameters
        self.from_name = from_name
        self.message_type = message_type
        self.ttl = ttl
        self.scheduled_sent = scheduled_sent
        self.cascade_conn_id = cascade_conn_id
        self.max_requests_per_second = max_requests_per_second
        self.hook_params = dict(hook_params or {})
        self.mark_sent_sql = mark_sent_sql
        self.results_path = results_path
        self.durable = durable
        self.suppress_sql = suppress_sql
        self.suppress_conn_id = suppress_conn_id or sql_conn_id
        self.suppress_phones = suppress_phones
        # Rendering replaces ``messages`` by a masked preview (rendered fields are shown in
        # the UI and stored); the real list is kept here.
        self._messages_template = messages
        self._rendered_messages: Any = None
        self._suppress_phones_template = suppress_phones  # the same for suppress_phones
        self._rendered_suppress_phones: Any = suppress_phones

    def _do_render_template_fields(
        self,
        parent: Any,
        template_fields: Any,
        context: Any,
        jinja_env: Any,
        seen_oids: set[int],
    ) -> None:
        if parent is self:  # a re-render starts from the templates
            self.messages = self._messages_template
            self.suppress_phones = self._suppress_phones_template
        super()._do_render_template_fields(parent, template_fields, context, jinja_env, seen_oids)
        if parent is self:
            if self.messages is not None:
                self._rendered_messages = self.messages
                self.messages = masked_preview(self.messages)
            self._rendered_suppress_phones = self.suppress_phones
            self.suppress_phones = counted_phones(self.suppress_phones)

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow_provider_cascade.exceptions import CascadeError

        try:
            return self._send(context)
        except CascadeError as error:
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
        from airflow_provider_cascade.campaign import Campaign
        from airflow_provider_cascade.exceptions import CascadeBatchInDoubtError
        from airflow_provider_cascade.hooks.cascade import CascadeHook
        from airflow_provider_cascade.ledger import SendLedger
        from airflow_provider_cascade.partitions import sharing_the_budget

        settings = self._run_settings()
        # A mapped send shares the account's budget with the instances running beside it.
        share = 1
        if self.max_requests_per_second is None:
            share = sharing_the_budget(context, self.max_active_tis_per_dagrun)
        hook = CascadeHook(
            self.cascade_conn_id,
            max_requests_per_second=self.max_requests_per_second,
            resend_uncertain=settings.resend_uncertain,
            budget_share=share,
            **self.hook_params,
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
        suppression = self._suppression()
        with self._source() as (source, write_back):
            campaign = Campaign(
                hook, ledger, settings, self.log, write_back=write_back, suppression=suppression
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
        return result.to_xcom()

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
        """The settings with what is rendered only now: the defaults and ``results_path``."""
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
        return replace(self.settings, defaults=defaults, results_path=self.results_path or None)

    def _suppression(self) -> PhoneSet | None:
        """The numbers never to send to, read before anything is sent."""
        if self.suppress_sql is None and self._rendered_suppress_phones is None:
            return None
        from airflow_provider_cascade.sources import as_message_list
        from airflow_provider_cascade.suppression import load_suppression

        numbers = load_suppression(
            as_message_list(self._rendered_suppress_phones or []),
            sql=self.suppress_sql,
            conn_id=self.suppress_conn_id,
        )
        self.log.info("Suppressing %d number(s)", len(numbers))
        return numbers

    @contextmanager
    def _source(self) -> Iterator[tuple[Source, WriteBack | None]]:
        from airflow_provider_cascade.sources import ListSource, SqlSource, as_message_list

        if self.sql is None:
            value = (
                self._rendered_messages if self._rendered_messages is not None else self.messages
            )
            yield ListSource(as_message_list(value)), None
            return
        assert self.sql_conn_id is not None
        with SqlSource(self.sql_conn_id, self.sql, self.parameters) as source:
            write_back: WriteBack | None = None
            if self.mark_sent_sql:
                mark_sent_sql = self.mark_sent_sql
                source.check_write_back(mark_sent_sql, self.log)  # before the first request
                write_back = lambda rows: source.write_back(mark_sent_sql, rows)  # noqa: E731
            yield source, write_back


def masked_preview(messages: Any, limit: int = 20) -> Any:
    """What the UI shows of ``messages``: the known fields of the first ``limit``, phones
    masked, texts and survey options as their size, and how many other keys each had (a
    misnamed key's value is never shown: ``phone`` may hold a number)."""
    from airflow_provider_cascade.messages import field_for_key

    if isinstance(messages, str):
        return f"<{len(messages)} characters>"
    if isinstance(messages, Mapping):  # refused when sent; shown masked all the same
        return masked_preview([messages], limit)
    if not isinstance(messages, Sequence):
        return f"<{type(messages).__name__}>"
    preview: list[Any] = []
    for item in messages[:limit]:
        if isinstance(item, Mapping):
            shown = {}
            for key, value in item.items():
                field = field_for_key(str(key))
                if field in _PREVIEW_KEPT:
                    shown[key] = value
                elif field == "to_phone":
                    shown[key] = mask_phone(value)
                elif field is not None:  # text, survey_options: their size only
                    size = len(value) if isinstance(value, Sized) else 1
                    shown[key] = f"<{size} {'characters' if field == 'text' else 'options'}>"
            others = len(item) - len(shown)
            if others:
                shown["<other keys>"] = others
            preview.append(shown)
        else:
            preview.append(repr(item))
    if len(messages) > limit:
        preview.append(f"... and {len(messages) - limit} more")
    return preview


def counted_phones(phones: Any) -> Any:
    """What the UI shows of ``suppress_phones``: how many numbers, never the numbers."""
    if phones is None or isinstance(phones, str):
        return phones if phones is None else f"<{len(phones)} characters>"
    if isinstance(phones, Sized):
        return f"<{len(phones)} number(s)>"
    return f"<{type(phones).__name__}>"
