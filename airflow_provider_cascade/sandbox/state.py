"""What the sandbox remembers: accepted messages, counters, faults to inject, rate limit.

Plain Python, no HTTP: the FastAPI app in :mod:`.app` is a thin layer over this.

Longer than 300 lines: the sandbox's whole state machine (accepts, faults, statuses,
replies): test infrastructure kept in one place so a fault script reads top to bottom.
"""

from __future__ import annotations

import gc
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from airflow_provider_cascade.sandbox.contract import (
    API_KEY_HEADER,
    CREDENTIAL_HEADERS,
    scheduled_timestamp,
    status_reply,
)

#: What the sandbox can do to a send request instead of answering it normally, and what
#: each does (the docs' table, docs/sandbox.md, and ``--help`` are made from this).
FAULT_DESCRIPTIONS = {
    "500": "server error, nothing accepted",
    "429": "rate limited, no Retry-After",
    "429_retry_after": "rate limited, Retry-After: 1",
    "reset": "connection reset before the request is read: nothing accepted",
    "html_502": "a proxy's HTML 502: nothing accepted",
    "401": "credentials refused (as if revoked mid-campaign)",
    "response_lost": "accepted, then the connection is reset: the client cannot know",
    "slow": "accepted; the answer comes after slow_seconds (past a read timeout)",
    "bad_json": "accepted; 200 with a body that is not JSON",
    "json_object": "accepted; 200 with a JSON object instead of the array",
    "short_reply": "accepted; 200 with one entry fewer than messages",
    "no_message_id": "accepted; 200 with an entry lacking its messageId",
}
FAULT_KINDS = tuple(FAULT_DESCRIPTIONS)
#: The faults after which the sandbox holds the messages though the client got no answer.
REPLY_LOST_KINDS = frozenset(
    {"response_lost", "slow", "bad_json", "json_object", "short_reply", "no_message_id"}
)
#: The channels in the order the cascade tries them.
CHANNELS = ("telegram", "viber", "viber_business", "rcs", "sms")
FINAL_STATUSES = ("delivered", "undeliverable", "permanenterror")
#: What a delivered message costs, by the channel that delivered it (undelivered: nothing);
#: billed as the same amount in BILL_CURRENCY. Made up, deterministic: for tests.
CHANNEL_COSTS = {"telegram": 0.1, "viber": 0.2, "viber_business": 0.35, "rcs": 0.5, "sms": 0.8}
BILL_CURRENCY = "UAH"


@dataclass
class Faults:
    """What goes wrong, and how often. Changed at start (flags) or by ``PUT /sandbox/faults``.

    ``script`` is consumed first, one entry per send request (``None`` answers normally),
    so a test can fail exactly the third request; then ``error_rate`` of the requests get
    a fault drawn from ``kinds``.
    """

    error_rate: float = 0.0
    kinds: list[str] = field(default_factory=lambda: ["500"])
    latency_ms: float = 0.0
    rate_limit: float | None = None
    burst: float | None = None
    status_latency_ms: float = 0.0
    status_rate_limit: float | None = None
    slow_seconds: float = 5.0
    script: list[str | None] = field(default_factory=list)
    seed: int | None = None

    def validate(self) -> None:
        if not 0.0 <= self.error_rate <= 1.0:
            raise ValueError("error_rate must be between 0 and 1")
        for kind in [*self.kinds, *(k for k in self.script if k is not None)]:
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
        if self.latency_ms < 0:
            raise ValueError("latency_ms must not be negative")
        if self.rate_limit is not None and self.rate_limit <= 0:
            raise ValueError("rate_limit must be positive")
        if self.burst is not None and self.burst < 1:
            raise ValueError("burst must be at least 1")
        if self.status_latency_ms < 0:
            raise ValueError("status_latency_ms must not be negative")
        if self.status_rate_limit is not None and self.status_rate_limit <= 0:
            raise ValueError("status_rate_limit must be positive")

    def to_json(self) -> dict[str, Any]:
        return {
            "error_rate": self.error_rate,
            "kinds": list(self.kinds),
            "latency_ms": self.latency_ms,
            "rate_limit": self.rate_limit,
            "burst": self.burst,
            "status_latency_ms": self.status_latency_ms,
            "status_rate_limit": self.status_rate_limit,
            "slow_seconds": self.slow_seconds,
            "script": list(self.script),
            "seed": self.seed,
        }


