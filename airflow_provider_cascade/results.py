"""What a send produced, in one shape every downstream task reads the same way.

:class:`CascadeSendResult` is the XCom return value of
:class:`~airflow_provider_cascade.operators.cascade.CascadeSendOperator`. XCom is not bulk
storage: past ``xcom_inline_limit`` messages the id mapping goes to a JSON Lines file
(``results_path``, any ``ObjectStoragePath`` URI) and the XCom keeps counts and the path.
:meth:`CascadeSendResult.load` gives the whole mapping back either way.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from airflow_provider_cascade.messages import SentMessage


@dataclass
class CascadeSendResult:
    """The outcome of one send.

    :param route: ``standard`` or ``tg_viber``.
    :param sent: messages the service accepted (or, on a dry run, would be sent).
    :param batches: requests the send was split into.
    :param dry_run: nothing was sent; ``messages`` have no ``message_id``.
    :param rejected: messages left out as invalid (``on_invalid="skip"``), each
        ``{"ref", "tracking_id", "field", "rule", "code"}``.
    :param in_doubt: tracking ids whose fate is unknown and that were not re-sent
        (``on_uncertain="skip"``): the service may or may not deliver them.
    :param messages: ``{"message_id", "tracking_id"}`` in send order; ``None`` in the XCom
        when offloaded to ``results_path`` (use :meth:`load`).
    :param results_path: the JSON Lines file holding ``messages`` when offloaded.
    """

    route: str
    sent: int = 0
    batches: int = 0
    dry_run: bool = False
    rejected: list[dict[str, Any]] = field(default_factory=list)
    in_doubt: list[str] = field(default_factory=list)
    messages: list[dict[str, str | None]] | None = None
    results_path: str | None = None

    def to_xcom(self) -> dict[str, Any]:
        """The JSON-serialisable dict pushed as the task's return value."""
        return {
            "route": self.route,
            "sent": self.sent,
            "batches": self.batches,
            "dry_run": self.dry_run,
            "rejected": self.rejected,
            "in_doubt": self.in_doubt,
            "messages": self.messages,
            "results_path": self.results_path,
        }

    @classmethod
    def from_xcom(cls, value: Mapping[str, Any]) -> CascadeSendResult:
        """Rebuild the result as pushed, without reading an offloaded file."""
        known = {name: value[name] for name in cls.__dataclass_fields__ if name in value}
        if "route" not in known:
            raise ValueError("not a CascadeSendResult: no 'route'")
        return cls(**known)

    @classmethod
    def load(cls, value: Mapping[str, Any] | CascadeSendResult) -> CascadeSendResult:
        """The result with ``messages`` filled in, reading ``results_path`` if offloaded."""
        result = value if isinstance(value, CascadeSendResult) else cls.from_xcom(value)
        if result.messages is None and result.results_path:
            result.messages = list(_read_lines(result.results_path))
        return result

    def iter_messages(self) -> Iterator[SentMessage]:
        """Every ``(message_id, tracking_id)``, streamed from the file when offloaded."""
        lines = self.messages if self.messages is not None else _read_lines(self.results_path)
        for entry in lines:
            if entry["message_id"] is not None:
                yield SentMessage(str(entry["message_id"]), str(entry["tracking_id"]))

    @property
    def message_ids(self) -> list[str]:
        return [sent.message_id for sent in self.iter_messages()]


def _read_lines(path: str | None) -> Iterator[dict[str, str | None]]:
    if not path:
        return
    from airflow.providers.common.compat.sdk import ObjectStoragePath

    with ObjectStoragePath(path).open("r") as lines:  # type: ignore[no-untyped-call]
        # readline, not iteration: Airflow 2's tracking file wrapper is not iterable.
        for line in iter(lines.readline, ""):
            if line.strip():
                yield json.loads(line)


_json = json.JSONEncoder(ensure_ascii=False).encode


class ResultSpool:
    """Collects JSON lines (``{"message_id", "tracking_id", ...}``) on local disk while a
    send or a poll runs, so memory stays flat however large the campaign; then inlines or
    offloads them."""

    def __init__(self) -> None:
        self._file: IO[str] = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        self.count = 0

    def add(self, entry: Mapping[str, Any]) -> None:
        self._file.write(json.dumps(entry))
        self._file.write("\n")
        self.count += 1

    def add_sent(self, sent: Sequence[SentMessage]) -> None:
        """Add ``{"message_id", "tracking_id"}`` lines: the hot path of a large send."""
        self._file.write(
            "".join(
                f'{{"message_id":{_json(message_id)},"tracking_id":{_json(tracking_id)}}}\n'
                for message_id, tracking_id in sent
            )
        )
        self.count += len(sent)

    def inline(self) -> list[dict[str, Any]]:
        self._file.seek(0)
        return [json.loads(line) for line in self._file]

    def offload(self, path: str) -> str:
        """Write every line to ``path`` (an ``ObjectStoragePath`` URI); return the path."""
        from airflow.providers.common.compat.sdk import ObjectStoragePath

        target = ObjectStoragePath(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        self._file.seek(0)
        with target.open("w") as out:  # type: ignore[no-untyped-call]
            shutil.copyfileobj(self._file, out)
        return str(path)

    def close(self) -> None:
        self._file.close()
