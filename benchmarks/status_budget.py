"""One status budget per connection: four deferred waits at once, as one triggerer runs them
(four ``CascadeDeliveryTrigger`` s on one event loop), none with a rate of its own, against
a sandbox that refuses status look-ups past 50/s (the published data limit). Together they
must hold the connection's 40/s with no 429; then the same four waits each with an
explicit 40/s, which is what a shared budget prevents.

    python benchmarks/status_budget.py [--messages 250]

The cluster test ``test_four_waits_on_one_connection_share_its_status_budget`` proves the
same in the real triggerer of ``scripts/cluster.sh``.
"""

from __future__ import annotations

import argparse
import asyncio
import time

import _common  # noqa: F401  (sets up the Airflow home before Airflow is imported)
from _common import machine

from airflow_provider_cascade.sandbox.client import Sandbox

WAITS, LIMIT, BUDGET = 4, 50, 40.0


async def four_waits(ids: list[list[str]], rate: float | None) -> list[str]:
    from airflow_provider_cascade.triggers.cascade import CascadeDeliveryTrigger

    async def one(messages: list[str]) -> str:
        trigger = CascadeDeliveryTrigger(
            "cascade_default",
            messages=[[message_id, None] for message_id in messages],
            max_requests_per_second=rate,
            poll_interval=0.5,
            deadline=time.time() + 300,
        )
        async for event in trigger.run():
            return str(event.payload["status"])
        return "none"

    return list(await asyncio.gather(*(one(part) for part in ids)))


def send_all(total: int) -> list:
    from airflow_provider_cascade.send.campaign import send_messages

    return send_messages(
        [
            {
                "tracking_id": f"b-{n}",
                "from_name": "Bench",
                "to_phone": f"+38050{n:07d}",
                "message_type": "transaction",
                "text": "Hi",
            }
            for n in range(total)
        ],
        max_requests_per_second=1_000,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=250, help="per wait")
    args = parser.parse_args()

    print(
        f"{WAITS} deferred waits at once on one connection (budget {BUDGET:.0f}/s), "
        f"{args.messages} messages each, sandbox --status-rate-limit {LIMIT}; {machine()}"
    )
    verdicts = []
    with Sandbox.start(status_rate_limit=LIMIT, delivery_seconds=0.0) as sandbox:
        sandbox.set_env(status_requests_per_second=BUDGET)
        total = WAITS * args.messages
        for label, rate in (("shared budget (default)", None), ("each its own 40/s", BUDGET)):
            time.sleep(2)  # the sandbox's token bucket refills
            sandbox.clear()  # forgets the messages too: they are sent again
            ids = [message.message_id for message in send_all(total)]
            parts = [ids[n::WAITS] for n in range(WAITS)]
            statuses = asyncio.run(four_waits(parts, rate))
            stats = sandbox.stats()
            span = stats["last_status_request_at"] - stats["first_status_request_at"]
            pace = (stats["status_requests"] - 1) / span
            print(
                f"  {label:<24} {stats['status_requests']:5,} look-ups at {pace:5.1f}/s together"
                f" ({pace / BUDGET:4.0%} of {BUDGET:.0f}/s), 429s: "
                f"{stats['status_rate_limited']:,}; waits: {', '.join(statuses)}"
            )
            if rate is None:
                verdicts.append(
                    stats["status_rate_limited"] == 0
                    and pace >= 0.9 * BUDGET
                    and statuses == ["success"] * WAITS
                )
    print(
        f"  target: 0 429s and >= 90% of {BUDGET:.0f}/s together: "
        + ("met" if all(verdicts) else "NOT met")
    )


if __name__ == "__main__":
    main()
