"""The sandbox's recipients answer: SMSBAT's callback body, retried after 1, 2 and 4 s on
anything but 200, every attempt recorded."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from airflow_provider_cascade.sandbox.client import Sandbox

pytestmark = pytest.mark.integration


class Webhook:
    """A loopback endpoint that answers the first ``failures`` callbacks 503, then 200."""

    def __init__(self, failures: int) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.times: list[float] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                hook.bodies.append(json.loads(self.rfile.read(length)))
                hook.times.append(time.monotonic())
                self.send_response(503 if len(hook.bodies) <= failures else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_a_callback_is_retried_after_1_2_and_4_seconds_until_answered_200():
    webhook = Webhook(failures=3)
    with Sandbox.start(replies_url=webhook.url) as sandbox:
        reply_id = sandbox.reply("+380931234567", "STOP", alpha_name="ShopBot")
        deadline = time.monotonic() + 20
        while sandbox.replies()["pending"] and time.monotonic() < deadline:
            time.sleep(0.2)
        recorded = sandbox.replies()["callbacks"]
    assert len(webhook.bodies) == 4
    body = webhook.bodies[0]
    assert body["idUuid"] == reply_id and all(b == body for b in webhook.bodies)
    assert set(body) == {"idUuid", "alphaName", "phoneNumber", "text", "dt"}
    assert (body["phoneNumber"], body["text"], body["alphaName"]) == (
        "380931234567",
        "STOP",
        "ShopBot",
    )
    gaps = [b - a for a, b in zip(webhook.times, webhook.times[1:], strict=False)]
    # Each retry waits its delay at least; the upper bound is loose (a loaded machine).
    for gap, delay in zip(gaps, (1, 2, 4), strict=True):
        assert delay - 0.05 <= gap < delay + 3, gaps
    assert [a.get("status") for a in recorded[0]["attempts"]] == [503, 503, 503, 200]
    assert recorded[0]["delivered"] is True
