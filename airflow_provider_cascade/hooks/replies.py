"""What an answer of the service means: ONE classifier for the sync and async sides.

Every reply, to a send or to a status look-up, goes through :func:`classify` first; the
caller then decides what the kind means for it (a ``5xx`` after a send leaves the batch in
doubt; after a status look-up it is only a failed look-up).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from typing import Any

from airflow_provider_cascade.exceptions import (
    CascadeAuthError,
    CascadeError,
    CascadeRateLimitError,
    CascadeServerError,
)


class ReplyKind(Enum):
    OK = "ok"
    """``200`` with a JSON body."""
    UNREADABLE = "unreadable"
    """``200`` whose body is not JSON."""
    NOT_FOUND = "not_found"
    BAD_REQUEST = "bad_request"
    AUTH_REFUSED = "auth_refused"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    UNEXPECTED = "unexpected"
    """Any other status."""


@dataclass(frozen=True, slots=True)
class Reply:
    """One classified answer: its kind, HTTP status, JSON body (when there is one) and the
    ``Retry-After`` seconds of a ``429``."""

    kind: ReplyKind
    status: int
    payload: Any = None
    retry_after: float | None = None


def classify(status: int, content: bytes, retry_after: str | None = None) -> Reply:
    """Classify an answer by its status, body and ``Retry-After`` header."""
    if status == 200:
        try:
            return Reply(ReplyKind.OK, status, json.loads(content))
        except ValueError:
            return Reply(ReplyKind.UNREADABLE, status)
    if status == 429:
        return Reply(ReplyKind.RATE_LIMITED, status, retry_after=_seconds(retry_after))
    if status >= 500:
        return Reply(ReplyKind.SERVER_ERROR, status)
    kind = _CLIENT_ERRORS.get(status, ReplyKind.UNEXPECTED)
    try:
        payload = json.loads(content) if content else None
    except ValueError:
        payload = None
    return Reply(kind, status, payload)


_CLIENT_ERRORS = {
    400: ReplyKind.BAD_REQUEST,
    401: ReplyKind.AUTH_REFUSED,
    404: ReplyKind.NOT_FOUND,
}


def auth_refused(conn_id: str) -> CascadeAuthError:
    return CascadeAuthError(
        f"the Cascade service refused the credentials of connection {conn_id!r} (401): "
        "check the API key (password) and the viber_auth_token / tg_bot_key extras"
    )


def status_payload(reply: Reply, conn_id: str) -> dict[str, Any] | None:
    """What a status look-up's reply says: the status object, or None for ``404``.

    :raises CascadeAuthError: ``401``.
    :raises CascadeRateLimitError: ``429`` (``retry_after`` set when the service gave one).
    :raises CascadeServerError: ``5xx``, or a ``200`` that is not a JSON object.
    :raises CascadeError: any other answer.
    """
    kind = reply.kind
    if kind is ReplyKind.OK:
        if isinstance(reply.payload, dict):
            return reply.payload
        raise CascadeServerError("status reply is not a JSON object", status=200)
    if kind is ReplyKind.NOT_FOUND:
        return None
    if kind is ReplyKind.UNREADABLE:
        raise CascadeServerError("status reply is not JSON", status=200)
    if kind is ReplyKind.AUTH_REFUSED:
        raise auth_refused(conn_id)
    if kind is ReplyKind.RATE_LIMITED:
        raise CascadeRateLimitError(
            "status look-up rate limited (429)", retry_after=reply.retry_after
        )
    if kind is ReplyKind.SERVER_ERROR:
        raise CascadeServerError(
            f"HTTP {reply.status} from the Cascade service", status=reply.status
        )
    raise CascadeError(f"the Cascade service answered HTTP {reply.status}")


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff
