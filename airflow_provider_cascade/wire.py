"""Speaking Cascade: every request and reply shape of the API, and nothing else.

The only module (outside the sandbox, which speaks the contract on its own) that knows the
API's names: the send body (``fromName``, ``toPhone``...), the send reply (``messageId``,
``trackinId``), the status reply (``deliverystatus``, ``extendedStatuses``, ``cost``...),
the error body, the auth headers and the endpoints. Everything else passes the provider's
own types: :class:`~airflow_provider_cascade.messages.CascadeMessage`,
:class:`~airflow_provider_cascade.results.SentMessage`, :class:`DeliveryStatus`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from functools import partial
from json.encoder import encode_basestring
from typing import Any, Protocol

from airflow_provider_cascade.privacy import redact_phones
from airflow_provider_cascade.results import SentMessage
from airflow_provider_cascade.validation import FIELDS, MessageType, Problem


class Route(str, Enum):
    """Which send endpoint routes the batch."""

    STANDARD = "standard"
    """Every available channel in sequence."""
    TG_VIBER = "tg_viber"
    """Telegram and Viber first, for faster delivery."""

    @property
    def path(self) -> str:
        return _ROUTE_PATHS[self]


_ROUTE_PATHS = {
    Route.STANDARD: "/api/CascadeMessage/send_message/async",
    Route.TG_VIBER: "/api/CascadeMessage/send_message/tg-viber/async",
}

# --- credentials ---------------------------------------------------------------------------

API_KEY_HEADER = "X-Authorization-Key"
#: Connection extra -> the header that carries it (the API key, the password, is the third).
EXTRA_CREDENTIAL_HEADERS: Mapping[str, str] = {
    "viber_auth_token": "X-Viber-Auth-Token",
    "tg_bot_key": "X-Tg-Bot-Key",
}
JSON_HEADERS: Mapping[str, str] = {
    "Content-Type": "application/json",
    "Accept": "application/json",
}

# --- the send request ----------------------------------------------------------------------

#: The provider's field name -> the API's.
WIRE_NAMES: Mapping[str, str] = dict(
    zip(
        FIELDS,
        (
            "id",
            "fromName",
            "toPhone",
            "messageType",
            "text",
            "ttl",
            "scheduledSent",
            "surveyOptions",
        ),
        strict=True,
    )
)
#: The API's field name -> the provider's.
FIELD_BY_WIRE_NAME: Mapping[str, str] = {wire: name for name, wire in WIRE_NAMES.items()}


class WireMessage(Protocol):
    """What the encoder reads of a message (a ``CascadeMessage``)."""

    @property
    def tracking_id(self) -> str: ...
    @property
    def from_name(self) -> str: ...
    @property
    def to_phone(self) -> str: ...
    @property
    def message_type(self) -> MessageType: ...
    @property
    def text(self) -> str | None: ...
    @property
    def ttl(self) -> int | None: ...
    @property
    def scheduled_sent(self) -> str | None: ...
    @property
    def survey_options(self) -> tuple[str, ...] | None: ...


def message_to_wire(message: WireMessage) -> dict[str, Any]:
    """The JSON object the API expects for one message, with only the fields that are set."""
    wire: dict[str, Any] = {
        "id": message.tracking_id,
        "fromName": message.from_name,
        "toPhone": message.to_phone,
        "messageType": message.message_type.value,
    }
    if message.text is not None:
        wire["text"] = message.text
    if message.ttl is not None:
        wire["ttl"] = message.ttl
    if message.scheduled_sent is not None:
        wire["scheduledSent"] = message.scheduled_sent
    if message.survey_options is not None:
        wire["surveyOptions"] = list(message.survey_options)
    return wire


def send_body(batch: Iterable[WireMessage]) -> bytes:
    """The request body of one send: a JSON array, UTF-8 (the same JSON as
    :func:`message_to_wire` gives, written directly: a campaign's hottest loop)."""
    return ("[" + ",".join(_message_json(message) for message in batch) + "]").encode("utf-8")


def _message_json(message: WireMessage) -> str:
    text = (
        f'{{"id":{_string(message.tracking_id)},"fromName":{_string(message.from_name)},'
        f'"toPhone":{_string(message.to_phone)},"messageType":"{message.message_type.value}"'
    )
    if message.text is not None:
        text += f',"text":{_string(message.text)}'
    if message.ttl is not None:
        text += f',"ttl":{int(message.ttl)}'
    if message.scheduled_sent is not None:
        text += f',"scheduledSent":{_string(message.scheduled_sent)}'
    if message.survey_options is not None:
        text += ',"surveyOptions":' + json.dumps(list(message.survey_options), ensure_ascii=False)
    return text + "}"


#: A JSON string literal, non-ASCII kept as is (the C encoder json.dumps uses).
_string: Callable[[str], str] = encode_basestring


# --- the send reply ------------------------------------------------------------------------


def read_send_reply(payload: Any, tracking_ids: Sequence[str]) -> list[SentMessage]:
    """Read a ``200`` answer: one ``{messageId, trackinId}`` per message, in request order.

    :raises ValueError: when the answer does not account for every message exactly; the
        caller must then treat the batch as in doubt, never as sent.
    """
    if not isinstance(payload, list):
        raise ValueError(f"expected a JSON array, got {type(payload).__name__}")
    if len(payload) != len(tracking_ids):
        raise ValueError(f"{len(payload)} entries for {len(tracking_ids)} messages")
    try:
        message_ids = [entry["messageId"] for entry in payload]
        answered = [entry["trackinId"] for entry in payload]
    except (KeyError, TypeError):
        message_ids, answered = [], []  # found entry by entry below
    if answered != list(tracking_ids) or not all(
        type(message_id) is str and message_id for message_id in message_ids
    ):
        for entry, tracking_id in zip(payload, tracking_ids, strict=True):
            message_id = entry.get("messageId") if isinstance(entry, dict) else None
            if not isinstance(message_id, str) or not message_id:
                raise ValueError(f"no messageId for {tracking_id}")
            if entry.get("trackinId") != tracking_id:
                raise ValueError(f"entry for {tracking_id} names another tracking id")
    return list(map(_sent_message, zip(message_ids, tracking_ids, strict=True)))


#: ``SentMessage((message_id, tracking_id))`` without Python-level calls (a hot path).
_sent_message: Callable[[tuple[str, str]], SentMessage] = partial(tuple.__new__, SentMessage)


# --- the status reply ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeliveryStatus:
    """What the service says of one message's delivery.

    :param status: ``scheduled``, ``processing``, ``delivered``, ``undeliverable``,
        ``permanenterror`` (lower case), or ``unknown`` when the reply names none.
    :param channel: the channel that delivered (from the per-channel statuses), or None.
    :param channels: every channel's status as the service gave it.
    :param cost: the message's cost, when the reply has one (a number, as given).
    :param bill_amount: the billed amount, when given.
    :param bill_currency: the currency of ``bill_amount``, when given.
    """

    status: str
    channel: str | None = None
    channels: Mapping[str, str] | None = None
    cost: float | None = None
    bill_amount: float | None = None
    bill_currency: str | None = None


def read_status(payload: Mapping[str, Any]) -> DeliveryStatus:
    """Read a status answer (a JSON object)."""
    status = str(payload.get("deliverystatus") or "unknown").lower()
    extended = payload.get("extendedStatuses")
    channels: dict[str, str] | None = None
    channel = None
    if isinstance(extended, Mapping):
        channels = {str(name): str(state) for name, state in extended.items()}
        channel = next((name for name, state in channels.items() if state == "delivered"), None)
    currency = payload.get("billCurrency")
    return DeliveryStatus(
        status=status,
        channel=channel,
        channels=channels,
        cost=_number(payload.get("cost")),
        bill_amount=_number(payload.get("billAmount")),
        bill_currency=str(currency) if currency not in (None, "") else None,
    )


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


# --- the error body ------------------------------------------------------------------------


def read_error(payload: Any, ref: str) -> Problem:
    """The problem a ``400`` body names: ``{"error": {"code", "message", "field"}}``.

    The field stays the API's name (``toPhone``): it is the service's word, not the caller's.
    """
    error = payload.get("error") if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        error = {"message": str(error)} if error else {}
    return Problem(
        ref=ref,
        field=str(error.get("field") or "request"),
        rule=redact_phones(str(error.get("message") or "rejected as invalid (400)")),
        code=str(error.get("code") or "BAD_REQUEST"),
    )
