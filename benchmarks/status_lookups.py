"""Status look-ups: client CPU per look-up and the rate held, from 10/s to 1,000/s, against
a sandbox that answers each look-up after 100 ms; and no collapse at 2,000/s with 256 in
flight. The provider's own path (``delivery.rounds.polling``: the aiohttp hook, the
poller, the shared pacer) against httpx's async client doing the same look-ups through the
same poller (what the hook used before 0.3).

    python benchmarks/status_lookups.py [--rates 10,50,150,300,1000,2000] [--runs 1]

Each rate polls ``min(3,000, 20 s of look-ups)`` messages (3,000 from 150/s up: a round at
10/s over 3,000 would take five minutes and say nothing more), in a fresh child process
whose own CPU time (the client's) is read; the sandbox's CPU share is printed beside it
(near 100% would mean the figure is the server's). Goals: <= 0.3 ms of client CPU a
look-up, or within 1.15x the floor where the floor itself costs more (at low rates each
look-up's wake-ups cost more with any client), >= 90% of the set rate up to 1,000/s, no
collapse at 2,000/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from typing import Any

import _common
from _common import machine, median

from airflow_provider_cascade.sandbox.client import Sandbox

LATENCY_MS = 100
MAX_MESSAGES = 3_000
TARGET_CPU_MS, TARGET_SHARE = 0.3, 0.9
#: Where the bare client (the floor) itself costs more than the target, the provider is
#: judged against the floor: within this factor of it (at 10/s an event loop's wake-ups
#: cost ~0.7 ms a look-up with any client).
FLOOR_FACTOR = 1.15
LABELS = {
    "aiohttp": "the provider (aiohttp)",
    "bare": "bare aiohttp (floor)",
    "httpx": "httpx (before 0.3)",
}


def messages_for(rate: float) -> int:
    return int(min(MAX_MESSAGES, rate * 20))


def server_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class BareAiohttpSource:
    """The floor: one aiohttp session, a GET and its body, nothing else (same pacing)."""

    def __init__(self, url: str, key: str, rate: float) -> None:
        import aiohttp

        from airflow_provider_cascade.hooks.pacing import Pacer

        self.client = aiohttp.ClientSession(
            headers={"X-Authorization-Key": key}, connector=aiohttp.TCPConnector(limit=256)
        )
        self.url = url
        self.pacer = Pacer(rate)

    async def get_message_status(self, message_id: str) -> dict[str, Any] | None:
        delay = self.pacer.reserve()
        if delay > 0:
            await asyncio.sleep(delay)
        async with self.client.get(f"{self.url}/bat/message/{message_id}") as response:
            return dict(await response.json())

    async def aclose(self) -> None:
        await self.client.close()


class HttpxSource:
    """The status look-up as the hook made it with httpx (before 0.3), same pacing."""

    def __init__(self, url: str, key: str, rate: float) -> None:
        import httpx

        from airflow_provider_cascade.hooks.pacing import Pacer

        self.client = httpx.AsyncClient(headers={"X-Authorization-Key": key}, timeout=30)
        self.url = url
        self.pacer = Pacer(rate)

    async def get_message_status(self, message_id: str) -> dict[str, Any] | None:
        from airflow_provider_cascade.hooks.replies import classify, status_payload

        delay = self.pacer.reserve()
        if delay > 0:
            await asyncio.sleep(delay)
        response = await self.client.get(f"{self.url}/bat/message/{message_id}")
        reply = classify(response.status_code, response.content, None)
        return status_payload(reply, "cascade_default")

    async def aclose(self) -> None:
        await self.client.aclose()


async def poll(client: str, rate: float, ids: list[str]) -> int:
    """One round over ``ids``; returns how many were answered."""
    log = logging.getLogger("bench")
    if client == "aiohttp":
        from airflow_provider_cascade.delivery.rounds import polling

        async with polling("cascade_default", rate, 1, log) as poller:
            answers, _ = await poller.poll(ids)
        return len(answers)
    from airflow_provider_cascade.delivery.rounds import StatusPoller

    connection = json.loads(os.environ["AIRFLOW_CONN_CASCADE_DEFAULT"])
    kind = BareAiohttpSource if client == "bare" else HttpxSource
    source = kind(connection["host"], connection["password"], rate)
    try:
        answers, _ = await StatusPoller(source, rate, log).poll(ids)
    finally:
        await source.aclose()
    return len(answers)


def child(client: str, rate: float, ids_file: str, pid: int) -> None:
    with open(ids_file) as lines:
        ids = json.load(lines)[: messages_for(rate)]
    asyncio.run(poll(client, rate, ids[:1]))  # warm-up, not counted: imports, the connection
    server, wall, cpu = server_cpu(pid), time.perf_counter(), time.process_time()
    answered = asyncio.run(poll(client, rate, ids))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    busy = (server_cpu(pid) - server) / wall
    print(json.dumps({"rate": answered / wall, "cpu_ms": cpu / len(ids) * 1e3, "busy": busy}))


def measure(client: str, rate: float, ids_file: str, sandbox: Sandbox) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", client, str(rate), ids_file]
    command.append(str(sandbox.process.pid))
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rates", default="10,50,150,300,1000,2000")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--clients", default="aiohttp,bare,httpx")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        client, rate, ids_file, pid = args.child
        child(client, float(rate), ids_file, int(pid))
        return
    from airflow_provider_cascade.send.campaign import send_messages

    clients = args.clients.split(",")
    print(
        f"Status look-ups, sandbox --status-latency-ms {LATENCY_MS}, up to {MAX_MESSAGES:,} "
        f"messages a rate, {args.runs} run(s) (medians); {machine()}"
    )
    verdicts = []
    with Sandbox.start(status_latency_ms=LATENCY_MS, delivery_seconds=3600) as sandbox:
        sandbox.set_env()
        sent = send_messages(
            [
                {
                    "tracking_id": f"s-{n}",
                    "from_name": "Bench",
                    "to_phone": f"+38050{n:07d}",
                    "message_type": "promo",
                    "text": "Hi",
                }
                for n in range(MAX_MESSAGES)
            ],
            max_requests_per_second=1_000,
        )
        ids_file = str(_common.BENCH_DIR / "status-ids.json")
        _common.BENCH_DIR.mkdir(exist_ok=True)
        with open(ids_file, "w") as out:
            json.dump([message.message_id for message in sent], out)
        for rate in (float(r) for r in args.rates.split(",")):
            figures: dict[str, dict[str, float]] = {}
            for client in clients:
                runs = [measure(client, rate, ids_file, sandbox) for _ in range(args.runs)]
                got = figures[client] = {
                    name: median(run[name] for run in runs) for name in runs[0]
                }
                core = got["cpu_ms"] * got["rate"] / 1e3
                print(
                    f"  {LABELS[client]:<22} set {rate:5.0f}/s over {messages_for(rate):5,}: "
                    f"{got['rate']:6.0f}/s ({got['rate'] / rate:4.0%})  client CPU "
                    f"{got['cpu_ms']:.3f} ms a look-up ({core:4.1%} of a core)  server busy "
                    f"{got['busy']:4.0%}"
                )
            if "aiohttp" in figures:
                share, cpu = figures["aiohttp"]["rate"] / rate, figures["aiohttp"]["cpu_ms"]
                held = share >= TARGET_SHARE if rate <= 1_000 else share >= 0.5
                bound = TARGET_CPU_MS
                if "bare" in figures:
                    bound = max(bound, FLOOR_FACTOR * figures["bare"]["cpu_ms"])
                verdicts.append(held and cpu <= bound)
    print(
        f"  targets (the provider): <= {TARGET_CPU_MS} ms a look-up, or within "
        f"{FLOOR_FACTOR}x the bare client's where that costs more; >= {TARGET_SHARE:.0%} of "
        "the set rate up to 1,000/s; at least half of it at 2,000/s (no collapse): "
        + ("met" if all(verdicts) else "NOT met")
    )


if __name__ == "__main__":
    main()
