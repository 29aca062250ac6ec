"""What a dry run answers before a campaign: how many of what, to where, costing how many
SMS parts if every message fell back to SMS, and what each guardrail would do.

SMS parts follow GSM 03.38: a text wholly in the GSM-7 alphabet takes 160 characters in
one part and 153 a part when split (the characters of the extension table count twice);
any other character makes the whole text UCS-2: 70 in one part, 67 a part when split
(counted in UTF-16 units, so an emoji counts twice).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from airflow_provider_cascade.messages import CascadeMessage
from airflow_provider_cascade.send.guardrails.quiet_hours import calling_code

__all__ = ["CampaignForecast", "sms_parts"]

_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

Encoding = Literal["gsm7", "ucs2"]


def sms_parts(text: str) -> tuple[Encoding, int]:
    """The encoding an SMS of ``text`` needs and how many parts it takes."""
    septets = 0
    for char in text:
        if char in _GSM7_BASIC:
            septets += 1
        elif char in _GSM7_EXTENSION:
            septets += 2
        else:
            units = len(text.encode("utf-16-le")) // 2
            return "ucs2", 1 if units <= 70 else -(-units // 67)
    return "gsm7", 1 if septets <= 160 else -(-septets // 153)


@dataclass
class CampaignForecast:
    """Counts of a dry run, built message by message (:meth:`add`) and by the guardrails."""

    by_type: Counter[str] = field(default_factory=Counter)
    by_calling_code: Counter[str] = field(default_factory=Counter)
    sms_messages: Counter[str] = field(default_factory=Counter)
    sms_parts: int = 0

    def add(self, messages: Iterable[CascadeMessage]) -> None:
        """Count messages that would be sent."""
        for message in messages:
            self.by_type[message.message_type.value] += 1
            self.by_calling_code[calling_code(message.to_phone) or "unknown"] += 1
            if message.text:
                encoding, parts = sms_parts(message.text)
                self.sms_messages[encoding] += 1
                self.sms_parts += parts

    def to_json(self, **guardrails: int) -> dict[str, Any]:
        """The ``forecast`` of a dry run's result; ``guardrails`` are the counts of what
        each guardrail would move or leave out (``scheduled_by_quiet_hours``,
        ``suppressed``, ``duplicates``, ``held``, ``rejected``)."""
        return {
            "by_type": dict(sorted(self.by_type.items())),
            "by_calling_code": dict(self.by_calling_code.most_common()),
            "sms": {
                "gsm7_messages": self.sms_messages["gsm7"],
                "ucs2_messages": self.sms_messages["ucs2"],
                "parts": self.sms_parts,
            },
            **guardrails,
        }
