"""``CascadeNotifier``: page people through Cascade from Airflow callbacks."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.notifier import BaseNotifier

from airflow_provider_cascade.constants import DEFAULT_CONN_ID, MAX_BATCH_SIZE
from airflow_provider_cascade.messages import MessageType, Route, SentMessage, parse_messages

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_cascade.hooks.cascade import CascadeHook

_UNSAFE = re.compile(r"[^A-Za-z0-9._:-]+")


class CascadeNotifier(BaseNotifier):
    """Send a ``transaction`` message to each phone when a callback fires.

    ::

        on_failure_callback=CascadeNotifier(
            to_phones=["+380501234567"],
            text="{{ dag.dag_id }} failed: {{ ti.task_id }}",
            from_name="Airflow",
            route="tg_viber",
        )

    Each message's tracking id names what caused it (dag, task, run, try) plus a short
    hash of the phone, so a page can be traced back without showing the number.

    :param to_phones: E.164 phone numbers. Templated.
    :param text: the message. Templated against the callback context.
    :param from_name: the sender name. Templated.
    :param cascade_conn_id: the ``cascade`` connection.
    :param route: ``standard`` or ``tg_viber``.
    :param ttl: seconds (default: the transaction recommendation, 86,400).
    :raises CascadeValidationError: a phone or the text breaks the contract's rules.
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
    ) -> None:
        super().__init__()
        self.to_phones = to_phones
        self.text = text
        self.from_name = from_name
        self.cascade_conn_id = cascade_conn_id
        self.route = Route(route)
        self.ttl = ttl

    @property
    def hook(self) -> CascadeHook:
        """A new hook on each call. The notifier keeps no session or lock once it has sent,
        so the DAG holding it can still be deep-copied (Airflow 3.0's ``dag.test()`` does)."""
        # Imported here: DAG files import this module, and parsing them must stay cheap.
        from airflow_provider_cascade.hooks.cascade import CascadeHook

        return CascadeHook(self.cascade_conn_id)

    def notify(self, context: Context) -> None:
        phones = [self.to_phones] if isinstance(self.to_phones, str) else list(self.to_phones)
        prefix = _cause(context)
        messages = parse_messages(
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
        # A few pages: checked above, sent batch after batch on one hook, with its pacing
        # and retries; no send loop (thread pool, ledger, result spool) for them.
        hook = self.hook
        sent: list[SentMessage] = []
        try:
            for start in range(0, len(messages), MAX_BATCH_SIZE):
                sent += hook.send_batch(messages[start : start + MAX_BATCH_SIZE], self.route)
        finally:
            hook.close()
        ids = ", ".join(s.tracking_id for s in sent)
        self.log.info("Sent %d notification(s): %s", len(sent), ids)


def _cause(context: Context) -> str:
    ti: Any = context.get("ti") or context.get("task_instance")
    dag = context.get("dag")
    try_number = getattr(ti, "try_number", None)
    parts = [
        getattr(dag, "dag_id", None) or getattr(ti, "dag_id", None) or "dag",
        getattr(ti, "task_id", None),
        context.get("run_id") or getattr(ti, "run_id", None),
        f"try{try_number}" if try_number is not None else None,
    ]
    return ".".join(_UNSAFE.sub("-", str(part)) for part in parts if part)


def _tracking_id(prefix: str, phone: str) -> str:
    digest = hashlib.sha256(phone.encode()).hexdigest()[:10]
    if len(prefix) > 240:  # stay within the 255-character limit, and unique
        prefix = prefix[:229] + "~" + hashlib.sha256(prefix.encode()).hexdigest()[:10]
    return f"{prefix}.{digest}"


#: The function form other providers offer: ``on_failure_callback=send_cascade_notification(...)``.
send_cascade_notification = CascadeNotifier
