"""What earlier tries of a send accepted, kept compact enough for a million-message retry.

The ledger (:mod:`~airflow_provider_cascade.send.ledger`) decides "never send twice" by asking,
for each message of a retried send, whether an earlier try had it accepted, and by which
message id. Keys are 128-bit digests of the tracking id (BLAKE2b: the same in every
process, and no collision in any campaign's lifetime), compared whole. A ``dict`` of such
keys to id strings costs about 180 bytes an entry (180 MB for a million); this table
keeps the digest and the UUID message id as four 64-bit words in ``array`` s: entries are
staged as they are read, then placed once in a table sized for them (open addressing,
linear probing), about 45 bytes an entry, measured in ``tests/test_accepted_ids.py``. A
message id that is not a canonical UUID (the contract says UUID; the table does not rely
on it) is kept as text beside it.
"""

from __future__ import annotations

import hashlib
import re
from array import array
from collections.abc import Iterable

#: Bytes of a tracking id's digest.
DIGEST_BYTES = 16
#: The share of slots in use at most.
_LOAD = 0.75
_FREE, _UUID, _TEXT = 0, 1, 2
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_LOW_WORD = (1 << 64) - 1


def digest(tracking_id: str) -> bytes:
    """16 bytes that stand for a tracking id (stable across processes)."""
    return hashlib.blake2b(tracking_id.encode(), digest_size=DIGEST_BYTES).digest()


class AcceptedIds:
    """Tracking-id digest -> message id: added while a ledger is read, then looked up."""

    def __init__(self) -> None:
        # Staged: in the order added (a later entry for the same key wins).
        self._staged = [array("Q") for _ in range(4)]  # key hi, key lo, id hi, id lo
        self._text: dict[bytes, str] = {}  # keys whose message id is not a canonical UUID
        self._capacity = 0
        self._count = 0
        self._state = array("B")
        self._key_hi, self._key_lo = array("Q"), array("Q")
        self._id_hi, self._id_lo = array("Q"), array("Q")

    def __len__(self) -> int:
        self._place()
        return self._count

    def __bool__(self) -> bool:
        return bool(self._staged[0]) or self._count > 0

    def add(self, key: bytes, message_id: str) -> None:
        """Remember that the message with digest ``key`` was accepted as ``message_id``."""
        key_hi, key_lo, id_hi, id_lo = self._staged
        key_hi.append(int.from_bytes(key[:8], "big"))
        key_lo.append(int.from_bytes(key[8:], "big"))
        if _CANONICAL_UUID.fullmatch(message_id):
            value = int(message_id.replace("-", ""), 16)
            id_hi.append(value >> 64)
            id_lo.append(value & _LOW_WORD)
            self._text.pop(key, None)
        else:
            id_hi.append(0)
            id_lo.append(0)
            self._text[key] = message_id

    def update(self, entries: Iterable[tuple[bytes, str]]) -> None:
        for key, message_id in entries:
            self.add(key, message_id)

    def get(self, key: bytes) -> str | None:
        """The message id accepted for digest ``key``, or None."""
        self._place()
        if not self._count:
            return None
        hi, lo = int.from_bytes(key[:8], "big"), int.from_bytes(key[8:], "big")
        slot = self._find(hi, lo)
        state = self._state[slot]
        if state == _FREE:
            return None
        if state == _TEXT:
            return self._text[key]
        value = (self._id_hi[slot] << 64) | self._id_lo[slot]
        text = f"{value:032x}"
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"

    def __contains__(self, key: object) -> bool:
        return isinstance(key, bytes) and self.get(key) is not None

    def _find(self, hi: int, lo: int) -> int:
        """The slot holding the key, or the free slot it would go to."""
        slot = lo % self._capacity
        state, key_hi, key_lo = self._state, self._key_hi, self._key_lo
        while state[slot] != _FREE and (key_lo[slot] != lo or key_hi[slot] != hi):
            slot = slot + 1 if slot + 1 < self._capacity else 0
        return slot

    def _place(self) -> None:
        """Put the staged entries (and those placed before) in a table sized for them."""
        staged = self._staged
        if not staged[0]:
            return
        old = None
        if self._capacity:
            old = (self._state, self._key_hi, self._key_lo, self._id_hi, self._id_lo)
        capacity = int((self._count + len(staged[0])) / _LOAD) + 1
        self._capacity, self._count = capacity, 0
        zeros = bytes(8 * capacity)
        self._state = array("B", bytes(capacity))
        self._key_hi, self._key_lo = array("Q", zeros), array("Q", zeros)
        self._id_hi, self._id_lo = array("Q", zeros), array("Q", zeros)
        if old is not None:
            for slot, state in enumerate(old[0]):
                if state != _FREE:
                    self._put(old[1][slot], old[2][slot], old[3][slot], old[4][slot], state)
        self._staged = [array("Q") for _ in range(4)]
        text = self._text
        for key_hi, key_lo, id_hi, id_lo in zip(*staged, strict=True):
            is_text = not id_hi and not id_lo and _key_bytes(key_hi, key_lo) in text
            self._put(key_hi, key_lo, id_hi, id_lo, _TEXT if is_text else _UUID)

    def _put(self, hi: int, lo: int, id_hi: int, id_lo: int, state: int) -> None:
        slot = self._find(hi, lo)
        if self._state[slot] == _FREE:
            self._count += 1
            self._key_hi[slot], self._key_lo[slot] = hi, lo
        self._state[slot] = state
        self._id_hi[slot], self._id_lo[slot] = id_hi, id_lo


def _key_bytes(hi: int, lo: int) -> bytes:
    return hi.to_bytes(8, "big") + lo.to_bytes(8, "big")
