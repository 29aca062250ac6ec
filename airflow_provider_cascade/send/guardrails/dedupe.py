"""``dedupe``: one message per recipient (number, or number and message type), the first
the source gives; the later ones are left out, each naming the tracking id it duplicates.

Recipients are keyed exactly (the E.164 number as an integer, times 4 plus the type's
index for ``phone_and_type``): no two recipients are taken for one, and a retry, reading
the source in the same order, finds the same duplicates in any process.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from airflow_provider_cascade.messages import MessageType
from airflow_provider_cascade.send.guardrails.base import Batch, Guardrail, Screened, left_out
from airflow_provider_cascade.send.guardrails.first_seen import FirstSeen

__all__ = ["Dedupe", "DedupeBy"]

DedupeBy = Literal["phone", "phone_and_type"]
#: Each message type's index, for a key of number and type in one integer.
_TYPE_INDEX = {kind: index for index, kind in enumerate(MessageType)}


class Dedupe(Guardrail):
    """Leaves out every message but the first to each recipient."""

    name = "dedupe"
    labels: ClassVar[dict[str, str]] = {"duplicate_count": "duplicates"}

    def __init__(self, by: DedupeBy) -> None:
        self.by = by
        self._first = FirstSeen()  # recipient -> its first tracking id
        self._count = 0

    def screen(self, batch: Batch, now: datetime) -> Screened:
        by_type = self.by == "phone_and_type"
        first_of = self._first.first
        kept = Batch([], [])
        screened = Screened(kept)
        for message, key in zip(batch.messages, batch.keys, strict=True):
            recipient = int(message.to_phone[1:])
            if by_type:
                recipient = recipient * 4 + _TYPE_INDEX[message.message_type]
            first = first_of(recipient, message.tracking_id)
            if first != message.tracking_id:
                screened.left_out.append(left_out(message.tracking_id, duplicate_of=first))
                continue
            kept.messages.append(message)
            kept.keys.append(key)
        self._count += len(screened.left_out)
        return screened

    def figures(self) -> dict[str, int]:
        return {"duplicate_count": self._count}
