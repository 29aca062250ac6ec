"""``cascade-replies``: the callback receiver on its own, for deployments that do not expose
the Airflow API server to SMSBAT.

    cascade-replies --host 0.0.0.0 --port 8085 [--ssl-certfile F --ssl-keyfile F]

It reads connections as Airflow does (``AIRFLOW_CONN_*`` variables, secrets backends, the
metadata database when configured) and serves only ``POST /cascade/replies/{conn_id}``.
SMSBAT requires HTTPS: terminate it here (``--ssl-*``) or in a proxy in front. Its access
log shows the method, the path, the status and the time: never the query string, where
the token is (uvicorn's own access log, which prints it, is off).
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = ["main"]

access_log = logging.getLogger("airflow_provider_cascade.replies.access")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class AccessLog:
    """ASGI middleware: one line a request, the path without its query string."""

    def __init__(self, app: Callable[[Scope, Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 0

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            access_log.info(
                "%s %s %d %.1f ms",
                scope["method"],
                scope["path"],
                status,
                (time.perf_counter() - started) * 1e3,
            )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="cascade-replies", description="Receive SMSBAT's reply callbacks."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8085)
    parser.add_argument("--ssl-certfile")
    parser.add_argument("--ssl-keyfile")
    args = parser.parse_args(argv)
    import uvicorn

    from airflow_provider_cascade.replies.receiver import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    uvicorn.run(
        AccessLog(create_app()),
        host=args.host,
        port=args.port,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
        access_log=False,
        log_config=None,
    )


if __name__ == "__main__":
    main()
