"""What earlier tries of a send accepted, kept compact enough for a million-message retry.

The ledger (:mod:`~airflow_provider_cascade.ledger`) decides "never send twice" by asking,
for each message of a retried send, whether an earlier try had it accepted, and by which
message id. Keys are 128-bit digests of the tracking id (BLAKE2b: the same in every
process, and no collision in any campaign's lifetime), compared whole. A ``dict`` of such
keys to id strings costs about 180 bytes an entry (180 MB for a million); this table
keeps the digest and the UUID message id as four 64-bit words in ``array`` s, open
addressing with linear probing: about 45 bytes an entry, measured in
``tests/test_accepted_ids.py``. A message id that is not a canonical UUID (the contract
says UUID; the table does not rely on it) is kept as text beside it.
"""

from __future__ import annotations

import hashlib
import uuid
from array import array
from collections.abc import Iterable

#: Bytes of a tracking id's digest.
DIGEST_BYTES = 16
#: The share of slots in use at most; past it the table grows.
_LOAD = 0.75
_FREE, _UUID, _TEXT = 0, 1, 2


def digest(tracking_id: str) -> bytes:
    """16 bytes that stand for a tracking id (stable across processes)."""
    return hashlib.blake2b(tracking_id.encode(), digest_size=DIGEST_BYTES).digest()


def _uuid_words(message_id: str) -> tuple[int, int] | None:
    """The UUID as two 64-bit words, when ``message_id`` is one in canonical form."""
    try:
        value = uuid.UUID(message_id)
    except ValueError:
        return None
    if str(value) != message_id:  # only what decodes back to the same text
        return None
    return value.int >> 64, value.int & 0xFFFF_FFFF_FFFF_FFFF


class AcceptedIds:
    """Tracking-id digest -> message id.

    :param expected: how many entries are coming (sizes the table once).
    """

    def __init__(self, expected: int = 0) -> None:
        self._count = 0
        self._text: dict[bytes, str] = {}
        self._allocate(max(8, int(expected / _LOAD) + 1))

    def _allocate(self, capacity: int) -> None:
        self._capacity = capacity
        zeros = bytes(8 * capacity)
        self._state = array("B", bytes(capacity))
        self._key_hi, self._key_lo = array("Q", zeros), array("Q", zeros)
        self._id_hi, self._id_lo = array("Q", zeros), array("Q", zeros)

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def _slot(self, key: bytes) -> tuple[int, int, int]:
        """The slot holding ``key``, or the free one it would go to; and its two words."""
        hi = int.from_bytes(key[:8], "big")
        lo = int.from_bytes(key[8:], "big")
        slot = lo % self._capacity
        state, key_hi, key_lo = self._state, self._key_hi, self._key_lo
        while state[slot] != _FREE and (key_hi[slot] != hi or key_lo[slot] != lo):
            slot = slot + 1 if slot + 1 < self._capacity else 0
        return slot, hi, lo

    def add(self, key: bytes, message_id: str) -> None:
        """Remember that the message with digest ``key`` was accepted as ``message_id``."""
        if (self._count + 1) > self._capacity * _LOAD:
            self._grow()
        slot, hi, lo = self._slot(key)
        if self._state[slot] == _FREE:
            self._count += 1
            self._key_hi[slot], self._key_lo[slot] = hi, lo
        words = _uuid_words(message_id)
        if words is None:
            self._state[slot] = _TEXT
            self._text[key] = message_id
        else:
            self._state[slot] = _UUID
            self._id_hi[slot], self._id_lo[slot] = words
            self._text.pop(key, None)

    def update(self, entries: Iterable[tuple[bytes, str]]) -> None:
        for key, message_id in entries:
            self.add(key, message_id)

    def get(self, key: bytes) -> str | None:
        """The message id accepted for digest ``key``, or None."""
        if not self._count:
            return None
        slot, _, _ = self._slot(key)
        state = self._state[slot]
        if state == _FREE:
            return None
        if state == _TEXT:
            return self._text[key]
        return str(uuid.UUID(int=(self._id_hi[slot] << 64) | self._id_lo[slot]))

    def __contains__(self, key: object) -> bool:
        return isinstance(key, bytes) and self.get(key) is not None

    def _grow(self) -> None:
        old = (self._state, self._key_hi, self._key_lo, self._id_hi, self._id_lo)
        self._allocate(self._capacity * 2)
        for slot, state in enumerate(old[0]):
            if state == _FREE:
                continue
            hi, lo = old[1][slot], old[2][slot]
            new = lo % self._capacity
            while self._state[new] != _FREE:
                new = new + 1 if new + 1 < self._capacity else 0
            self._state[new] = state
            self._key_hi[new], self._key_lo[new] = hi, lo
            self._id_hi[new], self._id_lo[new] = old[3][slot], old[4][slot]
