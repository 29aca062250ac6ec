"""The Cascade message model: every rule of the contract, and the only place wire names live.

A :class:`CascadeMessage` is valid by construction: creating one checks every documented
rule and raises :class:`~airflow_provider_cascade.exceptions.CascadeValidationError`
listing all that is wrong. :func:`parse_messages` turns a whole batch of dicts (Pythonic or
wire keys) into messages, or raises ONE error naming every problem of every message, so
that nothing is sent from a batch known to be invalid.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum
from typing import Any, NamedTuple

from airflow_provider_cascade.exceptions import CascadeValidationError, Problem


class MessageType(str, Enum):
    """What a message is for; the service picks channels and rules by it."""

    TRANSACTION = "transaction"
    PROMO = "promo"
    VIBER_SURVEY = "viber_survey"
    FLASHCALL = "flashcall"


class Route(str, Enum):
    """Which send endpoint routes the batch."""

    STANDARD = "standard"
    """Every available channel in sequence."""
    TG_VIBER = "tg_viber"
    """Telegram and Viber first, for faster delivery."""

    @property
    def path(self) -> str:
        return _ROUTE_PATHS[self]


_ROUTE_PATHS = {
    Route.STANDARD: "/api/CascadeMessage/send_message/async",
    Route.TG_VIBER: "/api/CascadeMessage/send_message/tg-viber/async",
}

#: The service's documented TTL recommendation per type, in seconds.
RECOMMENDED_TTL: Mapping[MessageType, int] = {
    MessageType.FLASHCALL: 300,
    MessageType.TRANSACTION: 86_400,
    MessageType.PROMO: 259_200,
    MessageType.VIBER_SURVEY: 604_800,
}

#: The most messages one request carries (the service's bulk guidance: 100-1,000).
MAX_BATCH_SIZE = 1_000
MAX_TRACKING_ID_LENGTH = 255
MAX_SURVEY_TEXT_LENGTH = 85
SURVEY_OPTIONS_RANGE = (2, 5)
MAX_SCHEDULE_AHEAD = timedelta(days=30)
#: How far in the past a scheduled time may be and still be sent (clock skew, send delay).
SCHEDULE_PAST_TOLERANCE = timedelta(minutes=5)
#: A guard of the provider's own, not a documented limit: no channel carries more, and a
#: runaway template should fail loudly rather than be sent.
MAX_TEXT_LENGTH = 4_096

_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_TRACKING_ID = re.compile(r"[A-Za-z0-9._:-]+")

# Pythonic name -> wire name. The wire names appear nowhere else in the package.
_WIRE_NAMES = {
    "tracking_id": "id",
    "from_name": "fromName",
    "to_phone": "toPhone",
    "message_type": "messageType",
    "text": "text",
    "ttl": "ttl",
    "scheduled_sent": "scheduledSent",
    "survey_options": "surveyOptions",
}
_FIELD_BY_KEY = {**{name: name for name in _WIRE_NAMES}, **{w: n for n, w in _WIRE_NAMES.items()}}
_FIELD_BY_FOLDED_KEY = {key.lower(): name for key, name in _FIELD_BY_KEY.items()}
_TYPES: dict[object, MessageType] = {kind.value: kind for kind in MessageType}
FIELDS: tuple[str, ...] = tuple(_WIRE_NAMES)
"""The Pythonic field names a message mapping may use (``id`` and wire names work too)."""


def field_for_column(name: str) -> str | None:
    """The message field a column or key names (any case, Pythonic or wire), or None."""
    return _FIELD_BY_KEY.get(name) or _FIELD_BY_FOLDED_KEY.get(name.lower())


def mask_phone(phone: object) -> str:
    """Show a phone number as ``+380*****4567``: enough to recognise it, not to dial it."""
    text = str(phone)
    if len(text) <= 8:
        return "*" * len(text)
    return f"{text[:4]}{'*' * (len(text) - 8)}{text[-4:]}"


def redact_phones(text: str) -> str:
    """Mask every run of 7 or more digits (a possible phone number) in free text."""
    return _PHONE_LIKE.sub(lambda match: mask_phone(match.group()), text)


_PHONE_LIKE = re.compile(r"\+?[0-9]{7,}")


class SentMessage(NamedTuple):
    """One message the service accepted: its id (for status tracking) and the caller's id."""

    message_id: str
    tracking_id: str

    def to_wire(self) -> dict[str, str]:
        return {"messageId": self.message_id, "trackinId": self.tracking_id}


