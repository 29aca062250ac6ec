"""One incoming message (a reply), read from SMSBAT's callback body and checked.

The documented body is one JSON object: ``idUuid``, ``alphaName``, ``phoneNumber`` (the
sender's digits, without ``+`` in SMSBAT's example), ``text`` and ``dt`` (ISO 8601, UTC).
SMSBAT does not document batching; a JSON array of such objects is taken too, each
checked, and stored together or not at all (refusing it would make SMSBAT retry, then
drop the replies).

A problem names the object (its position in an array), the field as SMSBAT spells it and
the rule; a phone number in it is masked and a reply's text never appears.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from airflow_provider_cascade.phones import e164_digits
from airflow_provider_cascade.privacy import mask_phone

__all__ = ["MAX_BODY_BYTES", "PayloadError", "Reply", "read_replies"]

#: A callback body larger than this is refused (413) before it is read as JSON.
MAX_BODY_BYTES = 64 * 1024
#: The longest ``idUuid`` kept (a UUID is 36 characters; this leaves room, bounds a key).
MAX_REPLY_ID_LENGTH = 128
#: The longest ``alphaName`` kept (sender names are at most 11-20 characters).
MAX_ALPHA_NAME_LENGTH = 64


class PayloadError(ValueError):
    """A callback body that cannot be stored: answered ``422`` with this message."""


@dataclass(frozen=True)
class Reply:
    """A recipient's message, as the provider stores it.

    :param reply_id: SMSBAT's ``idUuid``: the same reply posted again has the same one.
    :param phone: the sender, E.164 (``+380501234567``).
    :param alpha_name: the sender name or bot (``alphaName``) that received it.
    :param text: what the recipient wrote, verbatim.
    :param received_at: when SMSBAT received it (``dt``), timezone-aware UTC.
    """

    reply_id: str
    phone: str
    alpha_name: str
    text: str
    received_at: datetime

    def row(self) -> dict[str, Any]:
        """The statement's named parameters (``reply_id``, ``phone``, ``alpha_name``,
        ``text``, ``received_at`` as ISO 8601 UTC text)."""
        return {
            "reply_id": self.reply_id,
            "phone": self.phone,
            "alpha_name": self.alpha_name,
            "text": self.text,
            "received_at": self.received_at.isoformat(timespec="milliseconds"),
        }

    def __repr__(self) -> str:  # never the number in full, never the text
        return f"Reply({self.reply_id!r}, {mask_phone(self.phone)}, <{len(self.text)} chars>)"


def read_replies(body: bytes) -> list[Reply]:
    """The replies of a callback body (one object, or an array of them).

    :raises PayloadError: not JSON, not an object (or array of objects), or a field
        missing, of the wrong type or unreadable; named as ``replies[2].phoneNumber``.
    """
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise PayloadError("the body is not JSON: SMSBAT sends one JSON object") from None
    if isinstance(document, dict):
        return [_reply(document, "reply")]
    if isinstance(document, list) and document:
        return [_reply(item, f"replies[{n}]") for n, item in enumerate(document)]
    raise PayloadError(
        f"the body is {_kind(document)}: SMSBAT sends an object with idUuid, alphaName, "
        "phoneNumber, text and dt"
    )


def _reply(item: Any, where: str) -> Reply:
    if not isinstance(item, dict):
        raise PayloadError(f"{where} is {_kind(item)}, not an object")
    fields = dict(_fields(item, where))
    return Reply(
        reply_id=fields["idUuid"],
        phone=_phone(fields["phoneNumber"], where),
        alpha_name=fields["alphaName"],
        text=fields["text"],
        received_at=_when(fields["dt"], where),
    )


def _fields(item: dict[str, Any], where: str) -> Iterator[tuple[str, str]]:
    limits = {"idUuid": MAX_REPLY_ID_LENGTH, "alphaName": MAX_ALPHA_NAME_LENGTH}
    for name in ("idUuid", "alphaName", "phoneNumber", "text", "dt"):
        value = item.get(name)
        if name == "phoneNumber" and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if value is None:
            raise PayloadError(f"{where}.{name} is missing")
        if not isinstance(value, str):
            raise PayloadError(f"{where}.{name} must be text, not {_kind(value)}")
        if name in limits and not 0 < len(value.strip()) <= limits[name]:
            raise PayloadError(f"{where}.{name} must be 1 to {limits[name]} characters")
        yield name, value.strip() if name != "text" else value


def _phone(value: str, where: str) -> str:
    digits = e164_digits(value)
    if digits is None:
        raise PayloadError(
            f"{where}.phoneNumber {mask_phone(value)!r} is not an international number "
            "(the digits with the country code, as SMSBAT sends them)"
        )
    return f"+{digits}"


def _when(value: str, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise PayloadError(
            f"{where}.dt {value[:40]!r} is not an ISO 8601 time (2025-01-20T14:30:00.000Z)"
        ) from None
    if moment.tzinfo is None:  # SMSBAT documents dt as UTC
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "text", bool: "true/false"}.get(
        type(value), "a number"
    )
