"""Replies and opt-outs on real PostgreSQL and MariaDB servers: the provider's tables made
there, a repeated callback stored once, newest keyword wins, and a send's suppression
reading them back. Skipped where no server answers (CI requires them)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from airflow_provider_cascade.replies.opt_outs import load_opt_outs
from tests.integration.databases.test_databases import _database, _hook
from tests.replies.receiver_process import Receiver, standalone_receiver

pytestmark = [pytest.mark.integration, pytest.mark.compat("replies")]

TOKEN = "db-token-8a7b6c5d"


@pytest.fixture(params=["postgres", "mysql"])
def server(request, monkeypatch) -> Iterator[str]:
    with _database(request.param, monkeypatch) as name:
        hook = _hook(name)
        for table in ("cascade_replies", "cascade_opt_outs"):
            hook.run(f"DROP TABLE IF EXISTS {table}")
        yield name
        for table in ("cascade_replies", "cascade_opt_outs"):
            hook.run(f"DROP TABLE IF EXISTS {table}")


@pytest.fixture
def receiver(server: str, tmp_path: Path, monkeypatch) -> Iterator[Receiver]:
    monkeypatch.setenv(
        "AIRFLOW_CONN_SHOP",
        json.dumps(
            {
                "conn_type": "cascade",
                "host": "http://127.0.0.1:9",
                "password": "api-secret-1f2e3d",
                "extra": {"replies_token": TOKEN, "replies_conn_id": f"cascade_test_{server}"},
            }
        ),
    )
    with standalone_receiver(tmp_path) as running:
        yield running


def callback(phone: str, text: str, dt: str) -> dict[str, str]:
    return {
        "idUuid": str(uuid.uuid4()),
        "alphaName": "ShopBot",
        "phoneNumber": phone,
        "text": text,
        "dt": dt,
    }


def test_replies_are_stored_once_and_opt_outs_read_back_by_a_send(server, receiver):
    hello = callback("380671112233", "Привіт! 'quoted' %(x)s :y", "2026-12-04T09:00:00.123Z")
    for _ in range(5):
        assert receiver.post("shop", hello, TOKEN).status_code == 200
    stop = callback("380671112244", "STOP", "2026-12-04T10:00:00Z")
    late_stop = callback("380671112255", "stop", "2026-12-04T10:00:00Z")
    start = callback("380671112255", "start", "2026-12-04T11:00:00Z")
    for body in (stop, start, late_stop):  # the STOP before START arrives after it
        assert receiver.post("shop", body, TOKEN).json()["stored"] == 1
    hook = _hook(server)
    assert hook.get_first("SELECT COUNT(*) FROM cascade_replies")[0] == 4
    phone, text, received_at = hook.get_first(
        "SELECT phone, text, received_at FROM cascade_replies WHERE reply_id = %s",
        parameters=(hello["idUuid"],),
    )
    assert (phone, text) == ("+380671112233", hello["text"])
    assert received_at.strftime("%Y-%m-%d %H:%M:%S.%f")[:23] == "2026-12-04 09:00:00.123"
    opted = load_opt_outs("shop")
    assert set(opted) == {"promo", "viber_survey"}
    for kind in opted.values():
        assert 380671112244 in kind
        assert 380671112255 not in kind
        assert len(kind) == 1
