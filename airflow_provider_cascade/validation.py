"""The contract's rules for one message, field by field, and the one shape of a broken rule.

Knows nothing of HTTP or of wire names: a :class:`Problem` names the field as the caller
wrote it (the model passes the spelling in), so ``from_name=`` is reported as
``from_name``, a SQL column by its own name, a wire-keyed dict by the wire name.

Longer than 300 lines: one function per rule of the contract, each short; they are read
(and kept) together as the contract's list.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from enum import Enum
from typing import Any

from airflow_provider_cascade.constants import (
    MAX_SCHEDULE_AHEAD,
    MAX_SURVEY_TEXT_LENGTH,
    MAX_TEXT_LENGTH,
    MAX_TRACKING_ID_LENGTH,
    SCHEDULE_PAST_TOLERANCE,
    SURVEY_OPTIONS_RANGE,
)
from airflow_provider_cascade.privacy import mask_phone, redact_phones


@dataclass(frozen=True, slots=True)
class Problem:
    """One broken rule: which message, which field, what is wrong.

    The same shape everywhere: in a ``CascadeValidationError``, in a send result's
    ``rejected`` list (:meth:`to_json`), and for a ``400`` of the service.

    :param ref: the message: its tracking id, or its position (``message 3``, ``row 17``)
        when it has no usable id.
    :param field: the field as the caller wrote it (``from_name``, a SQL column, or the
        API's name for a dict keyed by the API's names or a ``400``), or ``message`` for
        the whole.
    :param rule: what is wrong, phone numbers already masked.
    :param code: a short machine code in the API's style (``INVALID_PHONE``).
    """

    ref: str
    field: str
    rule: str
    code: str

    def __str__(self) -> str:
        return f"{self.ref}: {self.field} {self.rule}"

    def to_json(self) -> dict[str, str]:
        """The entry of a send result's ``rejected`` list."""
        return {"ref": self.ref, "field": self.field, "rule": self.rule, "code": self.code}


class MessageType(str, Enum):
    """What a message is for; the service picks channels and rules by it."""

    TRANSACTION = "transaction"
    PROMO = "promo"
    VIBER_SURVEY = "viber_survey"
    FLASHCALL = "flashcall"


#: The service's documented TTL recommendation per type, in seconds.
RECOMMENDED_TTL: Mapping[MessageType, int] = {
    MessageType.FLASHCALL: 300,
    MessageType.TRANSACTION: 86_400,
    MessageType.PROMO: 259_200,
    MessageType.VIBER_SURVEY: 604_800,
}

#: The message's fields, in order.
FIELDS: tuple[str, ...] = (
    "tracking_id",
    "from_name",
    "to_phone",
    "message_type",
    "text",
    "ttl",
    "scheduled_sent",
    "survey_options",
)

#: ``(field, rule, code)``: a broken rule before the message is known by name.
Issue = tuple[str, str, str]

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_TRACKING_ID = re.compile(r"[A-Za-z0-9._:-]+")
_TYPES: dict[object, MessageType] = {kind.value: kind for kind in MessageType}


def message_type_of(value: object) -> MessageType | None:
    """The type a value names, or None (for the recommended-ttl look-up before checking)."""
    return value if isinstance(value, MessageType) else _TYPES.get(value)


