"""A scripted status endpoint on loopback: real HTTP for the async hook's edge cases (a
malformed reply, a 429 with Retry-After) that the sandbox does not script per message."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def reply(
    status: int, json_body: Any = None, *, text: str | None = None, headers: dict | None = None
) -> Reply:
    """One scripted answer: a JSON body, or text."""
    if text is not None:
        return Reply(status, text.encode(), {"Content-Type": "text/html", **(headers or {})})
    body = b"" if json_body is None else json.dumps(json_body).encode()
    return Reply(status, body, {"Content-Type": "application/json", **(headers or {})})


@dataclass
class StatusService:
    """``answers[message_id]``: the replies in turn (the last one repeats); ``seen``: the
    message ids asked about, in order; ``keys``: the API key of each request."""

    url: str
    answers: dict[str, list[Reply]] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list)
    keys: list[str | None] = field(default_factory=list)


@contextmanager
def status_service() -> Iterator[StatusService]:
    lock = threading.Lock()
    service = StatusService(url="")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the real service

        def do_GET(self) -> None:
            message_id = self.path.rsplit("/", 1)[-1]
            with lock:
                service.seen.append(message_id)
                service.keys.append(self.headers.get("X-Authorization-Key"))
                script = service.answers.get(message_id) or [Reply(404)]
                answer = script.pop(0) if len(script) > 1 else script[0]
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)

        def log_message(self, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 1024  # a connection per look-up in flight may open at once

    server = Server(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    service.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield service
    finally:
        server.shutdown()
        server.server_close()
