"""``CascadeDeliveryTrigger``: poll delivery statuses in the triggerer, off the worker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
from airflow.triggers.base import BaseTrigger, TriggerEvent  # one path on 2.x and 3.x

from airflow_provider_cascade.delivery import DEFAULT_STATUS_REQUESTS_PER_SECOND, DeliveryTracker


class CascadeDeliveryTrigger(BaseTrigger):
    """Poll every message's status until all are final or ``deadline`` passes.

    Yields one event and returns: ``{"status": "success"|"timeout"|"error", "tracker":
    ..., "message": ...}``; the sensor's ``execute_complete`` turns it into its report.

    :param cascade_conn_id: the ``cascade`` connection.
    :param messages: ``[message_id, tracking_id]`` pairs (JSON values only).
    :param poll_interval: seconds between rounds over the messages not yet final.
    :param max_requests_per_second: pacing of status look-ups.
    :param deadline: a UNIX time after which the trigger reports ``timeout``.
    """

    def __init__(
        self,
        cascade_conn_id: str,
        messages: list[list[str | None]],
        poll_interval: float = 30.0,
        max_requests_per_second: float = DEFAULT_STATUS_REQUESTS_PER_SECOND,
        deadline: float | None = None,
    ) -> None:
        super().__init__()
        self.cascade_conn_id = cascade_conn_id
        self.messages = messages
        self.poll_interval = poll_interval
        self.max_requests_per_second = max_requests_per_second
        self.deadline = deadline

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "cascade_conn_id": self.cascade_conn_id,
                "messages": self.messages,
                "poll_interval": self.poll_interval,
                "max_requests_per_second": self.max_requests_per_second,
                "deadline": self.deadline,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        tracker = DeliveryTracker((pair[0] or "", pair[1]) for pair in self.messages)
        try:
            async with await self._client() as client:
                while True:
                    await self._poll_round(client, tracker)
                    if tracker.done:
                        yield TriggerEvent({"status": "success", "tracker": tracker.to_json()})
                        return
                    if self.deadline is not None and time.time() >= self.deadline:
                        yield TriggerEvent(
                            {
                                "status": "timeout",
                                "message": f"delivery not final in time: {tracker.summary()}",
                                "tracker": tracker.to_json(),
                            }
                        )
                        return
                    self.log.info("Delivery: %s", tracker.summary())
                    await asyncio.sleep(self.poll_interval)
        except _Refused as error:
            yield TriggerEvent({"status": "error", "message": str(error)})

    async def _client(self) -> httpx.AsyncClient:
        from airflow.providers.common.compat.connection import get_async_connection

        from airflow_provider_cascade.hooks.cascade import CascadeHook, connection_config

        conn = await get_async_connection(self.cascade_conn_id, CascadeHook)
        config = connection_config(
            conn, max_requests_per_second=self.max_requests_per_second, mask=False
        )
        self._status_url = config.base_url + config.status_path
        self._interval = 1.0 / config.max_requests_per_second
        return httpx.AsyncClient(
            headers=dict(config.headers),
            timeout=httpx.Timeout(config.timeout, connect=config.connect_timeout),
        )

    async def _poll_round(self, client: httpx.AsyncClient, tracker: DeliveryTracker) -> None:
        for message_id in sorted(tracker.pending):
            started = time.monotonic()
            try:
                response = await client.get(self._status_url.format(message_id=message_id))
            except httpx.HTTPError as error:
                self.log.warning(
                    "Status look-up failed (%s); retried next round", type(error).__name__
                )
            else:
                if response.status_code == 401:
                    raise _Refused(
                        f"the Cascade service refused the credentials of connection "
                        f"{self.cascade_conn_id!r} (401)"
                    )
                if response.status_code == 200:
                    tracker.record(message_id, response.json())
            await asyncio.sleep(max(0.0, self._interval - (time.monotonic() - started)))


class _Refused(Exception):
    pass
