"""Where a delivery wait keeps its working set and its progress: object storage, not the
trigger's kwargs or the task state store.

A folder ``<results_path>.delivery/`` holds ``watched.jsonl`` (the messages to watch, written
once by the sensor) and ``final-NNNNNN.jsonl`` parts (statuses that became final). The
trigger's kwargs and events then carry the folder's path only, whatever the number of
messages; and a triggerer restart, a reschedule poke or a task retry reads the folder back
and never polls a final message again.

Finals are checkpointed as answers arrive (:class:`Checkpoint`): a part every
:data:`CHECKPOINT_SECONDS` or :data:`CHECKPOINT_FINALS` finals, whichever comes first, and
at the end of each round; so a triggerer killed mid-round looks up again at most one
part's worth. A small wait without a workspace keeps its statuses in the trigger's memory:
a restart looks its (at most a few hundred, :data:`INLINE_WATCH_BYTES`) messages up again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from airflow_provider_cascade.delivery.rows import from_row, to_row
from airflow_provider_cascade.wire import DeliveryStatus

#: A checkpoint part is written at least this often while finals arrive...
CHECKPOINT_SECONDS = 5.0
#: ... or once this many finals wait to be written, whichever comes first.
CHECKPOINT_FINALS = 500

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
        self._next_part: int | None = None  # listed once, then counted

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
        """Record final statuses as one new part (one writer at a time)."""
        if not finals:
            return
        if self._next_part is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._next_part = len(self._final_parts())
        number, self._next_part = self._next_part, self._next_part + 1
        with (self.folder / f"final-{number:06d}.jsonl").open("w") as out:  # type: ignore[no-untyped-call]
            for message_id, found in finals:
                out.write(json.dumps([message_id, *to_row(found)]) + "\n")

    def read_finals(self) -> Iterator[tuple[str, DeliveryStatus]]:
        for name in self._final_parts():
            for row in self._lines(name):
                yield row[0], from_row(row[1:])

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


class Checkpoint:
    """Finals gathered as answers arrive, written as a part when enough time or enough of
    them have passed (see the module's doc), and whatever is left by :meth:`flush`.

    :param write: writes one part (:meth:`DeliveryWorkspace.append_final`, or its async
        wrapper's synchronous call); None: nothing is kept (no workspace).
    """

    def __init__(
        self,
        write: Callable[[Sequence[tuple[str, DeliveryStatus]]], Any] | None,
        *,
        seconds: float | None = None,
        finals: int | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._write = write
        self._seconds = CHECKPOINT_SECONDS if seconds is None else seconds
        self._finals = CHECKPOINT_FINALS if finals is None else finals
        self._clock = clock
        self._pending: list[tuple[str, DeliveryStatus]] = []
        self._since = clock()

    def add(self, message_id: str, status: DeliveryStatus) -> list[tuple[str, DeliveryStatus]]:
        """Take one final status; return the finals to write now (empty: not yet)."""
        if self._write is None:
            return []
        self._pending.append((message_id, status))
        if len(self._pending) >= self._finals or self._clock() - self._since >= self._seconds:
            return self.take()
        return []

    def take(self) -> list[tuple[str, DeliveryStatus]]:
        """The finals gathered since the last part (the clock starts again)."""
        taken, self._pending = self._pending, []
        self._since = self._clock()
        return taken

    def write(self, finals: Sequence[tuple[str, DeliveryStatus]]) -> None:
        if finals and self._write is not None:
            self._write(finals)
