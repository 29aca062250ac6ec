"""One polling round: every message still waiting and due is looked up once, concurrently,
and each answer is taken as it arrives. The sensor's poke and the deferred trigger both run
a round through :func:`poll_round`; neither has a loop of its own.

Look-ups run with bounded concurrency, so the pace (the hook's pacer) is held whatever the
latency: one at a time, 100 ms of latency would cap a wait at 10 look-ups/s. A ``429``
pauses every look-up (``Retry-After``, else 1, 2, 4, 8 s) and the message is asked again:
it is never skipped. A round never runs past its ``deadline``: look-ups not answered by
then stay waiting, and a pause is cut short.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from airflow_provider_cascade.constants import MAX_STATUS_CONCURRENCY
from airflow_provider_cascade.delivery.checkpoints import Checkpoint
from airflow_provider_cascade.delivery.tracker import DeliveryTracker
from airflow_provider_cascade.exceptions import (
    CascadeAuthError,
    CascadeError,
    CascadeRateLimitError,
)
from airflow_provider_cascade.wire import DeliveryStatus

__all__ = [
    "AsyncStatusSource",
    "Round",
    "StatusPoller",
    "concurrency_for",
    "pause_before_next_round",
    "poll_round",
    "polling",
]


class AsyncStatusSource(Protocol):
    """What a round needs of ``CascadeAsyncHook``."""

    async def get_message_status(self, message_id: str) -> dict[str, Any] | None: ...


def concurrency_for(rate: float, messages: int) -> int:
    """Look-ups in flight: two seconds' worth of the pace, at most
    :data:`MAX_STATUS_CONCURRENCY`, never more than there are messages."""
    return max(1, min(messages, MAX_STATUS_CONCURRENCY, math.ceil(rate * 2)))


Answer = Callable[[str, "dict[str, Any] | None"], None]


class StatusPoller:
    """Looks messages up with bounded concurrency; remembers a ``429`` pause across rounds.

    :param source: the async hook.
    :param rate: the pace, to size the concurrency.
    :param log: where failed look-ups are reported.
    :param first_wait: the first pause after a ``429`` without ``Retry-After``, doubled
        on each one in a row, at most ``max_wait``.
    """

    def __init__(
        self,
        source: AsyncStatusSource,
        rate: float,
        log: Any,
        *,
        first_wait: float = 1.0,
        max_wait: float = 8.0,
    ) -> None:
        self.source = source
        self.rate = rate
        self.log = log
        self.first_wait = first_wait
        self.max_wait = max_wait
        self.rate_limited = 0
        self._paused_until = 0.0
        self._limited_in_a_row = 0

    async def poll(
        self,
        message_ids: Iterable[str],
        on_answer: Answer | None = None,
        *,
        deadline: float | None = None,
    ) -> tuple[dict[str, dict[str, Any] | None], int]:
        """Look each message up once (a rate-limited one again after the pause).

        :param on_answer: called with each answer as it arrives (None: the service does
            not know the message yet).
        :param deadline: a UNIX time: no look-up starts after it, and the round returns
            then even with look-ups unanswered (they are not counted as failed).
        :return: the answers by message id, and how many look-ups failed (they are asked
            again next round).
        :raises CascadeAuthError: the credentials were refused.
        """
        queue = deque(message_ids)
        answers: dict[str, dict[str, Any] | None] = {}
        failed = 0

        def time_left() -> float:
            return math.inf if deadline is None else deadline - time.time()

        async def look_up() -> None:
            nonlocal failed
            while queue and time_left() > 0:
                pause = min(self._paused_until - time.monotonic(), time_left())
                if pause > 0:
                    await asyncio.sleep(pause)
                    continue  # the queue may be empty by now, or the deadline passed
                message_id = queue.popleft()
                try:
                    answer = await self.source.get_message_status(message_id)
                except CascadeRateLimitError as error:
                    self._pause(error.retry_after)
                    queue.append(message_id)  # slowed down, not skipped
                    continue
                except CascadeAuthError:
                    raise
                except CascadeError as error:
                    failed += 1
                    self.log.warning("Status look-up failed (%s); asked again next round", error)
                    continue
                self._limited_in_a_row = 0
                answers[message_id] = answer
                if on_answer is not None:
                    on_answer(message_id, answer)

        workers = [
            asyncio.ensure_future(look_up()) for _ in range(concurrency_for(self.rate, len(queue)))
        ]
        try:
            limit = time_left()
            done, _ = await asyncio.wait(
                workers,
                timeout=None if limit == math.inf else max(limit, 0.0),
                return_when=asyncio.FIRST_EXCEPTION,
            )
            for worker in done:
                worker.result()  # refused credentials end the round
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        return answers, failed

    def _pause(self, retry_after: float | None) -> None:
        self.rate_limited += 1
        wait = retry_after
        if wait is None:
            wait = self.first_wait * 2**self._limited_in_a_row
            self._limited_in_a_row += 1
        wait = min(wait, self.max_wait)
        until = time.monotonic() + wait
        if until > self._paused_until:
            self._paused_until = until
            self.log.warning(
                "Status look-ups rate limited (429): pausing them all for %.1f s", wait
            )


@dataclass
class Round:
    """What one round did: the messages that became final, and failed look-ups."""

    became_final: list[str] = field(default_factory=list)
    failed: int = 0


async def poll_round(
    tracker: DeliveryTracker,
    poller: StatusPoller,
    *,
    write_part: Callable[[Sequence[tuple[str, DeliveryStatus]]], Any] | None = None,
    deadline: float | None = None,
    checkpoint: Checkpoint | None = None,
) -> Round:
    """Look up every message due now once; record each answer in ``tracker`` as it comes.

    :param write_part: writes a checkpoint part (a blocking call: run in a thread, one at a
        time, while look-ups go on); None: no workspace, nothing is written.
    :param deadline: a UNIX time the round does not run past.
    :param checkpoint: when to write (default: :class:`Checkpoint`'s cadence).
    """
    outcome = Round()
    due = tracker.due_now()
    if not due:
        return outcome
    checkpoint = checkpoint or Checkpoint(write_part)
    lock = asyncio.Lock()
    writes: set[asyncio.Task[None]] = set()

    async def write(part: list[tuple[str, DeliveryStatus]]) -> None:
        async with lock:  # parts are numbered in order
            await asyncio.to_thread(checkpoint.write, part)

    def on_answer(message_id: str, payload: dict[str, Any] | None) -> None:
        if payload is None:  # unknown yet: asked again next round
            return
        tracker.record(message_id, payload)
        if tracker.is_settled(message_id):
            outcome.became_final.append(message_id)
            part = checkpoint.add(message_id, tracker.statuses[message_id])
            if part:
                task = asyncio.ensure_future(write(part))
                writes.add(task)
                task.add_done_callback(writes.discard)

    try:
        _, outcome.failed = await poller.poll(due, on_answer, deadline=deadline)
    finally:
        await asyncio.gather(*writes)  # a failed write is raised: the round is not durable
        if rest := checkpoint.take():
            await write(rest)
    return outcome


@asynccontextmanager
async def polling(
    cascade_conn_id: str, rate: float | None, sharing: int, log: Any
) -> AsyncIterator[StatusPoller]:
    """A poller on the connection, paced as :mod:`~airflow_provider_cascade.delivery.budget`
    says: at ``rate`` when one is given, else at its share of the connection's status
    budget (``sharing`` mapped instances at once), within the process's one pacer for it.
    """
    from airflow_provider_cascade.delivery.budget import status_pacer
    from airflow_provider_cascade.hooks.status import CascadeAsyncHook

    async with CascadeAsyncHook(cascade_conn_id, max_requests_per_second=rate) as hook:
        pace = hook.rate
        if rate is None:
            hook.use_pacer(status_pacer(cascade_conn_id, hook.rate, sharing))
            pace = hook.rate / max(1, sharing)
        yield StatusPoller(hook, pace, log)


def pause_before_next_round(
    tracker: DeliveryTracker, poll_interval: float, deadline: float | None
) -> float:
    """Seconds until the next round: ``poll_interval``; when nothing is due yet, until the
    earliest scheduled message is; never past ``deadline``."""
    now = time.time()
    wake = now + poll_interval
    if not tracker.due_now(now):
        wake = max(wake, tracker.next_due(now) or wake)
    if deadline is not None:
        wake = min(wake, deadline)
    return max(0.0, wake - now)
