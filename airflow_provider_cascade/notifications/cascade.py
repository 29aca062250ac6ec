"""``CascadeNotifier``: page people through Cascade from Airflow callbacks, deadline alerts
and approval steps, sync or async."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.notifier import BaseNotifier

from airflow_provider_cascade.constants import DEFAULT_CONN_ID, MAX_BATCH_SIZE
from airflow_provider_cascade.messages import (
    CascadeMessage,
    MessageType,
    Route,
    SentMessage,
    parse_messages,
)

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_cascade.hooks.cascade import CascadeHook

_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]+")

#: The approver's page (``CascadeNotifier.for_approval``): the dry run's figures and the
#: link, never a recipient's phone or a message's text. Short: it may reach them as SMS.
APPROVAL_TEXT = (
    "{% set plan = ti.xcom_pull(task_ids=forecast_task_id) %}"
    "{{ task.subject }} {{ plan.sent }} message(s) would go ("
    "{% for kind, count in plan.forecast.by_type.items() %}"
    "{{ ', ' if not loop.first else '' }}{{ count }} {{ kind }}{% endfor %}), "
    "{{ plan.forecast.sms.parts }} SMS parts at most; {{ plan.suppressed }} opted out, "
    "{{ plan.forecast.rejected }} invalid. Approve or reject: {{ approval_link }}"
)


class CascadeNotifier(BaseNotifier):
    """Send a ``transaction`` message to each phone when a callback fires.

    ::

        on_failure_callback=CascadeNotifier(
            to_phones=["+380501234567"],
            text="{{ dag.dag_id }} failed: {{ ti.task_id }}",
            from_name="Airflow",
            route="tg_viber",
        )

    Where Airflow awaits notifiers it sends without blocking the event loop
    (:meth:`async_notify`): as a deadline alert's callback (3.1+), Airflow's callback
    trigger builds it with the alert's kwargs and awaits it::

        DeadlineAlert(
            reference=DeadlineReference.DAGRUN_QUEUED_AT,
            interval=timedelta(hours=2),
            callback=AsyncCallback(
                CascadeNotifier,
                kwargs={"to_phones": ["+380501234567"], "from_name": "Airflow",
                        "text": "{{ dag_run.dag_id }} missed its deadline"},
            ),
        )

    In an approval step (``ApprovalOperator(notifiers=[CascadeNotifier.for_approval(...)])``)
    it pages the approver with the dry run's figures and the link to the approval page; a
    page that fails is logged and the approval waits all the same.

    Each message's tracking id names what caused it (dag, task, run, try; a deadline's id)
    plus a short hash of the phone, so a page can be traced back without showing the number.

    :param to_phones: E.164 phone numbers. Templated.
    :param text: the message. Templated against the callback context (a deadline's holds
        ``dag_run`` and ``deadline``; a task's, ``ti``, ``dag``...).
    :param from_name: the sender name. Templated.
    :param cascade_conn_id: the ``cascade`` connection.
    :param route: ``standard`` or ``tg_viber``.
    :param ttl: seconds (default: the transaction recommendation, 86,400).
    :param context: the context Airflow's callback trigger passes (leave it out).
    :raises CascadeValidationError: a phone or the text breaks the contract's rules.
    :raises CascadeError: the service refused or failed the page (not in an approval step).
    """

    template_fields = ("to_phones", "text", "from_name")

    def __init__(
        self,
        *,
        to_phones: Sequence[str] | str,
        text: str,
        from_name: str,
        cascade_conn_id: str = DEFAULT_CONN_ID,
        route: Route | str = Route.STANDARD,
        ttl: int | None = None,
        forecast_task_id: str | None = None,
        context: Context | dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.to_phones = to_phones
        self.text = text
        self.from_name = from_name
        self.cascade_conn_id = cascade_conn_id
        self.route = Route(route)
        self.ttl = ttl
        self.forecast_task_id = forecast_task_id
        # Airflow 3.1+ reads it when awaiting the notifier; older BaseNotifiers take none.
        self.context: Any = context or {}
        if context is not None:
            # Built by Airflow's callback trigger (in the triggerer), which logs these kwargs,
            # phones included, if the callback fails: the phones are masked there first. Not
            # in a task process: there mask_secret sends each value to the supervisor, whose
            # debug log prints the message whole.
            _mask(self.to_phones)

    @classmethod
    def for_approval(
        cls,
        *,
        to_phones: Sequence[str] | str,
        from_name: str,
        forecast_task_id: str = "dry_run",
        **kwargs: Any,
    ) -> CascadeNotifier:
        """The notifier of an approval step (``ApprovalOperator(notifiers=[...])``, 3.1+):
        the approver gets the step's subject, the figures of the dry run
        ``forecast_task_id`` pushed (how many would go, of which type, SMS parts, opted
        out, invalid) and the link to the approval page. The link needs Airflow's
        ``[api] base_url`` (``AIRFLOW__API__BASE_URL``); without it the page says so.
        ``kwargs``: as :class:`CascadeNotifier` (``route``, ``cascade_conn_id``...)."""
        return cls(
            to_phones=to_phones,
            from_name=from_name,
            text=APPROVAL_TEXT,
            forecast_task_id=forecast_task_id,
            **kwargs,
        )

    @property
    def hook(self) -> CascadeHook:
        """A new hook on each call. The notifier keeps no session or lock once it has sent,
        so the DAG holding it can still be deep-copied (Airflow 3.0's ``dag.test()`` does)."""
        # Imported here: DAG files import this module, and parsing them must stay cheap.
        from airflow_provider_cascade.hooks.cascade import CascadeHook

        return CascadeHook(self.cascade_conn_id)

    def _update_context(self, context: Context) -> Context:
        context = super()._update_context(context)
        if self.forecast_task_id is not None:
            context["forecast_task_id"] = self.forecast_task_id  # type: ignore[typeddict-unknown-key]
            context["approval_link"] = self._approval_link(context)  # type: ignore[typeddict-unknown-key]
        return context

    def _approval_link(self, context: Context) -> str:
        task: Any = context.get("task")
        try:
            return str(task.generate_link_to_ui_from_context(context=context))
        except (AttributeError, ValueError) as error:  # not an approval step; no base_url
            self.log.warning("No link to the approval page in the page: %s", error)
            return "the Required actions page of Airflow ([api] base_url is not set)"

    def __call__(self, *args: Any) -> None:
        if not _in_approval_step(args[0] if len(args) == 1 else {}):
            return super().__call__(*args)
        try:
            super().__call__(*args)
        except Exception as error:  # an approval waits whether or not its page went out
            self.log.warning(
                "The approver was not paged (%s: %s); the approval waits all the same",
                type(error).__name__,
                error,
            )

    def notify(self, context: Context) -> None:
        messages = self._pages(context)
        # A few pages: checked above, sent batch after batch on one hook, with its pacing
        # and retries; no send loop (thread pool, ledger, result spool) for them.
        hook = self.hook
        sent: list[SentMessage] = []
        try:
            for start in range(0, len(messages), MAX_BATCH_SIZE):
                sent += hook.send_batch(messages[start : start + MAX_BATCH_SIZE], self.route)
        finally:
            hook.close()
        self._log_sent(sent)

    async def async_notify(self, context: Context) -> None:
        """:meth:`notify` on the async hook: the event loop (the triggerer's) never blocks."""
        from airflow_provider_cascade.hooks.status import CascadeAsyncHook

        messages = self._pages(context)
        sent: list[SentMessage] = []
        async with CascadeAsyncHook(self.cascade_conn_id) as hook:
            for start in range(0, len(messages), MAX_BATCH_SIZE):
                batch = messages[start : start + MAX_BATCH_SIZE]
                sent += await hook.send_batch(batch, self.route)
        self._log_sent(sent)

    def _pages(self, context: Context) -> list[CascadeMessage]:
        phones = [self.to_phones] if isinstance(self.to_phones, str) else list(self.to_phones)
        prefix = _cause(context)
        return parse_messages(
            [
                {
                    "tracking_id": _tracking_id(prefix, phone),
                    "from_name": self.from_name,
                    "to_phone": phone,
                    "message_type": MessageType.TRANSACTION.value,
                    "text": self.text,
                    "ttl": self.ttl,
                }
                for phone in phones
            ],
            recommended_ttl=True,
        )

    def _log_sent(self, sent: list[SentMessage]) -> None:
        ids = ", ".join(s.tracking_id for s in sent)
        self.log.info("Sent %d notification(s): %s", len(sent), ids)


def _in_approval_step(context: Any) -> bool:
    task = context.get("task") if hasattr(context, "get") else None
    return any(cls.__name__ == "HITLOperator" for cls in type(task).__mro__)


def _mask(phones: Sequence[str] | str) -> None:
    """Register the phones with Airflow's secrets masker (``***`` in this process's logs)."""
    from airflow.providers.common.compat.sdk import mask_secret

    for phone in [phones] if isinstance(phones, str) else phones:
        if isinstance(phone, str) and "{{" not in phone:
            mask_secret(phone)


def _cause(context: Context | dict[str, Any]) -> str:
    ti: Any = context.get("ti") or context.get("task_instance")
    dag = context.get("dag")
    # A deadline's context: the run as JSON, and the deadline.
    run: Any = context.get("dag_run")
    run = run if isinstance(run, dict) else {}
    deadline: Any = context.get("deadline")
    try_number = getattr(ti, "try_number", None)
    parts = [
        getattr(dag, "dag_id", None) or getattr(ti, "dag_id", None) or run.get("dag_id") or "dag",
        getattr(ti, "task_id", None),
        context.get("run_id") or getattr(ti, "run_id", None) or run.get("dag_run_id"),
        f"try{try_number}" if try_number is not None else None,
        f"deadline-{deadline['id']}" if isinstance(deadline, dict) and "id" in deadline else None,
    ]
    return ".".join(_UNSAFE.sub("-", str(part)) for part in parts if part)


def _tracking_id(prefix: str, phone: str) -> str:
    digest = hashlib.sha256(phone.encode()).hexdigest()[:10]
    if len(prefix) > 240:  # stay within the 255-character limit, and unique
        prefix = prefix[:229] + "~" + hashlib.sha256(prefix.encode()).hexdigest()[:10]
    return f"{prefix}.{digest}"


#: The function form other providers offer: ``on_failure_callback=send_cascade_notification(...)``.
send_cascade_notification = CascadeNotifier
