"""The receiver re-reads a connection's settings every SETTINGS_TTL seconds; its pool of
database connections and the provider's tables are made once per SQL connection, and
made again only when that connection's address changes (real SQLite files)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from airflow_provider_cascade.replies import receiver as receiver_module
from airflow_provider_cascade.replies.receiver import Receivers

pytestmark = pytest.mark.compat("replies")


def _cascade(monkeypatch: pytest.MonkeyPatch, store: Path) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_REPLIES_DB", json.dumps({"conn_type": "sqlite", "host": str(store)})
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_SHOP",
        json.dumps(
            {
                "conn_type": "cascade",
                "host": "http://127.0.0.1:9",
                "password": "api-secret-1",
                "extra": {"replies_token": "rcv-1a2b3c4d5e6f", "replies_conn_id": "replies_db"},
            }
        ),
    )


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def test_a_settings_reread_keeps_the_pool_and_a_new_address_replaces_it(tmp_path, monkeypatch):
    monkeypatch.setattr(receiver_module, "SETTINGS_TTL", 0.0)  # re-read at every request
    first = tmp_path / "first.db"
    _cascade(monkeypatch, first)
    receivers = Receivers()
    made = receivers.get("shop")
    assert made is not None
    assert {"cascade_replies", "cascade_opt_outs"} <= _tables(first)

    with sqlite3.connect(first) as db:  # proof CREATE TABLE does not run on a re-read
        db.execute("DROP TABLE cascade_opt_outs")
    again = receivers.get("shop")
    assert again is not None and again is not made  # the settings were read again
    assert again.engine is made.engine
    assert "cascade_opt_outs" not in _tables(first)

    old_pool = made.engine.pool
    second = tmp_path / "second.db"
    _cascade(monkeypatch, second)  # the SQL connection now points elsewhere
    moved = receivers.get("shop")
    assert moved is not None and moved.engine is not made.engine
    assert {"cascade_replies", "cascade_opt_outs"} <= _tables(second)
    assert made.engine.pool is not old_pool  # the old engine was disposed: its pool closed
