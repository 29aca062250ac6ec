"""``FirstSeen``: the first tracking id sent to each recipient, for ``dedupe``, compactly.

``dedupe`` keeps the first message to each number (and type) and names it in every later
one's ``duplicate_of``; so it must remember, for every recipient of the campaign, the
tracking id that went first. A ``dict`` of integer keys to id strings costs about 125
bytes a recipient (its keys and slots, 67 bytes measured, and the ten-character ids it
keeps alive: 1.25 GB for 10,000,000); this table keeps the recipient's integer key in an
``array`` slot (open addressing, linear probing) and the ids end to end in one
``bytearray``: about 40 bytes a recipient (400 MB for 10,000,000), measured in
``tests/test_first_seen.py``. Keys are exact (the E.164 number as an integer, see
:class:`~airflow_provider_cascade.send.campaign.Campaign`): no two recipients are taken for one.
"""

from __future__ import annotations

from array import array

#: The share of slots in use at most; past it the table grows.
_LOAD = 0.75
#: Keys are non-negative: a free slot holds -1.
_FREE = -1


class FirstSeen:
    """Recipient key (a non-negative integer below 2**63) -> the first tracking id given."""

    def __init__(self, capacity: int = 1024) -> None:
        self._count = 0
        self._ids = bytearray()
        self._allocate(capacity)

    def _allocate(self, capacity: int) -> None:
        self._capacity = capacity
        self._keys = array("q", [_FREE]) * capacity
        self._offsets = array("Q", bytes(8 * capacity))  # where each id starts in _ids

    def __len__(self) -> int:
        return self._count

    def _slot(self, key: int) -> int:
        keys, capacity = self._keys, self._capacity
        slot = (key * 0x9E3779B97F4A7C15 >> 7) % capacity  # spread neighbouring numbers
        while keys[slot] != _FREE and keys[slot] != key:
            slot = slot + 1 if slot + 1 < capacity else 0
        return slot

    def first(self, key: int, tracking_id: str) -> str:
        """The tracking id first given for ``key``: ``tracking_id`` when it is the first."""
        slot = self._slot(key)
        if self._keys[slot] == key:
            return self._id_at(self._offsets[slot])
        if self._count + 1 > self._capacity * _LOAD:
            self._grow()
            slot = self._slot(key)
        encoded = tracking_id.encode()
        self._keys[slot] = key
        self._offsets[slot] = len(self._ids)
        self._ids += len(encoded).to_bytes(2, "big") + encoded  # ids are at most 255 chars
        self._count += 1
        return tracking_id

    def _id_at(self, offset: int) -> str:
        size = int.from_bytes(self._ids[offset : offset + 2], "big")
        return self._ids[offset + 2 : offset + 2 + size].decode()

    def _grow(self) -> None:
        keys, offsets = self._keys, self._offsets
        self._allocate(self._capacity * 2)
        for key, offset in zip(keys, offsets, strict=True):
            if key != _FREE:
                slot = self._slot(key)
                self._keys[slot], self._offsets[slot] = key, offset
