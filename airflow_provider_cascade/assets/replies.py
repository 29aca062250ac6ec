"""The replies asset, ``cascade://<conn_id>/replies``: a DAG scheduled on it runs when its
connection's replies are stored, whichever receiver stored them (Airflow 3.0+).

::

    from airflow_provider_cascade.assets.replies import replies_asset

    @dag(schedule=[replies_asset("cascade_default")])
    def answer_replies(): ...

Airflow 2.11 has no asset watchers: a DAG there reads the replies table on its own
schedule instead.
"""

from __future__ import annotations

from typing import Any

__all__ = ["replies_asset", "replies_uri"]


def replies_uri(cascade_conn_id: str) -> str:
    """``cascade://<conn_id>/replies``."""
    return f"cascade://{cascade_conn_id}/replies"


def replies_asset(cascade_conn_id: str = "cascade_default", *, poll_interval: float = 5.0) -> Any:
    """The asset that gets an event when ``cascade_conn_id``'s replies are stored, watched
    by :class:`~airflow_provider_cascade.triggers.replies.CascadeRepliesTrigger` in the
    triggerer. Airflow gives each event the ``extra`` ``{"from_trigger": true, "payload":
    {...}}``; the payload holds ``cascade_conn_id``, ``replies`` (how many),
    ``first_received_at`` and ``last_received_at``, never a phone or a text.

    :raises RuntimeError: on Airflow before 3.0 (no asset watchers).
    """
    from airflow_provider_cascade.version_compat import AIRFLOW_V_3_0_PLUS

    if not AIRFLOW_V_3_0_PLUS:
        raise RuntimeError(
            "the replies asset needs Airflow 3.0+ (asset watchers); on 2.11 schedule a DAG "
            "that reads the replies table"
        )
    from airflow.sdk import Asset, AssetWatcher

    from airflow_provider_cascade.triggers.replies import CascadeRepliesTrigger

    return Asset(
        name=f"cascade_replies_{cascade_conn_id}",
        uri=replies_uri(cascade_conn_id),
        watchers=[
            AssetWatcher(
                name=f"cascade_replies_{cascade_conn_id}",
                trigger=CascadeRepliesTrigger(cascade_conn_id, poll_interval=poll_interval),
            )
        ],
    )
