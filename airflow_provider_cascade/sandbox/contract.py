"""The Cascade contract as the sandbox reads it, written here on purpose.

The sandbox does not import the client's model or wire module: a mistake in the client's
idea of the contract (a misspelt field, a rule too lax) then fails against the sandbox
instead of hiding behind a shared definition. Source: ``shared/cascade-api.md``.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

#: Route name -> endpoint path.
SEND_PATHS = {
    "standard": "/api/CascadeMessage/send_message/async",
    "tg_viber": "/api/CascadeMessage/send_message/tg-viber/async",
}
STATUS_PATH = "/bat/message/{message_id}"
CREDENTIAL_HEADERS = ("x-authorization-key", "x-viber-auth-token", "x-tg-bot-key")
API_KEY_HEADER = "x-authorization-key"

MESSAGE_TYPES = ("transaction", "promo", "viber_survey", "flashcall")
_KNOWN_FIELDS = frozenset(
    ("id", "fromName", "toPhone", "messageType", "text", "ttl", "scheduledSent", "surveyOptions")
)
_E164 = re.compile(r"\+[1-9][0-9]{6,14}")
_TRACKING_ID = re.compile(r"[A-Za-z0-9._:-]{1,255}")


class ContractError(ValueError):
    """A message the service would refuse with ``400``: ``{"error": {code, message, field}}``."""

    def __init__(self, code: str, message: str, field: str | None) -> None:
        super().__init__(message)
        self.code = code
        self.field = field

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": str(self), "field": self.field}}


def check_message(entry: Any, position: int) -> dict[str, Any]:
    """Check one object of a send body against the contract; return it unchanged.

    :raises ContractError: the first rule it breaks.
    """
    where = f"message {position}"
    if not isinstance(entry, dict):
        raise ContractError("INVALID_BODY", f"{where} is not an object", None)
    unknown = sorted(set(entry) - _KNOWN_FIELDS)
    if unknown:
        raise ContractError("INVALID_FIELD", f"{where}: unknown field {unknown[0]}", unknown[0])
    tracking_id = entry.get("id")
    if not isinstance(tracking_id, str) or not _TRACKING_ID.fullmatch(tracking_id):
        raise ContractError("INVALID_ID", f"{where}: id is missing or invalid", "id")
    for name in ("fromName", "toPhone", "messageType"):
        if not isinstance(entry.get(name), str) or not entry[name].strip():
            raise ContractError("MISSING_FIELD", f"{tracking_id}: {name} is required", name)
    if not _E164.fullmatch(entry["toPhone"]):
        raise ContractError("INVALID_PHONE", "Invalid phone number format", "toPhone")
    kind = entry["messageType"]
    if kind not in MESSAGE_TYPES:
        raise ContractError("INVALID_MESSAGE_TYPE", f"unknown messageType {kind!r}", "messageType")
    text = entry.get("text")
    if kind == "flashcall":
        if text is not None:
            raise ContractError("INVALID_TEXT", "a flashcall has no text", "text")
    elif not isinstance(text, str) or not text.strip():
        raise ContractError("MISSING_FIELD", f"{tracking_id}: text is required", "text")
    ttl = entry.get("ttl")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int) or ttl <= 0):
        raise ContractError("INVALID_TTL", "ttl must be a positive integer", "ttl")
    _check_schedule(entry.get("scheduledSent"))
    options = entry.get("surveyOptions")
    if kind == "viber_survey":
        if (
            not isinstance(options, list)
            or not 2 <= len(options) <= 5
            or not all(isinstance(option, str) and option for option in options)
        ):
            raise ContractError(
                "INVALID_SURVEY_OPTIONS", "a survey needs 2 to 5 options", "surveyOptions"
            )
        if len(text or "") > 85:
            raise ContractError("INVALID_TEXT", "survey text is at most 85 characters", "text")
    elif options is not None:
        raise ContractError(
            "INVALID_SURVEY_OPTIONS", "surveyOptions is only for viber_survey", "surveyOptions"
        )
    return entry


def scheduled_timestamp(entry: dict[str, Any]) -> float | None:
    """When a checked message is due, as a UNIX time (None: now)."""
    value = entry.get("scheduledSent")
    return _parse_time(value).timestamp() if isinstance(value, str) else None


def _check_schedule(value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise ContractError("INVALID_SCHEDULED_SENT", "scheduledSent must be text", "scheduledSent")
    try:
        moment = _parse_time(value)
    except ValueError:
        raise ContractError(
            "INVALID_SCHEDULED_SENT", "scheduledSent is not ISO 8601", "scheduledSent"
        ) from None
    now = datetime.now(timezone.utc)
    if moment.tzinfo is None or not now - timedelta(minutes=5) <= moment <= now + timedelta(
        days=30
    ):
        raise ContractError(
            "INVALID_SCHEDULED_SENT",
            "scheduledSent must be UTC, not past, at most 30 days ahead",
            "scheduledSent",
        )


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value[:-1] + "+00:00" if value.endswith("Z") else value)


def send_reply(message_ids: list[str], tracking_ids: list[str]) -> list[dict[str, str]]:
    """The ``200`` answer to a send: ``messageId`` and (sic) ``trackinId`` per message."""
    return [
        {"messageId": message_id, "trackinId": tracking_id}
        for message_id, tracking_id in zip(message_ids, tracking_ids, strict=True)
    ]


def status_reply(
    list_id: int,
    message_id: str,
    status: str,
    channels: dict[str, str],
    cost: float,
    bill: tuple[float, str] | None = None,
) -> dict[str, Any]:
    """The core API's status answer for one message; ``bill``: amount and currency."""
    reply: dict[str, Any] = {
        "messagelistId": list_id,
        "messageId": message_id,
        "deliverystatus": status,
        "partscount": 1,
        "cost": cost,
        "fallbacks": [
            {"type": name, "status": state}
            for name, state in channels.items()
            if state != "not_used"
        ],
        "extendedStatuses": channels,
    }
    if bill is not None:
        reply["billAmount"], reply["billCurrency"] = bill
    return reply


def error_body(code: str, message: str, field: str | None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field}}


def rate_limited_body() -> dict[str, Any]:
    """The 429 body, which has a shape of its own."""
    return {
        "error": "Too Many Requests",
        "message": "Rate limit exceeded, slow down",
        "status": 429,
    }