def usable_id(value: object) -> bool:
    """True for a tracking id that may name its message in an error."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_TRACKING_ID_LENGTH
        and bool(_TRACKING_ID.fullmatch(value))
    )


def check_values(values: list[Any]) -> list[Issue]:
    """Check the values of :data:`FIELDS` (in that order), normalising them in place.

    :return: every broken rule; empty when the message is valid.
    """
    if _plainly_valid(values):
        return []
    issues: list[Issue] = []
    for index, check in enumerate(_CHECKS):
        try:
            values[index] = check(values[index])
        except _Broken as broken:
            issues.append((FIELDS[index], broken.rule, broken.code))
    if not issues:
        issues.extend(_cross_field_issues(values[3], values[4], values[7]))
    return issues


def _plainly_valid(values: list[Any]) -> bool:
    """The common case, decided in one pass: ASCII text (or integer) ids, ASCII names and
    phones, a known type, no schedule or survey. Normalises the id and type in place.
    False means "look closer" (the field checks then name every problem), not "invalid"."""
    tracking_id, from_name, phone, kind, text, ttl, scheduled_sent, survey_options = values
    if type(tracking_id) is int:  # a SQL key
        tracking_id = str(tracking_id)
    kind = _TYPES.get(kind) if type(kind) is str else kind if type(kind) is MessageType else None
    if (
        kind is None
        or scheduled_sent is not None
        or survey_options is not None
        or kind is MessageType.VIBER_SURVEY
        or type(tracking_id) is not str
        or type(from_name) is not str
        or type(phone) is not str
        or not (tracking_id.isascii() and from_name.isascii() and phone.isascii())
        or not 0 < len(tracking_id) <= MAX_TRACKING_ID_LENGTH
        or not from_name.strip()
        or not _TRACKING_ID.fullmatch(tracking_id)
        or not _E164.fullmatch(phone)
        or (ttl is not None and (type(ttl) is not int or ttl <= 0))
    ):
        return False
    if kind is MessageType.FLASHCALL:
        if text is not None:
            return False
    elif (
        type(text) is not str
        or not text.isascii()
        or len(text) > MAX_TEXT_LENGTH
        or not text.strip()
    ):
        return False
    values[0] = tracking_id
    values[3] = kind
    return True


class _Broken(Exception):
    def __init__(self, rule: str, code: str) -> None:
        self.rule = rule
        self.code = code


def _required(value: Any) -> Any:
    if value is None:
        raise _Broken("is required", "MISSING_FIELD")
    return value


def _as_text(value: Any, code: str) -> str:
    if type(value) is str and value.isascii():  # the common case, checked cheaply
        return value
    if isinstance(value, bytes):
        try:
            value = value.decode("utf-8")
        except UnicodeDecodeError:
            raise _Broken("is not valid UTF-8 text", code) from None
    if not isinstance(value, str):
        raise _Broken(f"must be text, not {type(value).__name__}", code)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _Broken("is not valid UTF-8 text (lone surrogate)", code) from None
    return value


def _check_tracking_id(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    tracking_id = _as_text(_required(value), "INVALID_ID")
    if not 0 < len(tracking_id) <= MAX_TRACKING_ID_LENGTH:
        raise _Broken(f"must be 1 to {MAX_TRACKING_ID_LENGTH} characters long", "INVALID_ID")
    if not _TRACKING_ID.fullmatch(tracking_id):
        raise _Broken(
            f"{redact_phones(tracking_id)!r} may only hold letters, digits, '.', '_', ':' and '-'",
            "INVALID_ID",
        )
    return tracking_id


def _check_from_name(value: Any) -> str:
    from_name = _as_text(_required(value), "INVALID_FROM_NAME")
    if not from_name.strip():
        raise _Broken("must not be empty", "INVALID_FROM_NAME")
    return from_name


def _check_phone(value: Any) -> str:
    phone = _as_text(_required(value), "INVALID_PHONE")
    if not _E164.fullmatch(phone):
        raise _Broken(
            f"{mask_phone(phone)!r} is not E.164 (+<country><number>, 7 to 15 digits)",
            "INVALID_PHONE",
        )
    return phone


def _check_message_type(value: Any) -> MessageType:
    kind = message_type_of(_required(value))
    if kind is not None:
        return kind
    allowed = ", ".join(t.value for t in MessageType)
    raise _Broken(f"{value!r} is not one of: {allowed}", "INVALID_MESSAGE_TYPE")


def _check_text(value: Any) -> str | None:
    if value is None:
        return None
    text = _as_text(value, "INVALID_TEXT")
    if len(text) > MAX_TEXT_LENGTH:
        raise _Broken(
            f"is {len(text)} characters long; the provider sends at most {MAX_TEXT_LENGTH}",
            "INVALID_TEXT",
        )
    return text


def _check_ttl(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, Decimal) and value == value.to_integral_value():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Broken(f"must be a whole number of seconds, not {value!r}", "INVALID_TTL")
    if value <= 0:
        raise _Broken(f"must be positive, not {value}", "INVALID_TTL")
    return value


def _check_scheduled_sent(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            value = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
        except ValueError:
            raise _Broken(
                f"{text!r} is not an ISO 8601 date-time", "INVALID_SCHEDULED_SENT"
            ) from None
    if not isinstance(value, datetime):
        raise _Broken(
            f"must be an ISO 8601 string or a datetime, not {type(value).__name__}",
            "INVALID_SCHEDULED_SENT",
        )
    if value.tzinfo is None or value.utcoffset() is None:
        wall = value.replace(microsecond=0).isoformat()
        raise _Broken(
            f"has no time zone: {wall!r}; give one, e.g. '{wall}Z' if it is UTC or "
            f"'{wall}+02:00' with its offset (a template such as "
            "'{{ data_interval_end.add(hours=2) }}' keeps its zone)",
            "INVALID_SCHEDULED_SENT",
        )
    utc = value.astimezone(timezone.utc).replace(microsecond=0)
    now = datetime.now(timezone.utc)
    if utc < now - SCHEDULE_PAST_TOLERANCE:
        raise _Broken(f"{_iso(utc)} is in the past", "INVALID_SCHEDULED_SENT")
    if utc > now + MAX_SCHEDULE_AHEAD:
        raise _Broken(f"{_iso(utc)} is more than 30 days ahead", "INVALID_SCHEDULED_SENT")
    return _iso(utc)


def _check_survey_options(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str | bytes):
        try:
            value = json.loads(value)
        except ValueError:
            raise _Broken("is text but not a JSON array", "INVALID_SURVEY_OPTIONS") from None
    if not isinstance(value, list | tuple):
        raise _Broken(
            f"must be a list of strings, not {type(value).__name__}", "INVALID_SURVEY_OPTIONS"
        )
    low, high = SURVEY_OPTIONS_RANGE
    if not low <= len(value) <= high:
        raise _Broken(
            f"has {len(value)} option(s); a survey needs {low} to {high}",
            "INVALID_SURVEY_OPTIONS",
        )
    if not all(isinstance(option, str) and option.strip() for option in value):
        raise _Broken("must all be non-empty strings", "INVALID_SURVEY_OPTIONS")
    return tuple(value)


def _cross_field_issues(
    kind: MessageType, text: str | None, survey_options: tuple[str, ...] | None
) -> list[Issue]:
    issues: list[Issue] = []
    if kind is MessageType.FLASHCALL:
        if text is not None:
            issues.append(("text", "must be absent for a flashcall", "INVALID_TEXT"))
    elif text is None or not text.strip():
        issues.append(("text", f"is required for {kind.value}", "MISSING_FIELD"))
    if kind is MessageType.VIBER_SURVEY:
        if survey_options is None:
            issues.append(("survey_options", "is required for viber_survey", "MISSING_FIELD"))
        if text is not None and len(text) > MAX_SURVEY_TEXT_LENGTH:
            issues.append(
                (
                    "text",
                    f"is {len(text)} characters; a survey allows {MAX_SURVEY_TEXT_LENGTH}",
                    "INVALID_TEXT",
                )
            )
    elif survey_options is not None:
        issues.append(
            (
                "survey_options",
                f"is only for viber_survey, not {kind.value}",
                "INVALID_SURVEY_OPTIONS",
            )
        )
    return issues


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# In the order of FIELDS: check_values relies on it.
_CHECKS: tuple[Callable[[Any], Any], ...] = (
    _check_tracking_id,
    _check_from_name,
    _check_phone,
    _check_message_type,
    _check_text,
    _check_ttl,
    _check_scheduled_sent,
    _check_survey_options,
)