@dataclass(frozen=True, slots=True)
class CascadeMessage:
    """One message, checked against every rule of the Cascade contract when created.

    :param tracking_id: your id for the message (wire ``id``): 1-255 characters of
        letters, digits, ``.``, ``_``, ``:`` and ``-``; unique within a send. An integer
        (a SQL key) is taken as its decimal text.
    :param from_name: the sender name shown to the recipient.
    :param to_phone: the recipient, E.164: ``+`` then 7 to 15 digits, the first not 0.
    :param message_type: ``transaction``, ``promo``, ``viber_survey`` or ``flashcall``.
    :param text: the content; required except for ``flashcall``, which carries none; at
        most 85 characters for ``viber_survey``.
    :param ttl: time to live in seconds, a positive integer.
    :param scheduled_sent: when to deliver: an ISO 8601 string with a time zone, or an
        aware ``datetime``/pendulum ``DateTime``; stored as UTC ``YYYY-MM-DDTHH:MM:SSZ``.
        At most 30 days ahead and not in the past (5 minutes of tolerance).
    :param survey_options: 2 to 5 answer options, only for ``viber_survey``; a JSON array
        string (a SQL column) is accepted.
    :raises CascadeValidationError: listing every rule the message breaks.
    """

    tracking_id: str
    from_name: str
    to_phone: str
    message_type: MessageType
    text: str | None = None
    ttl: int | None = None
    scheduled_sent: str | None = None
    survey_options: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        issues = _normalise(self)
        if issues:
            ref = self.tracking_id if _usable_id(self.tracking_id) else _NO_ID
            raise CascadeValidationError(
                [Problem(ref, field, rule, code) for field, rule, code in issues]
            )

    def __repr__(self) -> str:
        # Messages end up in logs and tracebacks: never show the full phone or the text.
        return (
            f"CascadeMessage(tracking_id={self.tracking_id!r}, to_phone={self.masked_phone!r}, "
            f"message_type={self.message_type.value!r})"
        )

    @classmethod
    def from_mapping(
        cls,
        data: Mapping[str, Any],
        defaults: Mapping[str, Any] | None = None,
        *,
        recommended_ttl: bool = False,
    ) -> CascadeMessage:
        """Build a message from a dict with Pythonic (``to_phone``) or wire (``toPhone``) keys.

        :param defaults: values (Pythonic names) for fields the dict leaves out or sets to None.
        :param recommended_ttl: a message still without ``ttl`` gets the service's
            recommendation for its type (:data:`RECOMMENDED_TTL`).
        :raises CascadeValidationError: unknown or doubled keys, and every rule broken.
        """
        fields: dict[str, Any] = {}
        unknown: list[tuple[str, str, str]] = []
        for key, value in data.items():
            name = _FIELD_BY_KEY.get(key)
            if name is None:
                unknown.append((str(key), "is not a message field", "UNKNOWN_FIELD"))
            elif name in fields:
                unknown.append((_WIRE_NAMES[name], "is given twice", "DUPLICATE_FIELD"))
            else:
                fields[name] = value
        if defaults:
            for name, value in defaults.items():
                if fields.get(name) is None:
                    fields[name] = value
        if recommended_ttl and fields.get("ttl") is None:
            fields["ttl"] = RECOMMENDED_TTL.get(_TYPES.get(fields.get("message_type")))  # type: ignore[arg-type]
        for name in _REQUIRED:
            if name not in fields:
                fields[name] = None
        problems: list[Problem] = []
        if unknown:
            ref = _ref_of(data)
            problems = [Problem(ref, *issue) for issue in unknown]
        try:
            message = cls(**fields)
        except CascadeValidationError as error:
            raise CascadeValidationError(problems + error.problems) from None
        if problems:
            raise CascadeValidationError(problems)
        return message

    def to_wire(self) -> dict[str, Any]:
        """The JSON object the API expects, with only the fields that are set."""
        wire: dict[str, Any] = {
            "id": self.tracking_id,
            "fromName": self.from_name,
            "toPhone": self.to_phone,
            "messageType": self.message_type.value,
        }
        if self.text is not None:
            wire["text"] = self.text
        if self.ttl is not None:
            wire["ttl"] = self.ttl
        if self.scheduled_sent is not None:
            wire["scheduledSent"] = self.scheduled_sent
        if self.survey_options is not None:
            wire["surveyOptions"] = list(self.survey_options)
        return wire

    @property
    def masked_phone(self) -> str:
        return mask_phone(self.to_phone)


