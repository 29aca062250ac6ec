"""Status look-ups: client CPU per look-up and the rate held, from 10/s to 1,000/s, against
a sandbox that answers each look-up after 100 ms; and no collapse at 2,000/s with 256 in
flight. The provider's own path (``delivery.rounds.polling``: the aiohttp hook, the
poller, the shared pacer) against, through the same poller and pacing:

- bare aiohttp: one session, a GET and its body, nothing else (the client's floor);
- a hand-written HTTP/1.1 client on asyncio streams (keep-alive, Content-Length only, no
  TLS, proxy or chunked bodies): what owning an HTTP client would save, the event loop's
  own floor. It is a reference here, not a candidate;
- httpx's async client, what the hook used before 0.3.

    python benchmarks/status_lookups.py [--rates 10,50,150,300,1000,2000] [--runs 3]

Each rate polls ``min(3,000, 10 s of look-ups)`` messages in a fresh child process whose own
CPU time (the client's) is read; the sandbox's CPU share is printed beside it (near 100%
would mean the figure is the server's). The provider and bare aiohttp run ``--runs`` times,
interleaved, and their medians are printed; the two references run once. Goals: <= 0.3 ms
of client CPU a look-up, or within 1.15x bare aiohttp's where that costs more (at low
rates every look-up wakes the event loop from idle, with cold caches, whatever the
client), >= 90% of the set rate up to 1,000/s, no collapse at 2,000/s.
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
    "raw": "hand-written (ref.)",
    "httpx": "httpx (before 0.3)",
}
#: Run once: what they show does not turn on a few percent.
REFERENCES = {"raw", "httpx"}
SECONDS_A_RATE = 10


def messages_for(rate: float) -> int:
    return int(min(MAX_MESSAGES, rate * SECONDS_A_RATE))


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


class HandWrittenSource:
    """HTTP/1.1 GETs written by hand on asyncio streams, keep-alive connections reused;
    Content-Length bodies only. A measure of the event loop's floor, not a client to ship."""

    def __init__(self, url: str, key: str, rate: float) -> None:
        from urllib.parse import urlsplit

        from airflow_provider_cascade.hooks.pacing import Pacer

        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.head = f"Host: {self.host}\r\nX-Authorization-Key: {key}\r\n\r\n"
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.pacer = Pacer(rate)

    async def get_message_status(self, message_id: str) -> dict[str, Any] | None:
        delay = self.pacer.reserve()
        if delay > 0:
            await asyncio.sleep(delay)
        if self.idle:
            reader, writer = self.idle.pop()
        else:
            reader, writer = await asyncio.open_connection(self.host, self.port)
        writer.write(f"GET /bat/message/{message_id} HTTP/1.1\r\n{self.head}".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        body = await reader.readexactly(length)
        self.idle.append((reader, writer))
        return dict(json.loads(body))

    async def aclose(self) -> None:
        for _, writer in self.idle:
            writer.close()


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
    kind = {"bare": BareAiohttpSource, "raw": HandWrittenSource, "httpx": HttpxSource}[client]
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
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--clients", default="aiohttp,bare,raw,httpx")
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
        f"messages a rate ({SECONDS_A_RATE} s of look-ups at most), the provider and bare "
        f"aiohttp {args.runs} run(s) interleaved (medians), the references once; {machine()}"
    )
    missed: list[str] = []
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
            runs: dict[str, list[dict[str, float]]] = {client: [] for client in clients}
            for turn in range(args.runs):
                for client in clients:
                    if turn == 0 or client not in REFERENCES:
                        runs[client].append(measure(client, rate, ids_file, sandbox))
            figures: dict[str, dict[str, float]] = {}
            for client in clients:
                got = figures[client] = {
                    name: median(run[name] for run in runs[client]) for name in runs[client][0]
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
                if not (held and cpu <= bound):
                    missed.append(f"{rate:.0f}/s")
    print(
        f"  targets (the provider): <= {TARGET_CPU_MS} ms a look-up, or within "
        f"{FLOOR_FACTOR}x the bare client's where that costs more; >= {TARGET_SHARE:.0%} of "
        "the set rate up to 1,000/s; at least half of it at 2,000/s (no collapse): "
        + (f"NOT met at {', '.join(missed)}" if missed else "met")
    )


if __name__ == "__main__":
    main()
