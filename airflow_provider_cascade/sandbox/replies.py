"""The sandbox's recipients answering: ``POST /sandbox/replies`` makes one write back, and
the sandbox then POSTs SMSBAT's documented callback to the replies URL (``--replies-url``
or ``PUT /sandbox/replies-url``), retrying on anything but ``200`` after 1, 2 and 4 s.
``GET /sandbox/replies`` shows every callback and each attempt's answer."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

#: Seconds before each retry of a callback not answered ``200``.
RETRY_DELAYS = (1.0, 2.0, 4.0)


@dataclass
class Callback:
    """One incoming message as SMSBAT would forward it, and what became of it."""

    body: dict[str, Any]
    attempts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def delivered(self) -> bool:
        return any(attempt.get("status") == 200 for attempt in self.attempts)

    def to_json(self) -> dict[str, Any]:
        return {**self.body, "attempts": self.attempts, "delivered": self.delivered}


class Recipients:
    """The callbacks the sandbox sends, in order made."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url
        self.callbacks: list[Callback] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def answer(self, request: dict[str, Any]) -> Callback:
        """A recipient's reply: ``phone`` (E.164 or digits), ``text``, optionally
        ``alpha_name``, ``id_uuid`` (to repeat one) and ``dt``; its callback is sent now.

        :raises ValueError: no replies URL, or a field missing.
        """
        if not self.url:
            raise ValueError("no replies URL: start with --replies-url or PUT /sandbox/replies-url")
        phone, text = request.get("phone"), request.get("text")
        if not isinstance(phone, str) or not isinstance(text, str):
            raise ValueError("phone and text are required (text)")
        now = datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        body = {
            "idUuid": str(request.get("id_uuid") or uuid.uuid4()),
            "alphaName": str(request.get("alpha_name") or "SandboxBot"),
            "phoneNumber": phone.lstrip("+"),
            "text": text,
            "dt": str(request.get("dt") or now),
        }
        callback = Callback(body)
        self.callbacks.append(callback)
        task = asyncio.get_running_loop().create_task(self._deliver(callback, self.url))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return callback

    async def _deliver(self, callback: Callback, url: str) -> None:
        import httpx

        async with httpx.AsyncClient(timeout=10) as client:
            for delay in (0.0, *RETRY_DELAYS):
                if delay:
                    await asyncio.sleep(delay)
                attempt: dict[str, Any] = {"at": time.time()}
                try:
                    response = await client.post(url, json=callback.body)
                    attempt["status"] = response.status_code
                except httpx.HTTPError as error:
                    attempt["error"] = type(error).__name__
                callback.attempts.append(attempt)
                if attempt.get("status") == 200:
                    return

    def pending(self) -> int:
        """Callbacks still being sent (or waiting to retry)."""
        return len(self._tasks)
