"""The tracking ids of one send so far, kept exactly and compactly.

Tracking ids are unique within a send, so every id read is remembered until the send ends:
a million of them. Kept as Python strings in a set they take about 97 bytes each (a
string object and a set slot). Most sources number their messages, though (a SQL key, an
order number), and read them in order; so an id that is a decimal integer (the digits of
0 to 10**18, no leading zero) is kept as that number, in a sorted ``array`` of 8-byte
words while ids come in increasing order (8 bytes each: 8 MB for a million) and in a set
of ints otherwise; every other id stays text. The tracking id ``"42"`` and the SQL key
``42`` are one id, as on the wire. Exact (no hash decides a duplicate), and the same in
every process, so a retry decides as the first try did. Measured in
``tests/test_seen_ids.py``.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Sequence
from itertools import islice
from operator import lt
from typing import cast

__all__ = ["SeenIds"]

#: Integers from 0 below this are kept as numbers (they fit in a signed 64-bit word).
_NUMBER_LIMIT = 10**18


def _key(tracking_id: str) -> int | str:
    """The id as a number when it is the digits of one, else as text."""
    if (
        tracking_id.isdigit()
        and tracking_id.isascii()
        and len(tracking_id) <= 18
        and (tracking_id[0] != "0" or len(tracking_id) == 1)
    ):
        return int(tracking_id)
    return tracking_id


class SeenIds:
    """The ids added so far: ``id in seen``, ``seen.add(id)``, and a batch at once."""

    def __init__(self) -> None:
        self._ascending = array("q")  # numbers that came in increasing order
        self._numbers: set[int] = set()  # the other numbers
        self._texts: set[str] = set()

    def __len__(self) -> int:
        return len(self._ascending) + len(self._numbers) + len(self._texts)

    def __contains__(self, tracking_id: object) -> bool:
        if not isinstance(tracking_id, str):
            return False
        key = _key(tracking_id)
        if isinstance(key, str):
            return key in self._texts
        return key in self._numbers or self._in_ascending(key)

    def add(self, tracking_id: str) -> None:
        """Remember one id (again: no change)."""
        if tracking_id in self:
            return
        key = _key(tracking_id)
        if isinstance(key, str):
            self._texts.add(key)
        elif not self._ascending or key > self._ascending[-1]:
            self._ascending.append(key)
        else:
            self._numbers.add(key)

    def add_new(self, keys: Sequence[int | str]) -> bool:
        """Add a batch's ids when none was seen before and none repeats; else add nothing.

        :param keys: tracking ids, or integers that stand for their digits (a SQL key).
        :return: whether they were added.
        """
        if not keys:
            return True
        types = set(map(type, keys))
        if types == {int}:
            numbers = cast(Sequence[int], keys)
            if min(numbers) >= 0 and max(numbers) < _NUMBER_LIMIT:
                return self._add_numbers(numbers)
        elif types == {str} and not any(map(str.isdigit, cast(Sequence[str], keys))):
            texts = cast(Sequence[str], keys)
            if len(set(texts)) != len(texts) or not self._texts.isdisjoint(texts):
                return False
            self._texts.update(texts)
            return True
        return self._add_mixed(keys)

    def _add_numbers(self, numbers: Sequence[int]) -> bool:
        ascending = self._ascending
        in_order = all(map(lt, numbers, islice(numbers, 1, None)))
        if in_order and (not ascending or numbers[0] > ascending[-1]):
            if not self._numbers.isdisjoint(numbers):
                return False
            ascending.extend(numbers)
            return True
        if len(set(numbers)) != len(numbers) or not self._numbers.isdisjoint(numbers):
            return False
        if ascending and any(map(self._in_ascending, numbers)):
            return False
        self._numbers.update(numbers)
        return True

    def _add_mixed(self, keys: Sequence[int | str]) -> bool:
        canonical = [_key(str(key)) for key in keys]
        if len(set(canonical)) != len(canonical):
            return False
        numbers = [key for key in canonical if isinstance(key, int)]
        texts = [key for key in canonical if isinstance(key, str)]
        if not self._texts.isdisjoint(texts) or not self._numbers.isdisjoint(numbers):
            return False
        if self._ascending and any(map(self._in_ascending, numbers)):
            return False
        self._texts.update(texts)
        self._numbers.update(numbers)
        return True

    def _in_ascending(self, number: int) -> bool:
        ascending = self._ascending
        if not ascending or number > ascending[-1] or number < ascending[0]:
            return False
        index = bisect_left(ascending, number)
        return ascending[index] == number
