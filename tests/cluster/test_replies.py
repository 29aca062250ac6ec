"""Recipients' replies on the real deployment: the receiver in the Airflow API server,
stored on PostgreSQL, the replies asset's watcher in the real triggerer starting a DAG
through the real scheduler, STOPs honoured by the next send; bad input, load, and what
reaches any process's log."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
import requests

from airflow_provider_cascade.sandbox.callbacks import callback_body, post_callbacks
from tests.cluster.conftest import FLAKY_DB_PORT, REPLIES_TOKEN, REPO, Cluster
from tests.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.integration, pytest.mark.compat("cluster")]

API = "http://127.0.0.1:28080"
RECEIVER = f"{API}/cascade/replies/cascade_replies"
#: Texts the log scan looks for: none may appear in any process's log.
SECRET_TEXT = "my order 7731 never came, call me"
LOAD_PREFIX = "38094"  # the load test's numbers: 38094 and seven digits


def _post(body: object, token: str | None = REPLIES_TOKEN, **kwargs: Any) -> requests.Response:
    params = {} if token is None else {"token": token}
    return requests.post(RECEIVER, params=params, json=body, timeout=30, **kwargs)


def _stored(cluster: Cluster, where: str, parameters: tuple[Any, ...] = ()) -> int:
    return int(cluster.sql(f"SELECT COUNT(*) FROM cascade_replies WHERE {where}", parameters)[0][0])


def _runs(cluster: Cluster, dag_id: str) -> list[tuple[str, str]]:
    rows = cluster.sql("SELECT run_id, state FROM dag_run WHERE dag_id = %s ORDER BY id", (dag_id,))
    return [(str(run), str(state)) for run, state in rows]


def test_a_stop_through_the_api_server_reaches_the_next_send_and_starts_the_replies_dag(
    cluster,
):
    sandbox = cluster.sandbox
    sandbox.clear()
    sandbox.set_faults(error_rate=0.0, script=[], rate_limit=None)
    first = cluster.trigger("cluster_replies_promo")
    assert cluster.wait("cluster_replies_promo", first) == "success"
    assert cluster.xcom("cluster_replies_promo", first, "promo")["sent"] == 5
    before = len(_runs(cluster, "cluster_on_replies"))

    sandbox.set_replies_url(f"{RECEIVER}?token={REPLIES_TOKEN}")
    try:
        reply_id = sandbox.reply("+380935550003", "STOP")
        deadline = time.monotonic() + 60
        while sandbox.replies()["pending"] and time.monotonic() < deadline:
            time.sleep(0.5)
    finally:
        sandbox.set_replies_url(None)
    [made] = [c for c in sandbox.replies()["callbacks"] if c["idUuid"] == reply_id]
    assert made["delivered"], made["attempts"]
    assert _stored(cluster, "reply_id = %s", (reply_id,)) == 1

    # The watcher (triggerer) gives the asset an event; the scheduler starts the DAG.
    deadline = time.monotonic() + 120
    runs: list[tuple[str, str]] = []
    while time.monotonic() < deadline:
        runs = _runs(cluster, "cluster_on_replies")[before:]
        if runs and runs[-1][1] in ("success", "failed"):
            break
        time.sleep(2)
    assert runs and runs[-1][1] == "success", runs
    extras = [e for run, _ in runs for e in cluster.xcom("cluster_on_replies", run, "received")]
    # Airflow puts a watcher's event under "payload": {"from_trigger": true, "payload": ...}.
    payloads = [e["payload"] for e in extras if e.get("from_trigger")]
    assert sum(p["replies"] for p in payloads) >= 1
    assert all(p["cascade_conn_id"] == "cascade_replies" for p in payloads)
    assert "380935550003" not in str(extras) and "STOP" not in str(extras)

    sandbox.clear()
    second = cluster.trigger("cluster_replies_promo")
    assert cluster.wait("cluster_replies_promo", second) == "success"
    result = cluster.xcom("cluster_replies_promo", second, "promo")
    assert (result["sent"], result["suppressed"]) == (4, 1)
    assert "+380935550003" not in {m["to_phone"] for m in sandbox.messages()}


@pytest.mark.parametrize(
    ("token", "conn_id"),
    [("wrong-token", "cascade_replies"), (None, "cascade_replies"), (REPLIES_TOKEN, "nobody")],
)
def test_the_api_server_answers_404_to_a_wrong_token_or_connection(cluster, token, conn_id):
    body = callback_body("380935551111", "hello")
    params = {} if token is None else {"token": token}
    answer = requests.post(f"{API}/cascade/replies/{conn_id}", params=params, json=body, timeout=30)
    assert answer.status_code == 404
    assert _stored(cluster, "reply_id = %s", (body["idUuid"],)) == 0


def test_the_api_server_refuses_bad_bodies_and_stores_repeats_once(cluster):
    assert _post(callback_body("380935552222", "x" * 70_000)).status_code == 413
    bad = _post(callback_body("0935552222", SECRET_TEXT))
    assert bad.status_code == 422
    assert "reply.phoneNumber '0935**2222'" in bad.json()["detail"]
    repeated = callback_body("380935553333", "'); DROP TABLE cascade_replies; --")
    answers = [_post(repeated).json() for _ in range(5)]
    assert answers[0] == {"stored": 1, "repeated": 0}
    assert answers[1:] == [{"stored": 0, "repeated": 1}] * 4
    assert _stored(cluster, "reply_id = %s", (repeated["idUuid"],)) == 1
    [(text,)] = cluster.sql(
        "SELECT text FROM cascade_replies WHERE reply_id = %s", (repeated["idUuid"],)
    )
    assert text == repeated["text"]
    assert _post(callback_body("380935554444", SECRET_TEXT)).status_code == 200


def test_2000_callbacks_at_200_a_second_from_20_clients_are_each_stored_once(cluster):
    bodies = [callback_body(f"{LOAD_PREFIX}{n:07d}", f"load reply {n}") for n in range(2_000)]
    load = post_callbacks(f"{RECEIVER}?token={REPLIES_TOKEN}", bodies, clients=20, rate=200)
    assert load.statuses == {200: 2_000}
    [(rows, distinct)] = cluster.sql(
        "SELECT COUNT(*), COUNT(DISTINCT reply_id) FROM cascade_replies WHERE phone LIKE %s",
        (f"+{LOAD_PREFIX}%",),
    )
    assert (rows, distinct) == (2_000, 2_000)  # 0 lost, 0 stored twice
    print(
        f"\n2,000 callbacks, 20 clients, {load.rate:.0f}/s: p50 {load.median * 1e3:.0f} ms,"
        f" p99 {load.percentile(0.99) * 1e3:.0f} ms (figures: benchmarks/replies_load.py)"
    )


def test_the_database_unreachable_answers_503_and_smsbats_retry_stores_it_once(cluster):
    """The replies database behind a proxy (this deployment's only) is cut: the callback is
    answered 503; once it is back, the sandbox's (SMSBAT's) retry stores it, once."""
    sandbox = cluster.sandbox
    flaky = f"{API}/cascade/replies/cascade_replies_flaky?token={REPLIES_TOKEN}"
    with TcpProxy(FLAKY_DB_PORT, "127.0.0.1", 5432) as proxy:
        warm = requests.post(flaky, json=callback_body("380935556661", "hi"), timeout=30)
        assert warm.status_code == 200  # the receiver's pool holds connections now
        proxy.cut()
        sandbox.set_replies_url(flaky)
        try:
            reply_id = sandbox.reply("+380935556662", "STOP")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                [made] = [c for c in sandbox.replies()["callbacks"] if c["idUuid"] == reply_id]
                if made["attempts"]:
                    break
                time.sleep(0.1)
            assert [a.get("status") for a in made["attempts"]] == [503]
            proxy.restore()
            while sandbox.replies()["pending"] and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            sandbox.set_replies_url(None)
    [made] = [c for c in sandbox.replies()["callbacks"] if c["idUuid"] == reply_id]
    statuses = [a.get("status") for a in made["attempts"]]
    assert statuses[0] == 503 and statuses[-1] == 200 and made["delivered"], statuses
    assert _stored(cluster, "reply_id = %s", (reply_id,)) == 1


def test_no_process_logs_the_token_a_full_number_or_a_reply_text(cluster):
    """Run after the tests above (file order): every log of the deployment, the API
    server's access log and the task logs included."""
    logs = [
        *(REPO / ".cluster" / "logs").glob("*.log"),
        *(REPO / ".cluster" / "home" / "logs").rglob("*"),
    ]
    texts = {path: path.read_text(errors="replace") for path in logs if path.is_file()}
    assert any("/cascade/replies/cascade_replies" in text for text in texts.values())
    full_number = re.compile(r"(?<!\d)(?:\+?380935\d{6}|\+?" + LOAD_PREFIX + r"\d{7})(?!\d)")
    for path, text in texts.items():
        assert REPLIES_TOKEN not in text, path
        assert SECRET_TEXT not in text, path
        assert "load reply" not in text, path
        found = full_number.search(text)
        assert found is None, (path, found.group() if found else None)
