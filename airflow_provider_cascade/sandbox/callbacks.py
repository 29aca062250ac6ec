"""SMSBAT's reply callbacks, posted in bulk: for load tests and benchmarks of a receiver.

``post_callbacks(url, bodies, clients=20, rate=200)`` posts each body once from ``clients``
threads (each with its own kept-alive session), spread evenly at ``rate`` a second in all
(``rate=None``: as fast as they answer), and returns every answer's status and time.
"""

from __future__ import annotations

import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

__all__ = ["Load", "callback_body", "post_callbacks"]


def callback_body(phone_digits: str, text: str, **fields: str) -> dict[str, str]:
    """One callback as SMSBAT documents it (a new ``idUuid``, ``dt`` now)."""
    return {
        "idUuid": str(uuid.uuid4()),
        "alphaName": "SandboxBot",
        "phoneNumber": phone_digits,
        "text": text,
        "dt": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        **fields,
    }


@dataclass
class Load:
    """What the receiver answered."""

    elapsed: float
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def percentile(self, share: float) -> float:
        """The answer time below which ``share`` of the answers came (seconds)."""
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0

    @property
    def median(self) -> float:
        return statistics.median(self.latencies) if self.latencies else 0.0


def post_callbacks(
    url: str,
    bodies: Sequence[Any],
    *,
    clients: int = 20,
    rate: float | None = 200.0,
    timeout: float = 30.0,
) -> Load:
    """Post every body once to ``url`` (the token in it) from ``clients`` threads."""
    lock = threading.Lock()
    started = time.monotonic()
    load = Load(elapsed=0.0)

    def client(number: int) -> None:
        with requests.Session() as session:
            for k, body in enumerate(bodies[number::clients]):
                if rate:
                    due = started + (k * clients + number) / rate
                    time.sleep(max(0.0, due - time.monotonic()))
                sent = time.monotonic()
                try:
                    status = session.post(url, json=body, timeout=timeout).status_code
                except requests.RequestException:
                    status = 0  # no answer
                took = time.monotonic() - sent
                with lock:
                    load.latencies.append(took)
                    load.statuses[status] += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    load.elapsed = time.monotonic() - started
    return load
