"""``CascadeDeliveryTrigger``: poll delivery statuses in the triggerer, off the worker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent  # one path on 2.x and 3.x

from airflow_provider_cascade.checkpoints import INLINE_WATCH_BYTES, DeliveryWorkspace, fits_inline
from airflow_provider_cascade.constants import DEFAULT_STATUS_REQUESTS_PER_SECOND
from airflow_provider_cascade.delivery import DeliveryTracker

#: ``kind`` of an ``error`` event whose cause was refused credentials (401).
AUTH_REFUSED = "auth_refused"


class CascadeDeliveryTrigger(BaseTrigger):
    """Poll every message's status until all are final or ``deadline`` passes.

    A thin caller of :class:`~airflow_provider_cascade.hooks.cascade.CascadeAsyncHook`
    through :class:`~airflow_provider_cascade.polling.StatusPoller`: look-ups run with
    bounded concurrency at ``max_requests_per_second``; a ``429`` pauses them all and the
    message is asked again; a look-up that fails (no answer, ``5xx``, a malformed reply) is
    logged, counted and tried again next round; only refused credentials end the polling
    early. The timeout event names the first 20 tracking ids still waiting.

    Yields one event and returns: ``{"status": "success"|"timeout"|"error", "tracker":
    ..., "message": ..., "kind": ...}``; the sensor's ``execute_complete`` turns it into its
    report (``kind`` is ``auth_refused`` for a ``401``, else ``error``).

    :param cascade_conn_id: the ``cascade`` connection.
    :param messages: ``[message_id, tracking_id]`` pairs (JSON values only), at most
        :data:`~airflow_provider_cascade.checkpoints.INLINE_WATCH_BYTES` of JSON; empty
        when they are in ``workspace``.
    :param workspace: a :class:`~airflow_provider_cascade.checkpoints.DeliveryWorkspace`
        base (an ``ObjectStoragePath`` URI): the watched messages when ``messages`` is
        empty, and each round's final statuses, read back on a restart so no final message
        is polled again. Events then carry the path, not the statuses.
    :param poll_interval: seconds between rounds over the messages not yet final.
    :param max_requests_per_second: pacing of status look-ups.
    :param deadline: a UNIX time after which the trigger reports ``timeout``.
    :param wait_for_scheduled: as the sensor's: False settles a message scheduled for later.
    """

    def __init__(
        self,
        cascade_conn_id: str,
        messages: list[list[str | None]],  # [message_id, tracking_id(, scheduled_sent)]
        poll_interval: float = 30.0,
        max_requests_per_second: float = DEFAULT_STATUS_REQUESTS_PER_SECOND,
        deadline: float | None = None,
        workspace: str | None = None,
        wait_for_scheduled: bool = True,
    ) -> None:
        super().__init__()
        if not fits_inline(messages):
            raise ValueError(
                f"{len(messages)} messages are too many for a trigger's kwargs "
                f"(at most {INLINE_WATCH_BYTES:,} bytes of JSON): put them in a workspace"
            )
        self.cascade_conn_id = cascade_conn_id
        self.messages = messages
        self.workspace = workspace
        self.wait_for_scheduled = wait_for_scheduled
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
                "workspace": self.workspace,
                "wait_for_scheduled": self.wait_for_scheduled,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_cascade.exceptions import CascadeAuthError, CascadeError
        from airflow_provider_cascade.hooks.cascade import CascadeAsyncHook
        from airflow_provider_cascade.polling import StatusPoller

        hook = CascadeAsyncHook(
            self.cascade_conn_id, max_requests_per_second=self.max_requests_per_second
        )
        poller = StatusPoller(hook, self.max_requests_per_second, self.log)
        try:
            tracker, workspace = await self._load()
            async with hook:
                while True:
                    waiting = set(tracker.pending)
                    due = tracker.due_now()
                    answers, failed = await poller.poll(due) if due else ({}, 0)
                    for message_id, payload in answers.items():
                        if payload is not None:  # unknown yet: asked again next round
                            tracker.record(message_id, payload)
                    if workspace is not None:  # checkpoint: never polled again
                        finals = tracker.finals_of(waiting - tracker.pending)
                        await asyncio.to_thread(workspace.append_final, finals)
                    if tracker.done:
                        yield TriggerEvent({"status": "success", **self._carried(tracker)})
                        return
                    if self.deadline is not None and time.time() >= self.deadline:
                        yield TriggerEvent(
                            {
                                "status": "timeout",
                                "message": f"delivery not final in time: {tracker.summary()}; "
                                f"still waiting: {tracker.waiting()}",
                                **self._carried(tracker),
                            }
                        )
                        return
                    self.log.info("Delivery: %s; %d look-up(s) failed", tracker.summary(), failed)
                    await asyncio.sleep(self._pause(tracker))
        except CascadeAuthError as error:
            yield TriggerEvent({"status": "error", "kind": AUTH_REFUSED, "message": str(error)})
        except (CascadeError, OSError) as error:  # no credential; the workspace unreadable
            yield TriggerEvent({"status": "error", "kind": "error", "message": str(error)})

    def _pause(self, tracker: DeliveryTracker) -> float:
        """Until the next round: ``poll_interval``; when nothing is due yet, until the
        earliest scheduled message is (never past the deadline)."""
        now = time.time()
        if tracker.due_now(now):
            return self.poll_interval
        wake = tracker.next_due(now) or now + self.poll_interval
        if self.deadline is not None:
            wake = min(wake, self.deadline)
        return max(self.poll_interval, wake - now)

    async def _load(self) -> tuple[DeliveryTracker, DeliveryWorkspace | None]:
        """The watched messages, and the final statuses an earlier run recorded."""
        watched: list[Any] = [[row[0] or "", *row[1:]] for row in self.messages]
        if not self.workspace:
            return self._tracker_of(watched), None
        workspace = DeliveryWorkspace(self.workspace)
        if not watched:
            watched = await asyncio.to_thread(workspace.read_watched)
        tracker = self._tracker_of(watched)
        finals = await asyncio.to_thread(lambda: list(workspace.read_finals()))
        if restored := tracker.restore(finals):
            self.log.info("Resuming: %d message(s) already final, not polled again", restored)
        return tracker, workspace

    def _tracker_of(self, watched: list[Any]) -> DeliveryTracker:
        return DeliveryTracker(watched, wait_for_scheduled=self.wait_for_scheduled)

    def _carried(self, tracker: DeliveryTracker) -> dict[str, Any]:
        """What an event carries of the statuses: the workspace's path when there is one
        (bounded, whatever the number), else the statuses themselves (few, inline)."""
        if self.workspace:
            return {"workspace": self.workspace}
        return {"tracker": tracker.to_json()}
