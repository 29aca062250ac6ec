"""What a send produced, in one shape every downstream task reads the same way.

:class:`CascadeSendResult` is the XCom return value of
:class:`~airflow_provider_cascade.operators.cascade.CascadeSendOperator`. XCom is not bulk
storage: past ``xcom_inline_limit`` messages the id mapping goes to a JSON Lines file
(``results_path``, any ``ObjectStoragePath`` URI) and the XCom keeps counts and the path.
:meth:`CascadeSendResult.load` gives the whole mapping back either way.

Longer than 300 lines: the result, the spool that builds it and the failure summary are
the one shape every downstream task reads; the spool is also the delivery side's.
"""

from __future__ import annotations

import itertools
import json
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Generic, NamedTuple, TypeVar


class SentMessage(NamedTuple):
    """One message the service accepted: its id (for status tracking) and the caller's id."""

    message_id: str
    tracking_id: str

    def to_json(self) -> dict[str, str]:
        return {"message_id": self.message_id, "tracking_id": self.tracking_id}


class ScheduledMessage(NamedTuple):
    """An accepted message that the service delivers later: ``scheduled_sent`` (UTC ISO)."""

    message_id: str
    tracking_id: str
    scheduled_sent: str

    def to_json(self) -> dict[str, str]:
        return {
            "message_id": self.message_id,
            "tracking_id": self.tracking_id,
            "scheduled_sent": self.scheduled_sent,
        }


class Watched(NamedTuple):
    """A message a delivery wait watches; ``scheduled_sent`` when it is due later."""

    message_id: str
    tracking_id: str | None
    scheduled_sent: str | None = None


