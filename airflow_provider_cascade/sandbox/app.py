"""The sandbox's HTTP face: the Cascade contract's endpoints plus ``/sandbox/*`` controls."""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import time
from typing import Any

from fastapi import FastAPI, Request, Response

from airflow_provider_cascade.sandbox.contract import (
    SEND_PATHS,
    STATUS_PATH,
    ContractError,
    check_message,
    error_body,
    rate_limited_body,
    send_reply,
)
from airflow_provider_cascade.sandbox.replies import Recipients
from airflow_provider_cascade.sandbox.state import REPLY_LOST_KINDS, SandboxState

_BAD_GATEWAY = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
#: Where the sandbox's uvicorn protocol puts the connection, so a fault can reset it.
TRANSPORT_KEY = "cascade_sandbox.transport"


def create_app(state: SandboxState, replies_url: str | None = None) -> FastAPI:
    """Build the sandbox app around ``state`` (see :class:`SandboxState`); recipients'
    replies are forwarded to ``replies_url``."""
    app = FastAPI(title="Cascade sandbox", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sandbox = state
    recipients = Recipients(replies_url)

    for route, path in SEND_PATHS.items():
        app.add_api_route(path, _send_endpoint(state, route), methods=["POST"], response_model=None)

    @app.get(STATUS_PATH)
    async def message_status(message_id: str, request: Request) -> Response:
        state.count_status_request(time.time())
        limited = state.status_rate_limited(time.monotonic())
        if state.faults.status_latency_ms:
            await asyncio.sleep(state.faults.status_latency_ms / 1000)
        if not state.authorized(_headers(request)):
            return _unauthorized(state)
        if limited:
            state.stats["status_rate_limited"] += 1
            return _too_many_requests()
        status = state.status(message_id)
        if status is None:
            return _error(404, "NOT_FOUND", f"no message {message_id}", "messageId")
        return _json(200, status)

    @app.get("/sandbox/messages")
    async def recorded_messages() -> Response:
        return _json(200, [record.to_json() for record in state.records.values()])

    @app.delete("/sandbox/messages")
    async def clear_messages() -> Response:
        state.clear()
        return Response(status_code=204)

    @app.get("/sandbox/stats")
    async def stats() -> Response:
        return _json(200, state.snapshot())

    @app.get("/sandbox/faults")
    async def get_faults() -> Response:
        return _json(200, state.faults.to_json())

    @app.put("/sandbox/faults")
    async def put_faults(request: Request) -> Response:
        try:
            changes = json.loads(await request.body())
            if not isinstance(changes, dict):
                raise ValueError("expected a JSON object")
            faults = state.update_faults(changes)
        except (ValueError, TypeError) as error:
            return _error(400, "INVALID_FAULTS", str(error), "faults")
        return _json(200, faults.to_json())

    @app.post("/sandbox/replies")
    async def recipient_answers(request: Request) -> Response:
        try:
            answer = json.loads(await request.body())
            if not isinstance(answer, dict):
                raise ValueError("expected a JSON object")
            callback = recipients.answer(answer)
        except (ValueError, TypeError) as error:
            return _error(400, "INVALID_REPLY", str(error), "reply")
        return _json(202, {"idUuid": callback.body["idUuid"]})

    @app.get("/sandbox/replies")
    async def recorded_replies() -> Response:
        return _json(
            200,
            {
                "pending": recipients.pending(),
                "callbacks": [callback.to_json() for callback in recipients.callbacks],
            },
        )

    @app.put("/sandbox/replies-url")
    async def set_replies_url(request: Request) -> Response:
        body = json.loads(await request.body() or b"{}")
        recipients.url = body.get("url") if isinstance(body, dict) else None
        return _json(200, {"url": recipients.url})

    return app


def _send_endpoint(state: SandboxState, route: str) -> Any:
    async def send(request: Request) -> Response:
        state.stats["requests"] += 1
        # A rate limiter counts requests as they arrive; the latency is the answer's.
        limited = state.rate_limited(time.monotonic())
        if state.faults.latency_ms:
            await asyncio.sleep(state.faults.latency_ms / 1000)
        if not state.authorized(_headers(request)):
            return _unauthorized(state)
        if limited:
            state.stats["rate_limited"] += 1
            return _too_many_requests()
        fault = state.draw_fault()
        if fault is not None:
            state.count_fault(fault)
        if fault == "reset":
            return await _reset(request)
        if fault == "500":
            return _error(500, "INTERNAL_ERROR", "Injected server error", None)
        if fault in ("429", "429_retry_after"):
            state.stats["rate_limited"] += 1
            return _too_many_requests(retry_after=1 if fault == "429_retry_after" else None)
        if fault == "html_502":
            return Response(_BAD_GATEWAY, status_code=502, media_type="text/html")
        if fault == "401":
            return _unauthorized(state)

        try:
            payload = json.loads(await request.body())
        except ValueError:
            state.stats["rejected"] += 1
            return _error(400, "INVALID_JSON", "Request body is not JSON", None)
        if not isinstance(payload, list) or not payload:
            state.stats["rejected"] += 1
            return _error(400, "INVALID_BODY", "Body must be a non-empty JSON array", None)
        try:
            messages = [check_message(entry, n) for n, entry in enumerate(payload, 1)]
            _check_unique_ids(messages)
        except ContractError as error:
            state.stats["rejected"] += 1
            return _json(400, error.body())

        message_ids = state.accept(messages, route, reply_lost=fault in REPLY_LOST_KINDS)
        answer = send_reply(message_ids, [message["id"] for message in messages])
        if fault == "response_lost":
            return await _reset(request)
        if fault == "slow":
            await asyncio.sleep(state.faults.slow_seconds)
        elif fault == "bad_json":
            return Response("<html><body>OK</body></html>", media_type="text/html")
        elif fault == "json_object":
            return _json(200, {"status": "accepted", "count": len(answer)})
        elif fault == "short_reply":
            return _json(200, answer[:-1])
        elif fault == "no_message_id":
            return _json(200, [{"trackinId": answer[0]["trackinId"]}, *answer[1:]])
        return _json(200, answer)

    send.__name__ = f"send_{route}"
    return send


def _check_unique_ids(messages: list[dict[str, Any]]) -> None:
    seen: set[str] = set()
    for message in messages:
        if message["id"] in seen:
            raise ContractError("DUPLICATE_ID", f"id {message['id']} is used twice", "id")
        seen.add(message["id"])


async def _reset(request: Request) -> Response:
    """Drop the connection with a TCP reset: the client gets no answer at all."""
    transport = request.scope.get("extensions", {}).get(TRANSPORT_KEY)
    if transport is None:  # not served by the sandbox's own protocol: close it abruptly
        return Response(status_code=500, headers={"Connection": "close"})
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    await asyncio.sleep(0)  # let uvicorn see the connection gone; it then drops our reply
    return Response(status_code=204)


def _headers(request: Request) -> dict[str, str]:
    return {key.lower(): value for key, value in request.headers.items()}


def _json(status: int, body: Any) -> Response:
    return Response(
        content=json.dumps(body, separators=(",", ":")),
        status_code=status,
        media_type="application/json",
    )


def _error(status: int, code: str, message: str, field: str | None) -> Response:
    return _json(status, error_body(code, message, field))


def _unauthorized(state: SandboxState) -> Response:
    state.stats["unauthorized"] += 1
    return _error(401, "UNAUTHORIZED", "Invalid API key", None)


def _too_many_requests(retry_after: int | None = None) -> Response:
    response = _json(429, rate_limited_body())
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response
