"""The replies asset's trigger over a real SQLite store: one event for what is new, counts
only, nothing announced twice unless the triggerer died before marking it."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import uuid
from contextlib import closing, suppress
from datetime import datetime, timezone
from pathlib import Path

import pytest

from airflow_provider_cascade.replies.keywords import Keywords
from airflow_provider_cascade.replies.payload import Reply
from airflow_provider_cascade.replies.settings import ReplySettings
from airflow_provider_cascade.replies.store import ReplyStore
from airflow_provider_cascade.triggers.replies import CascadeRepliesTrigger

watcher = pytest.mark.compat("replies_asset")

SETTINGS = ReplySettings(
    cascade_conn_id="shop",
    tokens=("t-1",),
    store_conn_id="replies_db",
    replies_sql=None,
    opt_out_sql=None,
    opt_in_sql=None,
    opt_out_types=("promo",),
    keywords=Keywords(),
)


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "replies.db"
    monkeypatch.setenv(
        "AIRFLOW_CONN_REPLIES_DB", json.dumps({"conn_type": "sqlite", "host": str(path)})
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_SHOP",
        json.dumps(
            {
                "conn_type": "cascade",
                "password": "k-42-secret",
                "extra": {"replies_token": "t-1", "replies_conn_id": "replies_db"},
            }
        ),
    )
    return path


def save(path: Path, count: int) -> None:
    replies = [
        Reply(
            str(uuid.uuid4()), f"+38093000{n:04d}", "Bot", f"text {n}", datetime.now(timezone.utc)
        )
        for n in range(count)
    ]
    with closing(sqlite3.connect(path)) as conn:
        writer = ReplyStore(SETTINGS, "sqlite3")
        writer.create_tables(conn)
        writer.store(conn, replies)


async def events(trigger: CascadeRepliesTrigger, wanted: int, seconds: float) -> list[dict]:
    found: list[dict] = []

    async def collect() -> None:
        async for event in trigger.run():
            found.append(event.payload)
            if len(found) == wanted:
                return

    with suppress(asyncio.TimeoutError):
        await asyncio.wait_for(collect(), seconds)
    return found


@watcher
def test_one_event_for_what_is_new_with_counts_only(store):
    trigger = CascadeRepliesTrigger("shop", poll_interval=0.05)
    assert asyncio.run(events(trigger, 1, 0.5)) == []  # no table yet: nothing, no error
    save(store, 3)
    first = asyncio.run(events(trigger, 2, 1.0))
    assert len(first) == 1
    assert first[0]["replies"] == 3 and first[0]["cascade_conn_id"] == "shop"
    assert set(first[0]) == {"cascade_conn_id", "replies", "first_received_at", "last_received_at"}
    assert "+38093" not in json.dumps(first) and "text" not in json.dumps(first)
    save(store, 2)
    assert [e["replies"] for e in asyncio.run(events(trigger, 2, 1.0))] == [2]


@watcher
def test_replies_not_marked_before_the_triggerer_died_are_announced_again(store):
    save(store, 4)
    trigger = CascadeRepliesTrigger("shop", poll_interval=0.05)

    async def first_event_then_killed() -> dict:
        run = trigger.run()
        event = await run.__anext__()
        await run.aclose()  # killed before it marked them
        return event.payload

    assert asyncio.run(first_event_then_killed())["replies"] == 4
    again = asyncio.run(events(CascadeRepliesTrigger("shop", poll_interval=0.05), 1, 1.0))
    assert [e["replies"] for e in again] == [4]


@watcher
def test_it_serializes_to_what_builds_it_again():
    classpath, kwargs = CascadeRepliesTrigger("shop", poll_interval=7).serialize()
    assert classpath == "airflow_provider_cascade.triggers.replies.CascadeRepliesTrigger"
    assert kwargs == {"cascade_conn_id": "shop", "poll_interval": 7}


@pytest.mark.compat("replies_asset", supported=False)
def test_without_asset_watchers_the_replies_asset_says_what_to_do_instead():
    from airflow_provider_cascade.assets.replies import replies_asset

    with pytest.raises(RuntimeError, match=r"needs Airflow 3\.0"):
        replies_asset("shop")
