"""Phone numbers as the provider compares them: E.164 digits, whatever way they were written,
and a compact set of them (suppression lists, opt-outs)."""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

__all__ = ["PhoneSet", "e164_digits"]

_BUCKET_BITS = 16
_MASK = (1 << _BUCKET_BITS) - 1
#: Characters people and spreadsheets put inside numbers: dropped before reading them.
_SEPARATORS = str.maketrans("", "", " -().\t/")


def e164_digits(value: Any) -> int | None:
    """A phone number as the integer of its E.164 digits, or None when it is not one.

    ``+380 50 123-45-67``, ``00380501234567``, ``380501234567`` and the integer
    ``380501234567`` are the same number. A national number (``0501234567``) has no
    country code, so it is not one: the country cannot be guessed safely.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal) and value == value.to_integral_value():
        value = int(value)
    if isinstance(value, int):
        digits = str(value)
    elif isinstance(value, str):
        text = value.strip().translate(_SEPARATORS)
        if text.startswith("+"):
            digits = text[1:]
        elif text.startswith("00"):
            digits = text[2:]
        else:
            digits = text
    else:
        return None
    if not (7 <= len(digits) <= 15 and digits.isascii() and digits.isdigit()):
        return None
    if digits[0] == "0":
        return None
    return int(digits)


class PhoneSet:
    """A set of E.164 numbers (as :func:`e164_digits` integers), compact in memory.

    Add numbers, then :meth:`seal` it once; look-ups (``in``) need a sealed set.
    """

    def __init__(self, numbers: Iterable[int] = ()) -> None:
        self._buckets: list[array[int]] = [array("q") for _ in range(_MASK + 1)]
        self._sealed = False
        self._size = 0
        for number in numbers:
            self.add(number)

    def add(self, number: int) -> None:
        if self._sealed:
            raise RuntimeError("a sealed PhoneSet takes no more numbers")
        self._buckets[number & _MASK].append(number)

    def seal(self) -> PhoneSet:
        """Sort each bucket and drop repeats (one bucket at a time: memory stays flat)."""
        if not self._sealed:
            buckets = self._buckets
            for index, bucket in enumerate(buckets):
                if bucket:
                    buckets[index] = array("q", sorted(set(bucket)))
            self._size = sum(map(len, buckets))
            self._sealed = True
        return self

    def __contains__(self, number: object) -> bool:
        if not isinstance(number, int):
            return False
        bucket = self._buckets[number & _MASK]
        index = bisect_left(bucket, number)
        return index < len(bucket) and bucket[index] == number

    def __len__(self) -> int:
        return self._size if self._sealed else sum(map(len, self._buckets))

    @property
    def nbytes(self) -> int:
        """Memory held by the numbers themselves (the arrays' items)."""
        return sum(bucket.buffer_info()[1] * bucket.itemsize for bucket in self._buckets)
