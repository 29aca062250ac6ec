"""``CascadeDeliveryTrigger``: poll delivery statuses in the triggerer, off the worker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent  # one path on 2.x and 3.x

from airflow_provider_cascade.delivery.checkpoints import (
    INLINE_WATCH_BYTES,
    DeliveryWorkspace,
    fits_inline,
)
from airflow_provider_cascade.delivery.tracker import DeliveryTracker

#: ``kind`` of an ``error`` event whose cause was refused credentials (401).
AUTH_REFUSED = "auth_refused"


class CascadeDeliveryTrigger(BaseTrigger):
    """Poll every message's status until all are final or ``deadline`` passes.

    A thin face over :mod:`~airflow_provider_cascade.delivery`: each round is
    :func:`~airflow_provider_cascade.delivery.rounds.poll_round` (bounded concurrency, a
    ``429`` pauses every look-up and the message is asked again; a failed look-up is logged,
    counted and tried again next round; only refused credentials end the polling early),
    paced by the connection's shared status budget unless ``max_requests_per_second`` is
    given. The trigger ends on ``deadline`` itself (a round, or a ``429`` pause, never runs
    past it), so its timeout event, with every status found, reaches the sensor before
    Airflow's deferral timeout could. The timeout event names the first 20 tracking ids
    still waiting.

    Yields one event and returns: ``{"status": "success"|"timeout"|"error", "tracker":
    ..., "message": ..., "kind": ...}``; the sensor's ``execute_complete`` turns it into its
    report (``kind`` is ``auth_refused`` for a ``401``, else ``error``).

    :param cascade_conn_id: the ``cascade`` connection.
    :param messages: ``[message_id, tracking_id]`` pairs (JSON values only), at most
        :data:`~airflow_provider_cascade.delivery.checkpoints.INLINE_WATCH_BYTES` of JSON;
        empty when they are in ``workspace``.
    :param workspace: a :class:`~airflow_provider_cascade.delivery.checkpoints.DeliveryWorkspace`
        base (an ``ObjectStoragePath`` URI): the watched messages when ``messages`` is
        empty, and the final statuses, checkpointed as they arrive and read back on a
        restart so no final message is polled again. Events then carry the path.
    :param poll_interval: seconds between rounds over the messages not yet final.
    :param max_requests_per_second: this wait's own pace; None: its share of the
        connection's status budget (``status_requests_per_second``, shared by the waits
        of this triggerer).
    :param budget_sharing: with no rate of its own, how many instances of the wait's
        mapped task share the budget (1: not mapped).
    :param deadline: a UNIX time after which the trigger reports ``timeout``.
    :param wait_for_scheduled: as the sensor's: False settles a message scheduled for later.
    """

    def __init__(
        self,
        cascade_conn_id: str,
        messages: list[list[str | None]],  # [message_id, tracking_id(, scheduled_sent)]
        poll_interval: float = 30.0,
        max_requests_per_second: float | None = None,
        deadline: float | None = None,
        workspace: str | None = None,
        wait_for_scheduled: bool = True,
        budget_sharing: int = 1,
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
        self.budget_sharing = budget_sharing
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
                "budget_sharing": self.budget_sharing,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from airflow_provider_cascade.delivery.rounds import (
            pause_before_next_round,
            poll_round,
            polling,
        )
        from airflow_provider_cascade.exceptions import CascadeAuthError, CascadeError

        try:
            tracker, workspace = await self._load()
            write_part = workspace.append_final if workspace is not None else None
            async with polling(
                self.cascade_conn_id, self.max_requests_per_second, self.budget_sharing, self.log
            ) as poller:
                while True:
                    done = await poll_round(
                        tracker, poller, write_part=write_part, deadline=self.deadline
                    )
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
                    self.log.info(
                        "Delivery: %s; %d look-up(s) failed", tracker.summary(), done.failed
                    )
                    await asyncio.sleep(
                        pause_before_next_round(tracker, self.poll_interval, self.deadline)
                    )
        except CascadeAuthError as error:
            yield TriggerEvent({"status": "error", "kind": AUTH_REFUSED, "message": str(error)})
        except (CascadeError, OSError) as error:  # no credential; the workspace unreadable
            yield TriggerEvent({"status": "error", "kind": "error", "message": str(error)})

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
