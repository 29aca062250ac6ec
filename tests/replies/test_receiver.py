"""The replies receiver on its own (``cascade-replies``), over HTTP, storing on SQLite:
answers, storing once, opt-outs, and what reaches its log."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.replies.receiver_process import Receiver, standalone_receiver

pytestmark = [pytest.mark.integration, pytest.mark.compat("replies")]

TOKEN = "rcv-7f3a9c2e41d8b6"
OLD_TOKEN = "rcv-0b1c2d3e4f5a6b"
PHONE_DIGITS = "380931234567"


def callback(text: str = "Hello, I need help with my order", **fields: Any) -> dict[str, Any]:
    body = {
        "idUuid": str(uuid.uuid4()),
        "alphaName": "ShopBot",
        "phoneNumber": PHONE_DIGITS,
        "text": text,
        "dt": "2026-12-04T14:30:00.000Z",
    }
    body.update(fields)
    return body


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "replies.db"


@pytest.fixture
def receiver(
    tmp_path: Path, store_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Receiver]:
    monkeypatch.setenv(
        "AIRFLOW_CONN_REPLIES_DB", json.dumps({"conn_type": "sqlite", "host": str(store_path)})
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_SHOP",
        json.dumps(
            {
                "conn_type": "cascade",
                "host": "http://127.0.0.1:9",
                "password": "api-secret-9d8c7b",
                "extra": {
                    "replies_token": TOKEN,
                    "replies_token_previous": OLD_TOKEN,
                    "replies_conn_id": "replies_db",
                },
            }
        ),
    )
    monkeypatch.setenv(
        "AIRFLOW_CONN_NO_REPLIES",
        json.dumps(
            {"conn_type": "cascade", "host": "http://127.0.0.1:9", "password": "x-secret-55"}
        ),
    )
    with standalone_receiver(tmp_path) as running:
        yield running


def rows(
    path: Path,
    sql: str = "SELECT reply_id, phone, alpha_name, text, received_at FROM cascade_replies",
) -> list[tuple[Any, ...]]:
    if not path.exists():
        return []
    with sqlite3.connect(path) as db:
        try:
            return db.execute(sql).fetchall()
        except sqlite3.OperationalError:
            return []


def opt_outs(path: Path) -> dict[tuple[str, str], int]:
    found = rows(path, "SELECT phone, message_type, opted_out FROM cascade_opt_outs")
    return {(phone, kind): opted for phone, kind, opted in found}


def test_a_reply_is_stored_once_with_its_number_as_e164_and_answered_after_the_commit(
    receiver, store_path
):
    body = callback()
    answer = receiver.post("shop", body, TOKEN)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"stored": 1, "repeated": 0}
    assert rows(store_path) == [
        (
            body["idUuid"],
            "+" + PHONE_DIGITS,
            "ShopBot",
            body["text"],
            "2026-12-04T14:30:00.000+00:00",
        )
    ]
    for _ in range(4):  # SMSBAT retrying: the same idUuid again
        again = receiver.post("shop", body, TOKEN)
        assert again.status_code == 200
        assert again.json() == {"stored": 0, "repeated": 1}
    assert len(rows(store_path)) == 1


def test_the_previous_token_is_taken_while_rotating(receiver, store_path):
    assert receiver.post("shop", callback(), OLD_TOKEN).status_code == 200
    assert len(rows(store_path)) == 1


@pytest.mark.parametrize(
    ("conn_id", "token"),
    [
        ("shop", "rcv-wrong-token"),
        ("shop", None),
        ("shop", ""),
        ("nobody", TOKEN),  # no such connection
        ("no_replies", TOKEN),  # a connection without a replies token
        ("replies_db", TOKEN),  # not a cascade connection
    ],
)
def test_a_wrong_or_missing_token_or_connection_is_404_and_nothing_is_stored(
    receiver, store_path, conn_id, token
):
    answer = receiver.post(conn_id, callback(), token)
    assert answer.status_code == 404
    assert answer.json() == {"detail": "Not Found"}
    assert rows(store_path) == []


def test_a_body_over_64_kb_is_413(receiver, store_path):
    answer = receiver.post("shop", callback(text="x" * 70_000), TOKEN)
    assert answer.status_code == 413
    assert rows(store_path) == []


@pytest.mark.parametrize(
    ("body", "named"),
    [
        (b"not json", "not JSON"),
        ([], "an array"),
        ('"text"', "is text"),
        ({k: v for k, v in callback().items() if k != "idUuid"}, "reply.idUuid is missing"),
        (callback(text=42), "reply.text must be text, not a number"),
        (
            callback(phoneNumber="0931234567"),
            "reply.phoneNumber '0931**4567' is not an international",
        ),
        (callback(dt="yesterday"), "reply.dt 'yesterday' is not an ISO 8601 time"),
        ([callback(), callback(alphaName="")], "replies[1].alphaName must be 1 to 64"),
    ],
)
def test_an_unreadable_body_is_422_naming_the_field_and_nothing_is_stored(
    receiver, store_path, body, named
):
    answer = receiver.post(
        "shop",
        body if not isinstance(body, str) else body.encode(),
        TOKEN,
        headers={"Content-Type": "application/json"},
    )
    assert answer.status_code == 422, answer.text
    assert named in answer.json()["detail"]
    assert rows(store_path) == []


def test_an_array_of_replies_is_stored_each(receiver, store_path):
    bodies = [callback(text=f"reply {n}", phoneNumber=f"38093123450{n}") for n in range(3)]
    answer = receiver.post("shop", bodies, TOKEN)
    assert answer.json() == {"stored": 3, "repeated": 0}
    assert sorted(row[0] for row in rows(store_path)) == sorted(b["idUuid"] for b in bodies)


def test_sql_looking_text_is_stored_verbatim(receiver, store_path):
    text = "'); DROP TABLE cascade_replies; -- :reply_id %(phone)s"
    receiver.post("shop", callback(text=text), TOKEN)
    assert rows(store_path)[0][3] == text


def test_stop_opts_the_number_out_of_campaigns_and_start_lifts_it_newest_first(
    receiver, store_path
):
    phone = "+" + PHONE_DIGITS
    receiver.post("shop", callback(text=" Stop! ", dt="2026-12-04T10:00:00Z"), TOKEN)
    assert opt_outs(store_path) == {(phone, "promo"): 1, (phone, "viber_survey"): 1}
    receiver.post("shop", callback(text="СТАРТ", dt="2026-12-04T11:00:00Z"), TOKEN)
    assert opt_outs(store_path) == {(phone, "promo"): 0, (phone, "viber_survey"): 0}
    # A STOP sent before that START but delivered after it (a retry) does not win.
    receiver.post("shop", callback(text="стоп", dt="2026-12-04T10:30:00Z"), TOKEN)
    assert opt_outs(store_path) == {(phone, "promo"): 0, (phone, "viber_survey"): 0}
    # A sentence that mentions stopping is a reply, not a keyword.
    receiver.post(
        "shop", callback(text="please stop calling me at work", dt="2026-12-04T12:00:00Z"), TOKEN
    )
    assert opt_outs(store_path) == {(phone, "promo"): 0, (phone, "viber_survey"): 0}
    assert len(rows(store_path)) == 4


def test_the_database_locked_answers_503_and_the_retry_stores_it_once(receiver, store_path):
    receiver.post("shop", callback(), TOKEN)  # the tables exist
    body = callback(text="STOP")
    holder = sqlite3.connect(store_path, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        answer = receiver.post("shop", body, TOKEN)
        assert answer.status_code == 503
    finally:
        holder.rollback()
        holder.close()
    assert receiver.post("shop", body, TOKEN).json() == {"stored": 1, "repeated": 0}
    assert receiver.post("shop", body, TOKEN).json() == {"stored": 0, "repeated": 1}
    assert [row[0] for row in rows(store_path)].count(body["idUuid"]) == 1
    assert opt_outs(store_path)[("+" + PHONE_DIGITS, "promo")] == 1


def test_no_token_number_or_text_reaches_the_receivers_log(receiver):
    secret_text = "my card ends 4242, help"
    receiver.post("shop", callback(text=secret_text), TOKEN)
    receiver.post("shop", callback(text="STOP"), TOKEN)
    receiver.post("shop", callback(phoneNumber="093123"), TOKEN)  # 422 names it masked
    receiver.post("shop", callback(), "rcv-wrong-token")
    time.sleep(0.5)
    out = receiver.output()
    assert "POST /cascade/replies/shop 200" in out  # the access log is on
    assert "+380*****4567 opt_out" in out
    for secret in (
        TOKEN,
        "rcv-wrong-token",
        PHONE_DIGITS,
        secret_text,
        "093123",
        "api-secret-9d8c7b",
    ):
        assert secret not in out, secret


def test_twenty_clients_at_once_store_every_reply_once(receiver, store_path):
    bodies = [callback(text=f"n{n}", phoneNumber=f"3809300{n:05d}") for n in range(200)]
    failures: list[int] = []

    def post(chunk: list[dict[str, Any]]) -> None:
        for body in chunk:
            status = receiver.post("shop", body, TOKEN).status_code
            if status != 200:
                failures.append(status)

    threads = [threading.Thread(target=post, args=(bodies[n::20],)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(rows(store_path)) == 200
