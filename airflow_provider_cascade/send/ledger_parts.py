"""The send ledger's part objects: where a send has ``results_path``, the ids of each batch
go to an object of their own under ``<results_path>.parts/`` and the task state store holds
only its name (the store is sized for coordination state, not bulk data)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from airflow_provider_cascade.results import SentMessage, sent_lines

_string = json.JSONEncoder(ensure_ascii=False).encode


class PartStore:
    """One object per batch under ``<results_path>.parts/``: the accepted ids of a batch
    (``NNNNNNNN.accepted.jsonl``) or the tracking ids of a batch about to be sent
    (``NNNNNNNN.sending.jsonl``).

    :param results_path: the send's ``results_path`` (an ``ObjectStoragePath`` URI).
    """

    def __init__(self, results_path: str) -> None:
        from airflow.providers.common.compat.sdk import ObjectStoragePath

        self.results_path = results_path
        self.folder = ObjectStoragePath(results_path + ".parts")
        self._made = False

    def write_accepted(
        self, number: int, sent: Sequence[SentMessage], lines: str | None = None
    ) -> str:
        """Write a batch's accepted ids; ``lines``: their :func:`sent_lines`, if made."""
        text = sent_lines(sent) if lines is None else lines
        return self._write(f"{number:08d}.accepted.jsonl", text)

    def write_sending(self, number: int, tracking_ids: Sequence[str]) -> str:
        lines = "".join(_string(tracking_id) + "\n" for tracking_id in tracking_ids)
        return self._write(f"{number:08d}.sending.jsonl", lines)

    def _write(self, name: str, text: str) -> str:
        if not self._made:
            self.folder.mkdir(parents=True, exist_ok=True)
            self._made = True
        with (self.folder / name).open("w") as out:  # type: ignore[no-untyped-call]
            out.write(text)
        return name

    def read_lines(self, name: str) -> list[Any]:
        """The JSON lines of a part. :raises FileNotFoundError: it was removed."""
        path = self.folder / name
        if not path.exists():
            raise FileNotFoundError(name)
        with path.open("r") as lines:  # type: ignore[no-untyped-call]
            return [json.loads(line) for line in iter(lines.readline, "") if line.strip()]

    def remove(self) -> None:
        """Delete every part (once the final results file holds the same ids)."""
        if self.folder.exists():
            self.folder.rmdir(recursive=True)
