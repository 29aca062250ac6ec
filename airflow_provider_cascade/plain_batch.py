"""A batch of source rows checked column by column, in one pass of C-level operations.

A campaign's rows are nearly always plain: integer or ASCII ids, one sender name, E.164
phones, a promo or transaction text, no schedule, no survey. Checking such a batch row by
row in Python costs more than everything else a send does with it (``benchmarks/
throughput.py``); checked a column at a time (a joined regular expression, ``set`` and
``map`` over a column), the same rules cost a fraction.

The rules are those of :func:`~airflow_provider_cascade.validation.check_values`' plain
case, never looser: a batch that does not pass here is checked row by row, which names every
problem. So this path changes how fast a batch is accepted, never whether it is.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

from airflow_provider_cascade.constants import MAX_TEXT_LENGTH, MAX_TRACKING_ID_LENGTH
from airflow_provider_cascade.seen_ids import SeenIds
from airflow_provider_cascade.validation import FIELDS, MessageType

__all__ = ["plain_rows"]

Message = TypeVar("Message", bound=tuple[Any, ...])

#: The id and phone rules of validation.py, for a column joined by newlines.
_IDS = re.compile(r"(?:[A-Za-z0-9._:-]+\n)*")
_PHONES = re.compile(r"(?:\+[1-9][0-9]{6,14}\n)*")
#: The types whose messages are plain: a text, no survey, not a flash call.
_PLAIN_TYPES: dict[object, MessageType] = {
    **{kind.value: kind for kind in (MessageType.TRANSACTION, MessageType.PROMO)},
    MessageType.TRANSACTION: MessageType.TRANSACTION,
    MessageType.PROMO: MessageType.PROMO,
}
_WIDTH = len(FIELDS)


def plain_rows(
    rows: Sequence[Any],
    message: type[Message],
    defaults: Sequence[tuple[int, Any]],
    recommended_ttl: Mapping[MessageType, int] | None,
    seen: SeenIds,
) -> list[Message] | None:
    """The batch's messages when every row is plain and valid, else None (nothing changed).

    :param rows: lists of the values of :data:`~airflow_provider_cascade.validation.FIELDS`.
    :param message: the message type, a tuple of those fields.
    :param defaults: ``(field index, value)`` for the fields a row leaves None.
    :param recommended_ttl: each type's TTL for a row without one (None: leave it None).
    :param seen: the tracking ids of the send so far; the batch's are added when it passes.
    """
    if not rows or set(map(type, rows)) != {list}:
        return None
    try:
        return _plain(rows, message, defaults, recommended_ttl, seen)
    except TypeError:  # an unhashable value (a list for a name...): checked row by row
        return None


def _plain(
    rows: Sequence[Any],
    message: type[Message],
    defaults: Sequence[tuple[int, Any]],
    recommended_ttl: Mapping[MessageType, int] | None,
    seen: SeenIds,
) -> list[Message] | None:
    columns: list[Sequence[Any]] = list(zip(*rows, strict=True))
    if len(columns) != _WIDTH:
        return None
    for index, value in defaults:
        if None in columns[index]:
            columns[index] = [value if cell is None else cell for cell in columns[index]]
    keys, names, phones, kinds, texts, ttls, schedules, options = columns
    count = len(rows)
    if schedules.count(None) != count or options.count(None) != count:
        return None
    found = {kind: _PLAIN_TYPES.get(kind) for kind in set(kinds)}
    if None in found.values():
        return None
    kinds = [found[kind] for kind in kinds]
    ids = _ids(keys)
    if ids is None:
        return None
    if not all(type(name) is str and name.isascii() and name.strip() for name in set(names)):
        return None
    if not _column_matches(phones, _PHONES) or not _plain_texts(texts):
        return None
    if recommended_ttl is not None and None in ttls:
        ttls = [
            recommended_ttl[kind] if ttl is None else ttl
            for ttl, kind in zip(ttls, kinds, strict=True)
        ]
    ttl_types = set(map(type, ttls))
    if not ttl_types <= {int, type(None)}:
        return None
    if int in ttl_types and min(ttl for ttl in ttls if ttl is not None) <= 0:
        return None
    if not seen.add_new(keys):  # the last check: it adds them when they pass
        return None
    make: Callable[[tuple[Any, ...]], Message] = partial(tuple.__new__, message)
    return list(
        map(make, zip(ids, names, phones, kinds, texts, ttls, schedules, options, strict=True))
    )


def _ids(keys: Sequence[Any]) -> list[str] | None:
    """The tracking ids as text (an integer SQL key as its digits), when all are usable."""
    types = set(map(type, keys))
    if types == {int}:
        return list(map(str, keys))
    if not types <= {int, str}:
        return None
    ids = [str(key) if type(key) is int else key for key in keys]
    if max(map(len, ids)) > MAX_TRACKING_ID_LENGTH or not _column_matches(ids, _IDS):
        return None
    return ids


def _column_matches(column: Sequence[Any], pattern: re.Pattern[str]) -> bool:
    if set(map(type, column)) != {str}:
        return False
    joined = "\n".join(column) + "\n"
    return joined.isascii() and pattern.fullmatch(joined) is not None


def _plain_texts(texts: Sequence[Any]) -> bool:
    return (
        set(map(type, texts)) == {str}
        and "".join(texts).isascii()
        and max(map(len, texts)) <= MAX_TEXT_LENGTH
        and all(map(str.strip, texts))
    )
