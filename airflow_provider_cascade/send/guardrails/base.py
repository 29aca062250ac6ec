"""The guardrail protocol: one step of the send pipeline that may stop a send or leave
messages out, and says why.

A guardrail sees the send at three points, each a no-op unless it overrides it:

- :meth:`Guardrail.start`: before anything is sent (``max_messages`` counts the source);
- :meth:`Guardrail.screen`: each batch of valid messages, returning what goes on, what it
  left out (one entry each, never sent, never written back) and the problems it found
  (rejected or failing the send as ``on_invalid`` says);
- :meth:`Guardrail.checked`: after each batch was checked (``max_reject_ratio``).

It owns its counts (:meth:`Guardrail.figures`, by the result's field names), which the
result, a dry run's forecast and the Cascade tab read through :attr:`Guardrail.labels`:
nothing outside the guardrail's own module knows what it does. A new guardrail is one
module implementing this class plus its line in ``CascadeGuardrails.steps``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from airflow_provider_cascade.exceptions import Problem
from airflow_provider_cascade.messages import CascadeMessage

if TYPE_CHECKING:
    from airflow_provider_cascade.send.sources import Source

__all__ = ["Batch", "Guardrail", "Log", "Screened", "Start", "Tally", "left_out"]


class Log(Protocol):
    """A logger: the stdlib's, or Airflow's structlog one."""

    def info(self, event: str, *args: Any) -> Any: ...
    def warning(self, event: str, *args: Any) -> Any: ...
    def error(self, event: str, *args: Any) -> Any: ...


@dataclass
class Batch:
    """Valid messages on their way, and each one's key as the source gave it (the
    outbox's own key for write-back: an integer stays an integer)."""

    messages: list[CascadeMessage]
    keys: list[Any]

    def __len__(self) -> int:
        return len(self.messages)


@dataclass
class Screened:
    """What a guardrail made of a batch: ``kept`` goes on; ``left_out`` holds one entry per
    message it left out (``{"message_id": None, "tracking_id": ..., <why>: ...}``, the
    result's form); ``problems`` are messages that are invalid once it placed them."""

    kept: Batch
    left_out: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def left_out(tracking_id: str, **why: Any) -> dict[str, Any]:
    """The entry of one message a guardrail left out."""
    return {"message_id": None, "tracking_id": tracking_id, **why}


@dataclass
class Start:
    """What a guardrail may look at before anything is sent."""

    source: Source
    dry_run: bool
    log: Log
    _counted: int | None = None

    _uncountable: bool = False

    def count(self) -> int | None:
        """How many messages the source holds: its length, or counted once (``SELECT
        COUNT(*)``), however many guardrails ask; None for a source that cannot be counted
        before it is read (a generator): a cap then applies as the messages are read."""
        if self._counted is None and not self._uncountable:
            total = self.source.total
            self._counted = total if total is not None else self.source.count()
            self._uncountable = self._counted is None
        return self._counted


@dataclass(frozen=True)
class Tally:
    """The send so far, after a batch was checked: messages read, the rejected ones
    (``{"ref", "field", "rule", "code"}``) and how many the service accepted."""

    seen: int
    rejected: Sequence[Mapping[str, str]]
    sent: int


class Guardrail:
    """One guardrail of a send (see the module's docstring)."""

    #: How logs and errors name it.
    name: ClassVar[str] = ""
    #: Its figures (the result's field names) -> their names in a dry run's forecast and
    #: the Cascade tab.
    labels: ClassVar[Mapping[str, str]] = {}

    def start(self, start: Start) -> None:
        """Before anything is sent; raise to stop the send."""

    def screen(self, batch: Batch, now: datetime) -> Screened:
        """One batch of valid messages; ``now`` is the batch's time (UTC, whole seconds)."""
        return Screened(batch)

    def checked(self, tally: Tally) -> None:
        """After each batch was checked; raise to stop the send."""

    def figures(self) -> dict[str, int]:
        """What it did so far, by the result's field names (``suppressed``...)."""
        return {}