@dataclass(slots=True)
class Record:
    """One accepted message, as the sandbox keeps it: the whole wire object it received."""

    message_id: str
    wire: dict[str, Any]
    route: str
    list_id: int
    accepted_at: float
    scheduled_for: float | None
    reply_lost: bool = False
    status_requests: int = 0  # look-ups of this message's status

    @property
    def tracking_id(self) -> str:
        return str(self.wire["id"])

    @property
    def to_phone(self) -> str:
        return str(self.wire["toPhone"])

    def to_json(self) -> dict[str, Any]:
        """What ``GET /sandbox/messages`` lists: the message as sent (every field, the
        wire names), and what the sandbox did with it. A local test server: it shows the
        full phone number and text on purpose."""
        wire = self.wire
        return {
            "message_id": self.message_id,
            "tracking_id": self.tracking_id,
            "to_phone": self.to_phone,
            "message_type": wire["messageType"],
            "from_name": wire["fromName"],
            "text": wire.get("text"),
            "ttl": wire.get("ttl"),
            "survey_options": wire.get("surveyOptions"),
            "route": self.route,
            "accepted_at": _iso(self.accepted_at),
            "scheduled_sent": _iso(self.scheduled_for) if self.scheduled_for else None,
            "reply_lost": self.reply_lost,
            "status_requests": self.status_requests,
            "wire": wire,
        }


class SandboxState:
    """The sandbox's memory. One per server; not thread-safe (one event loop uses it).

    :param api_key: when set, only this ``X-Authorization-Key`` is accepted; otherwise any
        non-empty credential header is.
    :param delivery_seconds: how long a message stays ``processing`` before its final status.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        delivery_seconds: float = 2.0,
        faults: Faults | None = None,
    ) -> None:
        self.api_key = api_key
        self.delivery_seconds = delivery_seconds
        self.records: dict[str, Record] = {}
        self.stats: Counter[str] = Counter()
        self.fault_counts: Counter[str] = Counter()
        self._seen_tracking_ids: set[str] = set()
        self._bucket = _TokenBucket()
        self._status_bucket = _TokenBucket()
        self._status_times: tuple[float | None, float | None] = (None, None)
        self._random_ids = random.Random()  # message ids; not the fault draws' generator
        self.faults = Faults()
        self._random = random.Random()
        self.set_faults(faults or Faults())

    # --- configuration ------------------------------------------------------------------

    def set_faults(self, faults: Faults) -> None:
        faults.validate()
        self.faults = faults
        self._random = random.Random(faults.seed)

    def update_faults(self, changes: dict[str, Any]) -> Faults:
        known = set(Faults.__dataclass_fields__)
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}")
        merged = Faults(**{**self.faults.to_json(), **changes})
        self.set_faults(merged)
        return merged

    def clear(self) -> None:
        """Forget every message and counter (faults stay as they are)."""
        self.records.clear()
        self.stats.clear()
        self.fault_counts.clear()
        self._seen_tracking_ids.clear()
        self._bucket = _TokenBucket()
        self._status_bucket = _TokenBucket()
        self._status_times = (None, None)

    # --- decisions for one request ------------------------------------------------------

    def authorized(self, headers: dict[str, str]) -> bool:
        if self.api_key is not None:
            return headers.get(API_KEY_HEADER) == self.api_key
        return any(headers.get(name) for name in CREDENTIAL_HEADERS)

    def rate_limited(self, now: float) -> bool:
        """Count this send request against the limit; True if it must get a 429.

        A token bucket, as the published limits read: ``rate_limit`` requests/s sustained,
        bursts up to ``burst`` (default 1.5 x the rate, like 100/s with bursts of 150).
        """
        rate = self.faults.rate_limit
        if rate is None:
            return False
        return not self._bucket.take(now, rate, self.faults.burst or 1.5 * rate)

    def count_status_request(self, now: float) -> None:
        """One more status look-up, at ``now`` (UNIX time): counted, and the first and last
        kept, so a client's pace over a wait can be read back."""
        self.stats["status_requests"] += 1
        self._status_times = (self._status_times[0] or now, now)

    def status_rate_limited(self, now: float) -> bool:
        """The data group's limit on status look-ups (published: 50/s, bursts of 75)."""
        rate = self.faults.status_rate_limit
        if rate is None:
            return False
        return not self._status_bucket.take(now, rate, 1.5 * rate)

    def draw_fault(self) -> str | None:
        """The fault for the next send request, if any (the script first, then chance)."""
        faults = self.faults
        if faults.script:
            return faults.script.pop(0)
        if faults.error_rate and self._random.random() < faults.error_rate:
            return self._random.choice(faults.kinds)
        return None

    def count_fault(self, kind: str) -> None:
        self.fault_counts[kind] += 1
        self.stats["faults"] += 1

    # --- accepting and reporting --------------------------------------------------------

    def accept(
        self, messages: Sequence[dict[str, Any]], route: str, *, reply_lost: bool = False
    ) -> list[str]:
        """Record checked wire messages (see :mod:`.contract`); return their message ids.
        ``reply_lost`` marks those whose answer a fault will spoil."""
        now = time.time()
        ids = _random_uuids(len(messages), self._random_ids)
        self.stats["accepted_requests"] += 1
        list_id = self.stats["accepted_requests"]
        for message, message_id in zip(messages, ids, strict=True):
            tracking_id = message["id"]
            if tracking_id in self._seen_tracking_ids:
                self.stats["duplicate_tracking_ids"] += 1
            self._seen_tracking_ids.add(tracking_id)
            self.records[message_id] = Record(
                message_id=message_id,
                wire=message,
                route=route,
                list_id=list_id,
                accepted_at=now,
                scheduled_for=scheduled_timestamp(message),
                reply_lost=reply_lost,
            )
        self.stats["accepted"] += len(ids)
        # The record only grows; keeping it out of the collector's passes keeps every
        # request as fast as the first, however many messages were accepted before.
        gc.freeze()
        return ids

    def status(self, message_id: str, now: float | None = None) -> dict[str, Any] | None:
        """The core API's status answer for one message, or None if unknown."""
        record = self.records.get(message_id)
        if record is None:
            return None
        record.status_requests += 1
        now = time.time() if now is None else now
        start = max(record.accepted_at, record.scheduled_for or 0.0)
        channel, final = outcome_for(record.to_phone)
        if now < start:
            status, extended = "scheduled", {}
        elif now < start + self.delivery_seconds:
            status, extended = "processing", {CHANNELS[0]: "processing"}
        else:
            status, extended = final, _extended_statuses(channel, final)
        final_now = status in FINAL_STATUSES
        cost = CHANNEL_COSTS.get(channel or "", 0.0) if final_now else 0.0
        bill = (cost, BILL_CURRENCY) if final_now else None
        return status_reply(record.list_id, message_id, status, extended, cost=cost, bill=bill)

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests": self.stats["requests"],
            "accepted": self.stats["accepted"],
            "rejected": self.stats["rejected"],
            "unauthorized": self.stats["unauthorized"],
            "rate_limited": self.stats["rate_limited"],
            "status_rate_limited": self.stats["status_rate_limited"],
            "faults": self.stats["faults"],
            "faults_by_kind": dict(self.fault_counts),
            "duplicate_tracking_ids": self.stats["duplicate_tracking_ids"],
            "status_requests": self.stats["status_requests"],
            "first_status_request_at": self._status_times[0],
            "last_status_request_at": self._status_times[1],
            "stored_messages": len(self.records),
        }


