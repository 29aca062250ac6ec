"""Guardrails: what a send refuses to do, and whom it leaves out.

A DAG gives them as one value, :class:`CascadeGuardrails`; each becomes one step of the
send pipeline (:class:`~airflow_provider_cascade.send.guardrails.base.Guardrail`), in the
order :meth:`CascadeGuardrails.steps` lists them. Light to import: DAG files build these.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow_provider_cascade.send.guardrails.base import Guardrail, Log
from airflow_provider_cascade.send.guardrails.caps import MaxMessages, MaxRejectRatio
from airflow_provider_cascade.send.guardrails.dedupe import Dedupe, DedupeBy
from airflow_provider_cascade.send.guardrails.quiet_hours import KeepQuiet, QuietHours
from airflow_provider_cascade.send.guardrails.suppression import Suppress, Suppression
from airflow_provider_cascade.suggestions import reject_unknown

__all__ = ["FIGURES", "CascadeGuardrails", "QuietHours", "Suppression"]

#: Every guardrail's figures: the result's field -> its name in a forecast and the UI.
FIGURES: dict[str, str] = {
    field: label
    for guardrail in (Suppress, Dedupe, KeepQuiet)
    for field, label in guardrail.labels.items()
}


class CascadeGuardrails:
    """What a send must not do, checked before and while it sends.

    ``CascadeGuardrails(max_messages=50_000, dedupe="phone",
    suppress=Suppression(sql="SELECT phone FROM opt_outs"), quiet_hours=QuietHours("21:00",
    "08:00"))``

    :param max_messages: a safety cap: the source is counted first (``SELECT COUNT(*) FROM
        (<sql>) AS q`` with the same parameters, on the same connection; a list's length)
        and the send fails before sending anything when it holds more. A dry run reports
        the count (``counted``) and does not fail.
    :param max_reject_ratio: with ``on_invalid="skip"``: stop the send once more than this
        share of the messages read so far (after at least 100) were rejected; what was
        sent before stays sent and recorded.
    :param dedupe: ``"phone"``: one message per number, the first the source gives;
        ``"phone_and_type"``: one per number and message type. The others are not sent
        and are listed in the result's ``duplicates`` with the tracking id they duplicate,
        across batches and task retries (the source read in the same order).
    :param suppress: a :class:`Suppression`: numbers never to send to. Templated.
    :param quiet_hours: a :class:`QuietHours`: when, in the recipient's local time,
        messages of some types are not delivered.
    :raises ValueError: a value out of range (at DAG parse).
    :raises TypeError: an argument it does not take, with the one most likely meant.
    """

    template_fields: Sequence[str] = ("suppress",)

    def __init__(
        self,
        *,
        max_messages: int | None = None,
        max_reject_ratio: float | None = None,
        dedupe: DedupeBy | None = None,
        suppress: Suppression | None = None,
        quiet_hours: QuietHours | None = None,
        **unknown: Any,
    ) -> None:
        reject_unknown(type(self), unknown)
        if max_messages is not None and max_messages < 1:
            raise ValueError(f"max_messages must be 1 or more, not {max_messages}")
        if max_reject_ratio is not None and not 0 <= max_reject_ratio < 1:
            raise ValueError(
                f"max_reject_ratio must be at least 0 and below 1, not {max_reject_ratio}"
            )
        if dedupe not in (None, "phone", "phone_and_type"):
            raise ValueError(f"dedupe must be 'phone' or 'phone_and_type', not {dedupe!r}")
        if suppress is not None and not isinstance(suppress, Suppression):
            raise TypeError(
                f"suppress= takes a Suppression(sql=..., conn_id=..., phones=...), not "
                f"{type(suppress).__name__}"
            )
        if quiet_hours is not None and not isinstance(quiet_hours, QuietHours):
            raise TypeError(
                "quiet_hours= takes a QuietHours('21:00', '08:00', types=..., zones=..., "
                f"policy=...), not {type(quiet_hours).__name__}"
            )
        self.max_messages = max_messages
        self.max_reject_ratio = max_reject_ratio
        self.dedupe = dedupe
        self.suppress = suppress
        self.quiet_hours = quiet_hours

    def __repr__(self) -> str:
        given = ", ".join(f"{name}={value!r}" for name, value in self._given().items())
        return f"CascadeGuardrails({given})"

    def serialize(self) -> dict[str, Any]:
        """Its rendered form (Airflow's Rendered Templates): no phone, no text."""
        return {
            name: value.serialize()
            if isinstance(value, Suppression)
            else repr(value)
            if isinstance(value, QuietHours)
            else value
            for name, value in self._given().items()
        }

    def _given(self) -> dict[str, Any]:
        names = ("max_messages", "max_reject_ratio", "dedupe", "suppress", "quiet_hours")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}

    def check(self, *, on_invalid: str, sql_conn_id: str | None) -> None:
        """What depends on the send's other arguments.

        :raises ValueError: ``max_reject_ratio`` without ``on_invalid="skip"``, or a
            suppression query without a connection.
        """
        if self.max_reject_ratio is not None and on_invalid != "skip":
            raise ValueError(
                "max_reject_ratio= limits what on_invalid='skip' leaves out: set it too"
            )
        suppress = self.suppress
        without_connection = suppress is not None and suppress.sql is not None
        if without_connection and not (suppress and suppress.conn_id) and not sql_conn_id:
            raise ValueError("Suppression(sql=...) needs conn_id= (or the send's sql_conn_id=)")

    def steps(self, log: Log, *, sql_conn_id: str | None = None) -> list[Guardrail]:
        """The guardrails as steps of one send, in the order they apply (suppression reads
        its numbers now: call this at execute, before anything is sent)."""
        steps: list[Guardrail] = []
        if self.max_messages is not None:
            steps.append(MaxMessages(self.max_messages))
        if self.suppress is not None:
            steps.append(self.suppress.step(sql_conn_id, log))
        if self.dedupe is not None:
            steps.append(Dedupe(self.dedupe))
        if self.quiet_hours is not None:
            steps.append(KeepQuiet(self.quiet_hours))
        if self.max_reject_ratio is not None:
            steps.append(MaxRejectRatio(self.max_reject_ratio))
        return steps
