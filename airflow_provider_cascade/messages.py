"""The Cascade message model: a message that is valid by construction, and batch checking.

A :class:`CascadeMessage` checks every rule of the contract when created
(:mod:`~airflow_provider_cascade.validation`) and raises
:class:`~airflow_provider_cascade.exceptions.CascadeValidationError` listing all that is
wrong, naming each field as the caller wrote it. :func:`parse_messages` turns a whole batch
of dicts (Pythonic or wire keys) into messages, or raises ONE error naming every problem of
every message, so that nothing is sent from a batch known to be invalid.

Longer than 300 lines: the message model, its parsing from mappings and rows, and the
batch check that names every problem are one contract for input; the column-wise fast path
lives in plain_batch.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, MutableSequence, Sequence
from dataclasses import replace
from typing import Any, NamedTuple

from airflow_provider_cascade.exceptions import CascadeValidationError
from airflow_provider_cascade.plain_batch import plain_rows
from airflow_provider_cascade.privacy import mask_phone, redact_phones
from airflow_provider_cascade.results import SentMessage
from airflow_provider_cascade.seen_ids import SeenIds
from airflow_provider_cascade.suggestions import FIELD_SYNONYMS, nearest
from airflow_provider_cascade.validation import (
    FIELDS,
    RECOMMENDED_TTL,
    MessageType,
    Problem,
    check_values,
    message_type_of,
    usable_id,
)
from airflow_provider_cascade.wire import FIELD_BY_WIRE_NAME, WIRE_NAMES, Route, message_to_wire

__all__ = [
    "FIELDS",
    "RECOMMENDED_TTL",
    "CascadeMessage",
    "MessageType",
    "Route",
    "SentMessage",
    "check_messages",
    "field_for_key",
    "mask_phone",
    "parse_messages",
    "redact_phones",
]

# Any key a message mapping may use: the provider's names, the API's, any case.
_FIELD_BY_KEY = {**{name: name for name in FIELDS}, **FIELD_BY_WIRE_NAME}
_FIELD_BY_FOLDED_KEY = {key.lower(): name for key, name in _FIELD_BY_KEY.items()}
_FIELD_SET = frozenset(FIELDS)
_NO_ID = "(message without a usable id)"


def field_for_key(name: str) -> str | None:
    """The message field a key or column names (any case, Pythonic or wire), or None."""
    return _FIELD_BY_KEY.get(name) or _FIELD_BY_FOLDED_KEY.get(name.lower())


def unknown_key_rule(key: str, rule: str = "is not a message field") -> str:
    """Why ``key`` is refused, with the nearest field when one is close (``phone`` ->
    ``to_phone``)."""
    meant = nearest(key, [*FIELDS, "id"], FIELD_SYNONYMS)
    hint = f": did you mean {meant}?" if meant else f" (fields: id, {', '.join(FIELDS)})"
    return f"{rule}{hint}"


class _MessageFields(NamedTuple):
    tracking_id: str
    from_name: str
    to_phone: str
    message_type: MessageType
    text: str | None = None
    ttl: int | None = None
    scheduled_sent: str | None = None
    survey_options: tuple[str, ...] | None = None


class CascadeMessage(_MessageFields):
    """One message, checked against every rule of the Cascade contract when created.

    Immutable (a named tuple: cheap to build by the hundred thousand, which a campaign does).

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

    __slots__ = ()

    def __new__(
        cls,
        tracking_id: Any,
        from_name: Any,
        to_phone: Any,
        message_type: Any,
        text: Any = None,
        ttl: Any = None,
        scheduled_sent: Any = None,
        survey_options: Any = None,
    ) -> CascadeMessage:
        values = [
            tracking_id,
            from_name,
            to_phone,
            message_type,
            text,
            ttl,
            scheduled_sent,
            survey_options,
        ]
        issues = check_values(values)
        if issues:
            ref = str(values[0]) if usable_id(values[0]) else _NO_ID
            raise CascadeValidationError([Problem(ref, *issue) for issue in issues])
        return tuple.__new__(cls, values)

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
        """Build a message from a dict with Pythonic keys (``to_phone``) or the API's own.

        Errors name each field by the key the dict used (a wire-keyed dict's missing fields
        by their wire names).

        :param defaults: values (Pythonic names) for fields the dict leaves out or sets to None.
        :param recommended_ttl: a message still without ``ttl`` gets the service's
            recommendation for its type (:data:`RECOMMENDED_TTL`).
        :raises CascadeValidationError: unknown or doubled keys, and every rule broken.
        """
        fields: dict[str, Any] = {}
        spelling: dict[str, str] = {}
        problems: list[Problem] = []
        wire_keyed = False
        for key, value in data.items():
            name = _FIELD_BY_KEY.get(key)
            if name is None:
                rule = unknown_key_rule(str(key))
                problems.append(Problem(_ref_of(data), str(key), rule, "UNKNOWN_FIELD"))
            elif name in fields:
                rule = f"is given twice (also as {spelling.get(name, name)})"
                problems.append(Problem(_ref_of(data), str(key), rule, "DUPLICATE_FIELD"))
            else:
                fields[name] = value
                if key != name:
                    spelling[name] = key
                    # ``id`` is at home in either style; any other wire key marks the dict.
                    wire_keyed = wire_keyed or key != "id"
        if wire_keyed:
            spelling = {**WIRE_NAMES, **spelling}
        return cls.from_fields(
            fields, defaults, recommended_ttl=recommended_ttl, spelling=spelling, problems=problems
        )

    @classmethod
    def from_fields(
        cls,
        fields: Mapping[str, Any],
        defaults: Mapping[str, Any] | None = None,
        *,
        recommended_ttl: bool = False,
        spelling: Mapping[str, str] | None = None,
        problems: list[Problem] | None = None,
    ) -> CascadeMessage:
        """Build a message from values keyed by field name (a SQL row already mapped).

        :param fields: field name -> value (not changed).
        :param defaults: values for fields that ``fields`` leaves out or sets to None.
        :param spelling: field name -> the name the caller used (a column), for errors.
        :param problems: problems already found with the input, raised together.
        :raises ValueError: a key that is not a field name.
        """
        if not fields.keys() <= _FIELD_SET:
            raise ValueError(f"not message fields: {sorted(set(fields) - _FIELD_SET)}")
        values = [fields.get(name) for name in FIELDS]
        return cls._from_values(
            values, _default_pairs(defaults), recommended_ttl, spelling, problems
        )

    @classmethod
    def _from_values(
        cls,
        values: list[Any],
        defaults: Sequence[tuple[int, Any]],
        recommended_ttl: bool,
        spelling: Mapping[str, str] | None = None,
        problems: list[Problem] | None = None,
    ) -> CascadeMessage:
        """The hot path: ``values`` in field order (filled and normalised in place)."""
        for index, default in defaults:
            if values[index] is None:
                values[index] = default
        if recommended_ttl and values[5] is None:
            kind = message_type_of(values[3])
            values[5] = RECOMMENDED_TTL[kind] if kind is not None else None
        issues = check_values(values)
        if issues:
            ref = str(values[0]) if usable_id(values[0]) else _NO_ID
            spelled = spelling or {}
            found = [Problem(ref, spelled.get(field, field), *rest) for field, *rest in issues]
            raise CascadeValidationError([*(problems or ()), *found])
        if problems:
            raise CascadeValidationError(problems)
        return tuple.__new__(cls, values)

    def to_wire(self) -> dict[str, Any]:
        """The JSON object the API expects, with only the fields that are set."""
        return message_to_wire(self)

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
    items: Iterable[Mapping[str, Any] | CascadeMessage | list[Any]],
    *,
    label: str = "message",
    start: int = 1,
    defaults: Mapping[str, Any] | None = None,
    recommended_ttl: bool = False,
    seen: SeenIds | None = None,
    spelling: Mapping[str, str] | None = None,
    source_keys: MutableSequence[Any] | None = None,
) -> tuple[list[CascadeMessage], list[Problem]]:
    """Split items into valid messages and the problems of the others.

    A message without a usable tracking id is named by its position: ``{label} {n}``,
    counting from ``start``. ``defaults`` and ``recommended_ttl`` fill gaps as in
    :meth:`CascadeMessage.from_mapping`. Tracking ids must be unique within a send: pass
    the same ``seen`` (:class:`~airflow_provider_cascade.seen_ids.SeenIds`: exact, compact,
    the same in every process, so a retry decides as the first try did) to every batch of
    one send; a repeated id is a problem of the later message.

    :param spelling: given when the items are rows in field order (lists of the values of
        :data:`FIELDS`: a SQL source maps its columns once): field name -> the column,
        for errors.
    :param source_keys: when given, receives each valid message's tracking id as the
        source gave it (an integer SQL key stays an integer), in order, for write-back.
    """
    messages: list[CascadeMessage] = []
    problems: list[Problem] = []
    seen = SeenIds() if seen is None else seen
    default_pairs = _default_pairs(defaults)
    if spelling is not None and isinstance(items, Sequence):  # a source's rows: try them whole
        ttl = RECOMMENDED_TTL if recommended_ttl else None
        plain = plain_rows(items, CascadeMessage, default_pairs, ttl, seen)
        if plain is not None:
            if source_keys is not None:
                source_keys.extend(row[0] for row in items)
            return plain, problems
    for position, item in enumerate(items, start):
        where = f"{label} {position}"
        try:
            if isinstance(item, CascadeMessage):
                source_key: Any = item.tracking_id
                message = item
                if recommended_ttl and message.ttl is None:
                    message = message._replace(ttl=RECOMMENDED_TTL[message.message_type])
            elif spelling is not None and type(item) is list:  # a source's row, in field order
                source_key = item[0]
                message = CascadeMessage._from_values(
                    item, default_pairs, recommended_ttl, spelling
                )
            elif isinstance(item, Mapping):
                source_key = item.get("tracking_id", item.get("id"))
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
        key = message.tracking_id
        if key in seen:
            problems.append(
                Problem(
                    _where(where, message.tracking_id, label),
                    _id_key(item, spelling),
                    f"is used more than once in one send (again at {where})",
                    "DUPLICATE_ID",
                )
            )
            continue
        seen.add(key)
        messages.append(message)
        if source_keys is not None:
            source_keys.append(message.tracking_id if source_key is None else source_key)
    return messages, problems


def _id_key(item: Any, spelling: Mapping[str, str] | None) -> str:
    """The tracking id's name as the caller wrote it."""
    if spelling is not None:
        return spelling.get("tracking_id", "tracking_id")
    return "id" if isinstance(item, Mapping) and "id" in item else "tracking_id"


def _default_pairs(defaults: Mapping[str, Any] | None) -> list[tuple[int, Any]]:
    """``(field index, value)`` of the defaults that are set, once per batch."""
    if not defaults:
        return []
    return [(i, defaults[name]) for i, name in enumerate(FIELDS) if defaults.get(name) is not None]


def _where(position: str, ref: str, label: str) -> str:
    """How a problem names its message: the tracking id; a SQL row also by its number,
    since ids like ``17`` are easily taken for positions."""
    if ref == _NO_ID:
        return position
    return ref if label == "message" else f"{position} ({ref})"


def _ref_of(data: Mapping[str, Any]) -> str:
    for key in ("tracking_id", "id"):
        value = data.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if usable_id(value):
            return str(value)
    return _NO_ID
