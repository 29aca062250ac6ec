"""Caps on a whole send: its size (``max_messages``, and the ids an XCom can hold) and its
share of rejected messages (``max_reject_ratio``)."""

from __future__ import annotations

from typing import ClassVar

from airflow_provider_cascade.exceptions import CascadeGuardrailError
from airflow_provider_cascade.send.guardrails.base import Guardrail, Log, Start, Tally

__all__ = ["BRAKE_AFTER", "InlineLimit", "MaxMessages", "MaxRejectRatio"]

#: The rejection brake looks at the share only once this many messages were checked.
BRAKE_AFTER = 100


class MaxMessages(Guardrail):
    """The source is counted before anything is sent; past ``cap`` the send fails (a dry
    run reports the count and goes on).

    A source that cannot be counted ahead (a generator) is capped as it is read: the send
    fails before the batch that takes it past ``cap``, with the batches before it sent.
    """

    name = "max_messages"
    labels: ClassVar[dict[str, str]] = {"counted": "counted"}

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._counted: int | None = None
        self._streamed = False
        self._dry_run = False
        self._log: Log | None = None

    def start(self, start: Start) -> None:
        count = self._counted = start.count()
        self._dry_run, self._log = start.dry_run, start.log
        if count is None:
            self._streamed = True
            return
        if count <= self.cap:
            return
        if start.dry_run:
            start.log.warning(
                "A real send would stop here: %d messages, max_messages=%d", count, self.cap
            )
            return
        raise CascadeGuardrailError(
            f"the source holds {count} messages, more than max_messages={self.cap}: nothing "
            "was sent (check the query's WHERE, or raise max_messages)"
        )

    def checked(self, tally: Tally) -> None:
        if not self._streamed:
            return
        over = tally.seen > self.cap and (self._counted or 0) <= self.cap
        self._counted = tally.seen
        if not over:
            return
        if self._dry_run:
            assert self._log is not None
            self._log.warning(
                "A real send would stop here: more than max_messages=%d messages", self.cap
            )
            return
        raise CascadeGuardrailError(
            f"the function gave more than max_messages={self.cap} messages: stopping before "
            "the batch that passes it; the batches before it stay sent and recorded (a "
            "generator cannot be counted before it is read)"
        )

    def figures(self) -> dict[str, int]:
        return {} if self._counted is None else {"counted": self._counted}


class InlineLimit(Guardrail):
    """A send whose ids can only go inline (no ``results_path`` to offload to, no outbox
    that holds them) fails before the first request when the source holds more than
    ``xcom_inline_limit``: it would fail at the end, after sending them all."""

    name = "xcom_inline_limit"

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._streamed = False

    def start(self, start: Start) -> None:
        count = start.count()
        if count is None:  # a generator: checked as it is read
            self._streamed = True
        elif count > self.limit:
            raise CascadeGuardrailError(
                f"the source holds {count} messages, more than xcom_inline_limit={self.limit} "
                f"whose ids fit the XCom; nothing was sent: {_WHERE_IDS_GO}"
            )

    def checked(self, tally: Tally) -> None:
        if self._streamed and tally.seen > self.limit:
            raise CascadeGuardrailError(
                f"the function gave more than xcom_inline_limit={self.limit} messages, whose "
                "ids fit the XCom: stopping before the batch that passes it; the batches before "
                f"it stay sent and recorded, and a retry does not send them again. {_WHERE_IDS_GO}"
            )


_WHERE_IDS_GO = (
    "set results_path (e.g. 's3://bucket/cascade/{{ run_id }}.jsonl' or a file:// URI) so "
    "their ids are written there, or mark_sent_sql so the outbox holds them"
)


class MaxRejectRatio(Guardrail):
    """With ``on_invalid="skip"``: stop once more than ``limit`` of the messages read so
    far (after at least :data:`BRAKE_AFTER`) were rejected."""

    name = "max_reject_ratio"

    def __init__(self, limit: float) -> None:
        self.limit = limit

    def checked(self, tally: Tally) -> None:
        if tally.seen < BRAKE_AFTER:
            return
        rejected = tally.rejected
        ratio = len(rejected) / tally.seen
        if ratio > self.limit:
            first = rejected[0]
            raise CascadeGuardrailError(
                f"{len(rejected)} of the first {tally.seen} messages were rejected "
                f"({ratio:.1%}), more than max_reject_ratio={self.limit:.1%}: stopping; the "
                "batches already sent stay sent and recorded, and a retry does not send them "
                f"again. First problem: "
                f"{first['ref']}: {first['field']} {first['rule']}"
            )