@dataclass
class CascadeSendResult:
    """The outcome of one send.

    :param route: ``standard`` or ``tg_viber``.
    :param sent: messages the service accepted (or, on a dry run, would be sent).
    :param batches: requests the send was split into.
    :param dry_run: nothing was sent; ``messages`` have no ``message_id``.
    :param rejected: messages left out as invalid (``on_invalid="skip"``), each
        ``{"ref", "field", "rule", "code"}`` (a
        :class:`~airflow_provider_cascade.validation.Problem`).
    :param in_doubt: tracking ids whose fate is unknown and that were not re-sent
        (``on_uncertain="skip"``): the service may or may not deliver them.
    :param messages: ``{"message_id", "tracking_id"}`` in send order (and
        ``scheduled_sent`` for a scheduled message); ``None`` in the XCom when offloaded to
        ``results_path`` (use :meth:`load`).
    :param results_path: the JSON Lines file holding ``messages`` when offloaded.
    :param counted: the source's size, counted before sending (with ``max_messages``).
    :param duplicates: with ``dedupe``: the messages not sent because an earlier one went to
        the same number, each ``{"tracking_id", "duplicate_of"}``; ``duplicate_count`` of them.
    :param suppressed: how many messages were not sent because their number is suppressed.
    :param suppressed_ids: their tracking ids.
    :param held: with ``quiet_hours``: messages not sent, each ``{"tracking_id", "reason"}``
        (inside quiet hours with ``quiet_hours_policy="skip"``, or no time zone to go by);
        ``held_count`` of them. When the send is offloaded, ``suppressed_ids``,
        ``duplicates`` and ``held`` are ``None`` in the XCom: they are then the lines of
        ``results_path`` without a message id (``"suppressed": true``, ``"duplicate_of"``,
        ``"held"``), which :meth:`load` puts back.
    :param truncated: the send held more than ``xcom_inline_limit`` messages and had no
        ``results_path``, so ``messages`` (and the left-out lists) hold only the first
        ``xcom_inline_limit``: its ``mark_sent_sql`` outbox holds every message id.
    :param rescheduled: messages whose ``scheduled_sent`` quiet hours moved to the window's end.
    :param timeline: ``[seconds since the send started, messages sent]`` after each batch,
        thinned to at most 100 points (the UI view's chart).
    :param forecast: a dry run's summary: ``by_type``, ``by_calling_code``, ``sms``
        (``gsm7_messages``, ``ucs2_messages``, ``parts`` if each fell back to SMS), and what
        each guardrail would do (``scheduled_by_quiet_hours``, ``suppressed``,
        ``duplicates``, ``held``, ``rejected``); None for a real send.
    """

    route: str
    sent: int = 0
    batches: int = 0
    dry_run: bool = False
    rejected: list[dict[str, Any]] = field(default_factory=list)
    in_doubt: list[str] = field(default_factory=list)
    messages: list[dict[str, str | None]] | None = None
    results_path: str | None = None
    counted: int | None = None
    duplicates: list[dict[str, str]] | None = field(default_factory=list)
    suppressed: int = 0
    suppressed_ids: list[str] | None = field(default_factory=list)
    held: list[dict[str, str]] | None = field(default_factory=list)
    duplicate_count: int = 0
    held_count: int = 0
    rescheduled: int = 0
    truncated: bool = False
    forecast: dict[str, Any] | None = None
    timeline: list[list[float]] = field(default_factory=list)

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
            "counted": self.counted,
            "duplicates": self.duplicates,
            "suppressed": self.suppressed,
            "suppressed_ids": self.suppressed_ids,
            "held": self.held,
            "duplicate_count": self.duplicate_count,
            "held_count": self.held_count,
            "rescheduled": self.rescheduled,
            "truncated": self.truncated,
            "forecast": self.forecast,
            "timeline": self.timeline,
        }

    def record(self, figures: Mapping[str, int]) -> None:
        """Set what the guardrails counted (``suppressed``, ``duplicate_count``,
        ``held_count``, ``rescheduled``, ``counted``), each by its field's name.

        :raises ValueError: a name that is no figure of the result.
        """
        for name, value in figures.items():
            if name not in _FIGURES:
                raise ValueError(f"{name!r} is not a guardrail figure of CascadeSendResult")
            setattr(self, name, value)

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
            result.messages, left_out = [], []
            for entry in _read_lines(result.results_path):
                if entry["message_id"] is None and _LEFT_OUT & entry.keys():
                    left_out.append(entry)
                else:
                    result.messages.append(entry)
            if result.suppressed_ids is None:
                result.take_left_out(left_out)
        return result

    def take_left_out(self, entries: Sequence[Mapping[str, Any]]) -> None:
        """Fill ``suppressed_ids``, ``duplicates`` and ``held`` from the entries the
        guardrails wrote (one each: ``suppressed``, ``duplicate_of`` or ``held``)."""
        self.suppressed_ids, self.duplicates, self.held = [], [], []
        for entry in entries:
            tracking_id = str(entry["tracking_id"])
            if entry.get("suppressed"):
                self.suppressed_ids.append(tracking_id)
            elif "duplicate_of" in entry:
                self.duplicates.append(
                    {"tracking_id": tracking_id, "duplicate_of": str(entry["duplicate_of"])}
                )
            elif "held" in entry:
                self.held.append({"tracking_id": tracking_id, "reason": str(entry["held"])})

    def iter_messages(self) -> Iterator[SentMessage]:
        """Every ``(message_id, tracking_id)``, streamed from the file when offloaded."""
        lines = self.messages if self.messages is not None else _read_lines(self.results_path)
        for entry in lines:
            if entry["message_id"] is not None:
                yield SentMessage(str(entry["message_id"]), str(entry["tracking_id"]))

    def iter_watched(self) -> Iterator[Watched]:
        """What a delivery wait needs of each message, streamed as :meth:`iter_messages`."""
        lines = self.messages if self.messages is not None else _read_lines(self.results_path)
        for entry in lines:
            if entry["message_id"] is not None:
                yield Watched(
                    str(entry["message_id"]), str(entry["tracking_id"]), entry.get("scheduled_sent")
                )

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
#: A JSON string literal, non-ASCII kept (the C function json's encoder calls for a str).
_string: Callable[[str], str] = json.encoder.encode_basestring
#: The result's fields that the guardrails count.
_FIGURES = frozenset({"counted", "suppressed", "duplicate_count", "held_count", "rescheduled"})
#: The keys of the results file's lines for messages the guardrails left out.
_LEFT_OUT = frozenset({"suppressed", "duplicate_of", "held"})
Item = TypeVar("Item")