def parse_messages(
    items: Iterable[Mapping[str, Any] | CascadeMessage],
    *,
    label: str = "message",
    start: int = 1,
    defaults: Mapping[str, Any] | None = None,
    recommended_ttl: bool = False,
) -> list[CascadeMessage]:
    """Check a whole batch and return it as messages, or raise ONE error listing every problem.

    The arguments are :func:`check_messages`'.

    :raises CascadeValidationError: with one :class:`Problem` per broken rule.
    """
    messages, problems = check_messages(
        items, label=label, start=start, defaults=defaults, recommended_ttl=recommended_ttl
    )
    if problems:
        raise CascadeValidationError(problems)
    return messages


def check_messages(
    items: Iterable[Mapping[str, Any] | CascadeMessage],
    *,
    label: str = "message",
    start: int = 1,
    defaults: Mapping[str, Any] | None = None,
    recommended_ttl: bool = False,
    seen: set[int] | None = None,
) -> tuple[list[CascadeMessage], list[Problem]]:
    """Split items into valid messages and the problems of the others.

    A message without a usable tracking id is named by its position: ``{label} {n}``,
    counting from ``start``. ``defaults`` and ``recommended_ttl`` fill gaps as in
    :meth:`CascadeMessage.from_mapping`. Tracking ids must be unique within a send: pass
    the same ``seen`` set to every batch of one send (it holds hashes, not the ids, so a
    million-message send stays small); a repeated id is a problem of the later message.
    """
    messages: list[CascadeMessage] = []
    problems: list[Problem] = []
    seen = set() if seen is None else seen
    for position, item in enumerate(items, start):
        where = f"{label} {position}"
        try:
            if isinstance(item, CascadeMessage):
                message = item
                if recommended_ttl and message.ttl is None:
                    message = replace(message, ttl=RECOMMENDED_TTL[message.message_type])
            elif isinstance(item, Mapping):
                message = CascadeMessage.from_mapping(
                    item, defaults, recommended_ttl=recommended_ttl
                )
            else:
                problems.append(
                    Problem(
                        where,
                        "message",
                        f"is a {type(item).__name__}, not a mapping of fields",
                        "INVALID_MESSAGE",
                    )
                )
                continue
        except CascadeValidationError as error:
            problems.extend(replace(p, ref=_where(where, p.ref, label)) for p in error.problems)
            continue
        key = hash(message.tracking_id)
        if key in seen:
            problems.append(
                Problem(
                    _where(where, message.tracking_id, label),
                    "id",
                    f"is used more than once in one send (again at {where})",
                    "DUPLICATE_ID",
                )
            )
            continue
        seen.add(key)
        messages.append(message)
    return messages, problems


