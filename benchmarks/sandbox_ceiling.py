"""The sandbox's own ceiling: messages/s it accepts from a raw client, 1,000 per request.

    python benchmarks/sandbox_ceiling.py [--requests 100] [--runs 3]

(benchmarks/cluster_campaign.py measures it too, against the harness's sandbox, with the
campaign's batch size and as many clients at once as partitions send at once.)

Prints the median of the runs, so readers can tell client cost from server cost in the
other benchmarks. The sandbox is one process with one event loop: one core.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from airflow_provider_cascade.messages import Route
from airflow_provider_cascade.sandbox.client import Sandbox

BATCH = 1_000


def bodies(count: int, run: int, batch: int = BATCH) -> list[bytes]:
    return [
        json.dumps(
            [
                {
                    "id": f"r{run}-b{b}-m{m}",
                    "fromName": "Bench",
                    "toPhone": f"+38050{(b * batch + m) % 10_000_000:07d}",
                    "messageType": "transaction",
                    "text": "Your order has been confirmed and will arrive tomorrow.",
                    "ttl": 86_400,
                }
                for m in range(batch)
            ]
        ).encode()
        for b in range(count)
    ]


def rates(
    sandbox: Sandbox, requests_per_run: int, runs: int, batch: int = BATCH, clients: int = 1
) -> list[float]:
    """Messages/s raw clients get accepted (``clients`` at once, each sequential), one run
    after another (bodies made beforehand)."""
    found = []
    url = sandbox.url + Route.STANDARD.path

    def post_all(payloads: list[bytes]) -> None:
        with requests.Session() as session:
            session.headers.update(
                {"X-Authorization-Key": sandbox.api_key, "Content-Type": "application/json"}
            )
            for body in payloads:
                session.post(url, data=body, timeout=60).raise_for_status()

    with ThreadPoolExecutor(clients) as pool:
        for run in range(runs):
            payloads = bodies(requests_per_run, run, batch)
            shares = [payloads[n::clients] for n in range(clients)]
            started = time.perf_counter()
            list(pool.map(post_all, shares))
            elapsed = time.perf_counter() - started
            found.append(requests_per_run * batch / elapsed)
            sandbox.clear()
    return found


def ceiling(
    sandbox: Sandbox,
    requests_per_run: int = 100,
    runs: int = 3,
    batch: int = BATCH,
    clients: int = 1,
) -> float:
    """The median of :func:`rates`: what the sandbox takes when the client costs nothing."""
    return statistics.median(rates(sandbox, requests_per_run, runs, batch, clients))


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