def sent_lines(sent: Sequence[SentMessage]) -> str:
    """JSON lines ``{"message_id", "tracking_id"}``: the form of ``results_path`` and of the
    ledger's part objects, written directly (a large send's hot path)."""
    return "".join(
        f'{{"message_id":{_string(message_id)},"tracking_id":{_string(tracking_id)}}}\n'
        for message_id, tracking_id in sent
    )


class ResultSpool(Generic[Item]):
    """Collects a send's or a poll's per-message entries: in memory up to ``memory_limit``,
    then as JSON lines on local disk, so memory stays flat however large the campaign;
    then inlines or offloads them.

    :param to_json: one entry as the JSON object the XCom and ``results_path`` hold.
    :param memory_limit: entries kept in memory before spilling to disk (None: no limit).
    """

    def __init__(
        self, to_json: Callable[[Item], Mapping[str, Any]], memory_limit: int | None
    ) -> None:
        self._to_json = to_json
        self._memory_limit = memory_limit
        self._held: list[Item] = []
        self._file: IO[str] | None = None
        self.count = 0

    def extend(self, items: Sequence[Item], lines: str | None = None) -> None:
        """Add entries; ``lines``: their JSON lines, when the caller made them already."""
        self.count += len(items)
        if self._file is None:
            self._held.extend(items)
            if self._memory_limit is None or len(self._held) <= self._memory_limit:
                return
            items, self._held, lines = self._held, [], None
            self._file = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        self._file.write(self._lines(items) if lines is None else lines)

    def _lines(self, items: Sequence[Item]) -> str:
        sent = [item for item in items if isinstance(item, SentMessage) and item.message_id]
        if len(sent) == len(items):  # the hot path of a large send
            return sent_lines(sent)
        return "".join(_json(self._to_json(item)) + "\n" for item in items)

    @property
    def held(self) -> list[Item] | None:
        """The entries, when they are all still in memory."""
        return self._held if self._file is None else None

    def inline(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The first ``limit`` entries (all by default), as JSON objects."""
        if self._file is None:
            return [dict(self._to_json(item)) for item in self._held[:limit]]
        self._file.seek(0)
        return [json.loads(line) for line in itertools.islice(self._file, limit)]

    def offload(self, path: str, then: ResultSpool[Any] | None = None) -> str:
        """Write every entry to ``path`` (an ``ObjectStoragePath`` URI), and ``then``'s
        after them; return the path."""
        from airflow.providers.common.compat.sdk import ObjectStoragePath

        target = ObjectStoragePath(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w") as out:  # type: ignore[no-untyped-call]
            self._write_to(out)
            if then is not None:
                then._write_to(out)
        return str(path)

    def _write_to(self, out: IO[str]) -> None:
        if self._file is None:
            out.write(self._lines(self._held))
        else:
            self._file.seek(0)
            shutil.copyfileobj(self._file, out)

    def close(self) -> None:
        """Remove the spill file; entries held in memory stay readable."""
        if self._file is not None:
            self._file.close()


#: XCom key of a failed send's summary (what the Cascade tab shows of it).
FAILURE_KEY = "cascade_failure"
#: Problems a failed send's summary keeps (the error lists them all).
FAILURE_PROBLEMS_KEPT = 20


def failure_summary(error: Exception) -> dict[str, Any]:
    """What a failed send leaves for the Cascade tab: the error's type and first line,
    what the service accepted before it, and the first problems. Phones masked, no text."""
    from airflow_provider_cascade.privacy import redact_phones

    lines = str(error).strip().splitlines()
    problems = list(getattr(error, "problems", ()))
    return {
        "error": type(error).__name__,
        "first_line": redact_phones(lines[0] if lines else type(error).__name__),
        "accepted": len(getattr(error, "accepted", ())),
        "problem_count": len(problems),
        "problems": [problem.to_json() for problem in problems[:FAILURE_PROBLEMS_KEPT]],
        "in_doubt": len(getattr(error, "tracking_ids", ())),
        "unmarked": len(getattr(error, "unmarked", ())),
    }
