"""``CascadeRepliesTrigger``: gives the replies asset an event when replies are stored
(Airflow 3.0+, as an ``AssetWatcher``'s trigger; see
:func:`~airflow_provider_cascade.assets.replies.replies_asset`)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import closing
from typing import Any

from airflow.triggers.base import TriggerEvent

try:
    from airflow.triggers.base import BaseEventTrigger
except ImportError:  # Airflow 2.11: no asset watchers; the module still imports
    from airflow.triggers.base import BaseTrigger as BaseEventTrigger  # type: ignore[assignment]

from airflow_provider_cascade.replies.announce import mark_announced, pending_replies

#: Seconds between two looks at the replies table.
DEFAULT_POLL_INTERVAL = 5.0


class CascadeRepliesTrigger(BaseEventTrigger):
    """Watches the provider's ``cascade_replies`` table (on the connection's
    ``replies_conn_id``) and fires once for the replies stored since its last event. The
    event's payload (the asset event's ``extra``) holds counts and times only: the
    connection id, ``replies``, ``first_received_at``, ``last_received_at``.

    At least once: a triggerer killed after an event but before the replies are marked
    announces them again.

    :param cascade_conn_id: the ``cascade`` connection whose replies are watched.
    :param poll_interval: seconds between two looks.
    """

    def __init__(self, cascade_conn_id: str, poll_interval: float = DEFAULT_POLL_INTERVAL) -> None:
        super().__init__()
        self.cascade_conn_id = cascade_conn_id
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {"cascade_conn_id": self.cascade_conn_id, "poll_interval": self.poll_interval},
        )

    def _open(self) -> Any:
        from airflow_provider_cascade.replies.opt_outs import settings_of
        from airflow_provider_cascade.sql import sql_hook

        settings = settings_of(self.cascade_conn_id)
        if settings.store_conn_id is None:
            raise ValueError(
                f"connection {self.cascade_conn_id!r} has no replies_conn_id: nothing to watch"
            )
        return sql_hook(settings.store_conn_id, "replies_conn_id").get_conn()

    def _look(self) -> Any:
        with closing(self._open()) as conn:
            return pending_replies(conn, self.cascade_conn_id)

    def _mark(self, reply_ids: list[str]) -> None:
        with closing(self._open()) as conn:
            mark_announced(conn, reply_ids)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while True:
            pending = await asyncio.to_thread(self._look)
            if pending.reply_ids:
                yield TriggerEvent(pending.payload(self.cascade_conn_id))
                await asyncio.to_thread(self._mark, pending.reply_ids)
            await asyncio.sleep(self.poll_interval)
