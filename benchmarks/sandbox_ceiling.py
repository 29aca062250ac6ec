"""The sandbox's own ceiling: messages/s it accepts from a raw client, 1,000 per request.

    python benchmarks/sandbox_ceiling.py [--requests 100] [--runs 3]

Prints the median of the runs, so readers can tell client cost from server cost in the
other benchmarks. The sandbox is one process with one event loop: one core.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import requests

from airflow_provider_cascade.messages import Route
from airflow_provider_cascade.sandbox.client import Sandbox

BATCH = 1_000


def bodies(count: int, run: int) -> list[bytes]:
    return [
        json.dumps(
            [
                {
                    "id": f"r{run}-b{b}-m{m}",
                    "fromName": "Bench",
                    "toPhone": f"+38050{(b * BATCH + m) % 10_000_000:07d}",
                    "messageType": "transaction",
                    "text": "Your order has been confirmed and will arrive tomorrow.",
                    "ttl": 86_400,
                }
                for m in range(BATCH)
            ]
        ).encode()
        for b in range(count)
    ]


def rates(sandbox: Sandbox, requests_per_run: int, runs: int) -> list[float]:
    """Messages/s a raw client gets accepted, one run after another (bodies made beforehand)."""
    found = []
    with requests.Session() as session:
        session.headers.update(
            {"X-Authorization-Key": sandbox.api_key, "Content-Type": "application/json"}
        )
        url = sandbox.url + Route.STANDARD.path
        for run in range(runs):
            payloads = bodies(requests_per_run, run)
            started = time.perf_counter()
            for body in payloads:
                session.post(url, data=body, timeout=60).raise_for_status()
            elapsed = time.perf_counter() - started
            found.append(requests_per_run * BATCH / elapsed)
            sandbox.clear()
    return found


def ceiling(sandbox: Sandbox, requests_per_run: int = 100, runs: int = 3) -> float:
    """The median of :func:`rates`: what the sandbox takes when the client costs nothing."""
    return statistics.median(rates(sandbox, requests_per_run, runs))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with Sandbox.start() as sandbox:
        found = rates(sandbox, args.requests, args.runs)
    print(
        f"sandbox ceiling: {statistics.median(found):,.0f} msgs/s accepted "
        f"(median of {args.runs} runs of {args.requests} x {BATCH}-message requests; "
        f"runs: {', '.join(f'{r:,.0f}' for r in found)})"
    )


if __name__ == "__main__":
    main()