def parse_send_response(payload: Any, batch: Sequence[CascadeMessage]) -> list[SentMessage]:
    """Read a ``200`` answer: one ``{messageId, trackinId}`` per message, in request order.

    :raises ValueError: when the answer does not account for every message exactly; the
        caller must then treat the batch as in doubt, never as sent.
    """
    if not isinstance(payload, list):
        raise ValueError(f"expected a JSON array, got {type(payload).__name__}")
    if len(payload) != len(batch):
        raise ValueError(f"{len(payload)} entries for {len(batch)} messages")
    sent: list[SentMessage] = []
    for entry, message in zip(payload, batch, strict=True):
        message_id = entry.get("messageId") if isinstance(entry, dict) else None
        if not isinstance(message_id, str) or not message_id:
            raise ValueError(f"no messageId for {message.tracking_id}")
        if entry.get("trackinId") != message.tracking_id:
            raise ValueError(f"entry for {message.tracking_id} names another tracking id")
        sent.append(SentMessage(message_id, message.tracking_id))
    return sent


# --- the rules ------------------------------------------------------------------------

_NO_ID = "(message without a usable id)"
_Issue = tuple[str, str, str]  # wire field, rule, code


def _where(position: str, ref: str, label: str) -> str:
    """How a problem names its message: the tracking id; a SQL row also by its number,
    since ids like ``17`` are easily taken for positions."""
    if ref == _NO_ID:
        return position
    return ref if label == "message" else f"{position} ({ref})"


def _usable_id(value: object) -> bool:
    return isinstance(value, str) and 0 < len(value) <= 255 and bool(_TRACKING_ID.fullmatch(value))


def _ref_of(data: Mapping[str, Any]) -> str:
    for key in ("tracking_id", "id"):
        value = data.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if _usable_id(value):
            return str(value)
    return _NO_ID


def _normalise(message: CascadeMessage) -> list[_Issue]:
    """Check every field, store normalised values, and return what is wrong."""
    issues: list[_Issue] = []
    values: list[Any] = []
    for name, check in _CHECKS:
        value = getattr(message, name)
        try:
            checked = check(value)
        except _Broken as broken:
            issues.append((_WIRE_NAMES[name], broken.rule, broken.code))
            continue
        values.append(checked)
        if checked is not value:
            object.__setattr__(message, name, checked)
    if not issues:
        issues.extend(_cross_field_issues(values[3], values[4], values[7]))
    return issues


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
    if isinstance(_required(value), str) and (kind := _TYPES.get(value)) is not None:
        return kind
    try:
        return MessageType(value)
    except ValueError:
        allowed = ", ".join(t.value for t in MessageType)
        raise _Broken(f"{value!r} is not one of: {allowed}", "INVALID_MESSAGE_TYPE") from None


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
        raise _Broken(
            "has no time zone: give one (e.g. '2025-01-25T09:00:00Z')", "INVALID_SCHEDULED_SENT"
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
) -> list[_Issue]:
    issues: list[_Issue] = []
    if kind is MessageType.FLASHCALL:
        if text is not None:
            issues.append(("text", "must be absent for a flashcall", "INVALID_TEXT"))
    elif text is None or not text.strip():
        issues.append(("text", f"is required for {kind.value}", "MISSING_FIELD"))
    if kind is MessageType.VIBER_SURVEY:
        if survey_options is None:
            issues.append(("surveyOptions", "is required for viber_survey", "MISSING_FIELD"))
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
                "surveyOptions",
                f"is only for viber_survey, not {kind.value}",
                "INVALID_SURVEY_OPTIONS",
            )
        )
    return issues


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


_REQUIRED = ("tracking_id", "from_name", "to_phone", "message_type")
# In field order: _normalise relies on it.
_CHECKS = (
    ("tracking_id", _check_tracking_id),
    ("from_name", _check_from_name),
    ("to_phone", _check_phone),
    ("message_type", _check_message_type),
    ("text", _check_text),
    ("ttl", _check_ttl),
    ("scheduled_sent", _check_scheduled_sent),
    ("survey_options", _check_survey_options),
)