class _TokenBucket:
    def __init__(self) -> None:
        self.tokens: float | None = None  # full on first use
        self.last = 0.0

    def take(self, now: float, rate: float, capacity: float) -> bool:
        if self.tokens is None:
            self.tokens = capacity
        else:
            self.tokens = min(capacity, self.tokens + (now - self.last) * rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


def _random_uuids(count: int, source: random.Random) -> list[str]:
    """``count`` random version-4 UUIDs as text (twice as fast as ``uuid.uuid4()``)."""
    ids = []
    for _ in range(count):
        value = source.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET
        text = f"{value:032x}"
        ids.append(f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}")
    return ids


# Version 4 and the RFC 4122 variant, as uuid.UUID(version=4) sets them.
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID4_SET = (4 << 76) | (0x8000 << 48)


def outcome_for(phone: str) -> tuple[str | None, str]:
    """The deterministic fate of a message to ``phone``: (delivering channel, final status).

    The last digit decides: ``0`` is undeliverable; 1-9 are delivered by telegram,
    viber, viber_business, rcs, sms, then around again (1 and 6 telegram, 5 sms...).
    """
    digit = int(phone[-1])
    if digit == 0:
        return None, "undeliverable"
    return CHANNELS[(digit - 1) % len(CHANNELS)], "delivered"


def _extended_statuses(channel: str | None, final: str) -> dict[str, str]:
    if channel is None:
        return dict.fromkeys(CHANNELS, "undeliverable")
    position = CHANNELS.index(channel)
    return {
        name: "undeliverable" if index < position else final if index == position else "not_used"
        for index, name in enumerate(CHANNELS)
    }


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).isoformat().replace("+00:00", "Z")
