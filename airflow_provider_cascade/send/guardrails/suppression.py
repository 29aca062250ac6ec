"""Suppression: the numbers a send must never reach (opt-outs, complaints, legal holds).

Held as a compact set: every number is its E.164 digits as one 8-byte integer, in 65,536
sorted arrays chosen by the number's low bits. 10,000,000 numbers take 108 MB of peak
memory (80 MB of them the numbers; ``benchmarks/suppression_memory.py``), where a Python
``set`` of the same integers takes 563 MB; a look-up is one bisection of about 150
integers (0.8 us).

A number that cannot be read as international fails the send before anything is sent:
an opt-out the provider cannot read could be a person it would message.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, ClassVar

from airflow_provider_cascade.exceptions import CascadeValidationError, Problem
from airflow_provider_cascade.phones import PhoneSet, e164_digits
from airflow_provider_cascade.privacy import mask_phone
from airflow_provider_cascade.send.guardrails.base import (
    Batch,
    Guardrail,
    Log,
    Screened,
    left_out,
)
from airflow_provider_cascade.suggestions import reject_unknown

__all__ = ["PhoneSet", "Suppress", "Suppression", "e164_digits", "load_suppression"]

#: An unreadable suppression list is reported by its first problems, then a count.
_PROBLEMS_SHOWN = 20


class Suppression:
    """The numbers a send must never reach: the first column of a query, a list, or both.

    ``Suppression(sql="SELECT phone FROM opt_outs", conn_id="crm")``

    :param sql: a query whose first column holds numbers (opt-outs, complaints, legal
        holds), streamed into a compact set (10,000,000 numbers take about 110 MB).
        Templated.
    :param conn_id: the SQL connection it runs on (default: the send's ``sql_conn_id``).
    :param phones: more numbers never to send to. Templated; its rendered form shows only
        how many there are.
    :param parameters: the query's parameters. Templated.
    :param opt_outs: a ``cascade`` connection id whose recipients' opt-outs apply
        (received as replies, kept in the provider's table ``cascade_opt_outs`` on its
        ``replies_conn_id``): a number that replied STOP is left out of the message types
        its opt-out covers (``opt_out_message_types``, default ``promo`` and
        ``viber_survey``), and sent one-time codes and order confirmations as before.
        A connection that stores opt-outs with its own statements is read with ``sql=``.

    Numbers are compared as E.164 (``+380 50 123 45 67``, ``00380501234567`` and
    ``380501234567`` are one number); one that cannot be read as international fails the
    send before anything is sent. A suppressed message is not sent, is counted in the
    result's ``suppressed`` (its tracking id in ``suppressed_ids``) and is not written back.
    """

    template_fields: Sequence[str] = ("sql", "phones", "parameters", "opt_outs")

    def __init__(
        self,
        *,
        sql: str | None = None,
        conn_id: str | None = None,
        phones: Sequence[str | int] | str | None = None,
        parameters: Any = None,
        opt_outs: str | None = None,
        **unknown: Any,
    ) -> None:
        reject_unknown(type(self), unknown)
        if sql is None and phones is None and opt_outs is None:
            raise ValueError("Suppression needs sql= (with conn_id=), phones= or opt_outs=")
        self.sql = sql
        self.opt_outs = opt_outs
        self.conn_id = conn_id
        self.phones = phones
        self.parameters = parameters

    def __repr__(self) -> str:
        return (
            f"Suppression(sql={self.sql!r}, conn_id={self.conn_id!r}, "
            f"phones={_counted(self.phones)}, parameters={self.parameters!r}, "
            f"opt_outs={self.opt_outs!r})"
        )

    def serialize(self) -> dict[str, Any]:
        """Its rendered form (Airflow's Rendered Templates): the numbers only counted."""
        return {
            "sql": self.sql,
            "conn_id": self.conn_id,
            "phones": _counted(self.phones),
            "parameters": self.parameters,
            "opt_outs": self.opt_outs,
        }

    def step(self, default_conn_id: str | None, log: Log) -> Suppress:
        """Read the numbers (before anything is sent) into the guardrail that leaves them out.

        :raises CascadeValidationError: a number that cannot be read.
        """
        from airflow_provider_cascade.send.sources import as_message_list

        phones = [] if self.phones is None else as_message_list(self.phones)
        numbers = load_suppression(
            phones,
            sql=self.sql,
            conn_id=self.conn_id or default_conn_id,
            parameters=self.parameters,
        )
        log.info("Suppressing %d number(s)", len(numbers))
        by_type: dict[str, PhoneSet] = {}
        if self.opt_outs is not None:
            from airflow_provider_cascade.replies.opt_outs import load_opt_outs

            by_type = load_opt_outs(self.opt_outs)
            for kind, opted_out in by_type.items():
                log.info(
                    "Leaving out %d number(s) opted out of %s on %r",
                    len(opted_out),
                    kind,
                    self.opt_outs,
                )
        return Suppress(numbers, by_type)


def _counted(phones: Any) -> str | None:
    """What is shown of ``phones``: how many numbers, never the numbers."""
    if phones is None:
        return None
    if isinstance(phones, str):
        return f"<{len(phones)} characters>"
    if hasattr(phones, "__len__"):
        return f"<{len(phones)} number(s)>"
    return f"<{type(phones).__name__}>"


class Suppress(Guardrail):
    """Leaves out every message to a suppressed number."""

    name = "suppression"
    labels: ClassVar[dict[str, str]] = {"suppressed": "suppressed"}

    def __init__(self, numbers: PhoneSet, by_type: dict[str, PhoneSet] | None = None) -> None:
        self.numbers = numbers
        #: Numbers left out of one message type only (opt-outs), by the type's value.
        self.by_type = by_type or {}
        self._count = 0

    def screen(self, batch: Batch, now: datetime) -> Screened:
        numbers, by_type = self.numbers, self.by_type
        kept = Batch([], [])
        screened = Screened(kept)
        for message, key in zip(batch.messages, batch.keys, strict=True):
            number = int(message.to_phone[1:])
            opted_out = by_type.get(message.message_type.value) if by_type else None
            if number in numbers or (opted_out is not None and number in opted_out):
                screened.left_out.append(left_out(message.tracking_id, suppressed=True))
                continue
            kept.messages.append(message)
            kept.keys.append(key)
        self._count += len(screened.left_out)
        return screened

    def figures(self) -> dict[str, int]:
        return {"suppressed": self._count}


def load_suppression(
    phones: Iterable[Any] = (),
    *,
    sql: str | None = None,
    conn_id: str | None = None,
    parameters: Any = None,
) -> PhoneSet:
    """The suppression set from a literal list and/or the first column of a query.

    :param phones: numbers, in any form :func:`e164_digits` reads.
    :param sql: a query whose first column holds numbers, streamed.
    :param conn_id: the SQL connection it runs on.
    :raises CascadeValidationError: a number that cannot be read, named by its position
        (``Suppression.phones[3]``, ``Suppression.sql row 17``), masked; nothing is sent.
    """
    if sql is not None and conn_id is None:
        raise ValueError("Suppression(sql=...) needs conn_id= (or the send's sql_conn_id=)")
    # Read in a frame of its own: a traceback that shows local variables (Airflow 3.0's
    # does) then shows no number, only the masked problems raised here.
    numbers, problems = _read(phones, sql, conn_id, parameters)
    if problems:
        raise CascadeValidationError(problems)
    return numbers.seal()


def _read(
    phones: Iterable[Any], sql: str | None, conn_id: str | None, parameters: Any
) -> tuple[PhoneSet, list[Problem]]:
    numbers = PhoneSet()
    problems: list[Problem] = []
    unreadable = 0

    def take(value: Any, ref: str, field: str) -> None:
        nonlocal unreadable
        number = e164_digits(value)
        if number is not None:
            numbers.add(number)
            return
        if value is None:  # an empty cell names nobody
            return
        unreadable += 1
        if len(problems) < _PROBLEMS_SHOWN:
            problems.append(
                Problem(
                    ref,
                    field,
                    f"{mask_phone(str(value))!r} is not an international phone number "
                    "(+<country><number>, 00<country><number> or the digits with the "
                    "country code): a suppressed number must be readable",
                    "INVALID_SUPPRESSED_PHONE",
                )
            )

    for position, value in enumerate(phones):
        take(value, f"Suppression.phones[{position}]", "phones")
    if sql is not None and conn_id is not None:
        from airflow_provider_cascade.send.sources import first_column

        for row, (column, value) in enumerate(first_column(conn_id, sql, parameters), start=1):
            take(value, f"Suppression.sql row {row}", column)
    if unreadable > len(problems):
        problems.append(
            Problem(
                "suppression",
                "suppression",
                f"... and {unreadable - len(problems)} more unreadable number(s)",
                "INVALID_SUPPRESSED_PHONE",
            )
        )
    return numbers, problems
