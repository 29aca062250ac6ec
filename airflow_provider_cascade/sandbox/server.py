"""Serve the sandbox app with uvicorn on a socket of our own (so port 0 works)."""

from __future__ import annotations

import socket
from typing import Any, cast

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from airflow_provider_cascade.sandbox import READY_LINE
from airflow_provider_cascade.sandbox.app import TRANSPORT_KEY, create_app
from airflow_provider_cascade.sandbox.state import SandboxState


class _ResettableProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol, handing each request its connection so faults can reset it."""

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # cast: uvicorn's scope type lists the extension values it knows, not ours
        self.scope["extensions"] = cast(Any, {TRANSPORT_KEY: self.transport})


def serve(
    state: SandboxState,
    host: str = "127.0.0.1",
    port: int = 8765,
    replies_url: str | None = None,
) -> None:
    """Serve until interrupted, printing ``READY_LINE`` and the URL once listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_host, bound_port = sock.getsockname()[:2]
    config = uvicorn.Config(
        create_app(state, replies_url),
        http=_ResettableProtocol,
        log_level="warning",
        access_log=False,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    original_startup = server.startup

    async def startup(sockets: Any = None) -> None:
        await original_startup(sockets=sockets)
        print(f"{READY_LINE}http://{bound_host}:{bound_port}", flush=True)

    server.startup = startup  # type: ignore[method-assign]
    server.run(sockets=[sock])
