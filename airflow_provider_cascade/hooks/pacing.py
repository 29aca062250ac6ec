"""Client-side pacing: requests spaced at most ``rate`` per second, sync and async alike."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class Pacer:
    """Spaces requests at most ``rate`` per second, across the threads sharing it.

    Sync callers :meth:`wait`; async callers take :meth:`reserve`'s delay and sleep it
    with ``asyncio.sleep``, so one pacer serves both sides of the hook.
    """

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take the next slot; return how long to wait for it."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
        return slot - now

    def wait(self) -> None:
        delay = self.reserve()
        if delay > 0:
            self._sleep(delay)
