"""Fakes shared by the tests: a batch sender, a task state store, sources. Each satisfies
the package's own protocol (``BatchSender``, ``StateStore``, ``Source``): no type ignores."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from airflow_provider_cascade.messages import CascadeMessage, Route, SentMessage
from airflow_provider_cascade.send.sources import ListSource, RawBatch
from tests.conftest import make_message


class FakeSender:
    """Accepts every batch, or fails the batches (by their first id) listed in ``fail``."""

    def __init__(
        self, fail: dict[str, Exception] | None = None, delay: float = 0.0, uuids: bool = False
    ) -> None:
        self.fail = fail or {}
        self.delay = delay
        self.uuids = uuids  # message ids as the service gives them, else id-<tracking id>
        self.batches: list[list[str]] = []
        self.lock = threading.Lock()

    def send_batch(self, batch: Sequence[CascadeMessage], route: Route) -> list[SentMessage]:
        with self.lock:
            self.batches.append([m.tracking_id for m in batch])
        time.sleep(self.delay)
        if batch[0].tracking_id in self.fail:
            raise self.fail[batch[0].tracking_id]
        if self.uuids:
            return [SentMessage(str(uuid.uuid4()), m.tracking_id) for m in batch]
        return [SentMessage(f"id-{m.tracking_id}", m.tracking_id) for m in batch]


class MemoryStore(dict[str, Any]):
    """A task state store in memory that counts its writes."""

    writes = 0

    def set(self, key: str, value: Any) -> None:
        self.writes += 1
        self[key] = value


class BatchesSource:
    """A source that yields the batches it is given, as they are (e.g. SQL-like rows)."""

    total = None

    def __init__(self, batches: list[RawBatch]) -> None:
        self._batches = batches

    def batches(self, batch_size: int) -> Iterator[RawBatch]:
        return iter(self._batches)

    def count(self) -> int:
        return sum(len(batch.items) for batch in self._batches)


def numbered(count: int) -> ListSource:
    """``order-0`` ... ``order-{count-1}``, valid transaction messages."""
    return ListSource([make_message(n) for n in range(count)])


def checked(*numbers: int) -> list[CascadeMessage]:
    return [CascadeMessage.from_mapping(make_message(n)) for n in numbers]
