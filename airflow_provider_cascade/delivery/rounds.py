"""Status look-ups for many messages at once, shared by the sensor and the trigger.

Look-ups run with bounded concurrency, so the hook's pace (``max_requests_per_second``)
is held whatever the latency: one at a time, 100 ms of latency caps a poller at 10
look-ups/s. A ``429`` pauses every look-up (``Retry-After``, else 1, 2, 4, 8 s) and the
message is asked again: it is never skipped.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Iterable
from typing import Any, Protocol

from airflow_provider_cascade.constants import MAX_STATUS_CONCURRENCY
from airflow_provider_cascade.exceptions import (
    CascadeAuthError,
    CascadeError,
    CascadeRateLimitError,
)


class AsyncStatusSource(Protocol):
    """What the poller needs of ``CascadeAsyncHook``."""

    async def get_message_status(self, message_id: str) -> dict[str, Any] | None: ...


def concurrency_for(rate: float, messages: int) -> int:
    """Look-ups in flight: two seconds' worth of the pace, at most
    :data:`MAX_STATUS_CONCURRENCY`, never more than there are messages."""
    return max(1, min(messages, MAX_STATUS_CONCURRENCY, math.ceil(rate * 2)))


class StatusPoller:
    """One round of look-ups over a set of messages.

    :param source: the async hook.
    :param rate: the hook's pace, to size the concurrency.
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
        self, message_ids: Iterable[str]
    ) -> tuple[dict[str, dict[str, Any] | None], int]:
        """Look each message up once (a rate-limited one again after the pause).

        :return: the answers by message id (None: the service does not know it yet), and
            how many look-ups failed (they are asked again next round).
        :raises CascadeAuthError: the credentials were refused.
        """
        queue = deque(message_ids)
        answers: dict[str, dict[str, Any] | None] = {}
        failed = 0

        async def look_up() -> None:
            nonlocal failed
            while queue:
                pause = self._paused_until - time.monotonic()
                if pause > 0:
                    await asyncio.sleep(pause)
                    continue  # the queue may be empty by now
                message_id = queue.popleft()
                try:
                    answers[message_id] = await self.source.get_message_status(message_id)
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

        workers = concurrency_for(self.rate, len(queue))
        await asyncio.gather(*(look_up() for _ in range(workers)))
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
