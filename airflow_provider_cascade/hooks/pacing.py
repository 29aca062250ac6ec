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

    def reserve(self, after: float = 0.0) -> float:
        """Take the next slot, no sooner than ``after`` seconds from now; return how long
        to wait for it."""
        with self._lock:
            now = self._clock()
            slot = max(now + after, self._next)
            self._next = slot + self.interval
        return slot - now

    def wait(self) -> None:
        delay = self.reserve()
        if delay > 0:
            self._sleep(delay)


class SharedPacer(Pacer):
    """Paces at its own ``rate`` and, on top, within a pacer it shares with others (one
    budget for many callers): a request waits for its own slot, then for the next shared
    one after it, so neither rate is ever exceeded."""

    def __init__(
        self,
        rate: float,
        shared: Pacer,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        super().__init__(rate, clock, sleep)
        self.shared = shared

    def reserve(self, after: float = 0.0) -> float:
        return self.shared.reserve(after=super().reserve(after))
