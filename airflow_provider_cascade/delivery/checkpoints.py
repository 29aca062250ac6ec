"""Where a delivery wait keeps its working set and its progress: object storage, not the
trigger's kwargs or the task state store.

A folder ``<results_path>.delivery/`` holds ``watched.jsonl`` (the messages to watch, written
once by the sensor) and one ``final-NNNNNN.jsonl`` per polling round (the statuses that
became final in it). The trigger's kwargs and events then carry the folder's path only,
whatever the number of messages; and a triggerer restart, a reschedule poke or a task
retry reads the folder back and never polls a final message again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from airflow_provider_cascade.wire import DeliveryStatus

#: Up to this many bytes of JSON, the trigger's kwargs hold the watched messages inline
#: (about 400 UUID message ids with short tracking ids), and its event their statuses
#: (at most about twice as much: still under 64 KB); past it, a workspace is needed (the
#: sensor's or the send's ``results_path``).
INLINE_WATCH_BYTES = 24_000


def fits_inline(messages: Sequence[Sequence[str | None]]) -> bool:
    """True when ``messages`` may travel in a trigger's kwargs."""
    return len(json.dumps(messages)) <= INLINE_WATCH_BYTES


class DeliveryWorkspace:
    """The folder ``<base>.delivery/`` (any ``ObjectStoragePath`` URI)."""

    def __init__(self, base: str) -> None:
        from airflow.providers.common.compat.sdk import ObjectStoragePath

        self.base = base
        self.folder = ObjectStoragePath(base + ".delivery")

    def write_watched(self, pairs: Iterable[Sequence[str | None]]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / "watched.jsonl").open("w") as out:  # type: ignore[no-untyped-call]
            for pair in pairs:
                out.write(json.dumps(list(pair)) + "\n")

    def has_watched(self) -> bool:
        return bool((self.folder / "watched.jsonl").exists())

    def read_watched(self) -> list[tuple[str | None, ...]]:
        """``(message_id, tracking_id[, scheduled_sent])`` as written."""
        return [tuple(row) for row in self._lines("watched.jsonl")]

    def append_final(self, finals: Sequence[tuple[str, DeliveryStatus]]) -> None:
        """Record the statuses that became final in one round, as one new part."""
        if not finals:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        number = len(self._final_parts())
        with (self.folder / f"final-{number:06d}.jsonl").open("w") as out:  # type: ignore[no-untyped-call]
            for message_id, found in finals:
                row = [message_id, found.status, found.channel, found.cost]
                out.write(json.dumps([*row, found.bill_amount, found.bill_currency]) + "\n")

    def read_finals(self) -> Iterator[tuple[str, DeliveryStatus]]:
        for name in self._final_parts():
            for message_id, status, channel, cost, bill, currency in self._lines(name):
                yield message_id, DeliveryStatus(status, channel, None, cost, bill, currency)

    def _final_parts(self) -> list[str]:
        if not self.folder.exists():
            return []
        return sorted(p.name for p in self.folder.iterdir() if p.name.startswith("final-"))

    def _lines(self, name: str) -> list[Any]:
        path = self.folder / name
        if not path.exists():
            return []
        with path.open("r") as lines:  # type: ignore[no-untyped-call]
            return [json.loads(line) for line in iter(lines.readline, "") if line.strip()]
