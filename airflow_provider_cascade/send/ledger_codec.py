"""The send ledger's inline encoding of ids, for a send without ``results_path``: tracking
ids as 16-byte digests, and message ids as their 16 UUID bytes where every one is a
canonical UUID (the service's documented form: 43 KB of base64 for 1,000 messages), else
as text, split over as many events as keep each under the state store's value limit."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from airflow_provider_cascade.results import SentMessage
from airflow_provider_cascade.send.accepted_ids import DIGEST_BYTES, digest
from airflow_provider_cascade.send.ledger_writer import MAX_VALUE_BYTES


def decode_inline_ids(event: Mapping[str, Any]) -> Iterable[tuple[bytes, str]]:
    """(digest, message id) pairs of an ``accepted`` event written by :func:`inline_ids`."""
    if "u" in event:  # digest + UUID, 32 bytes a message
        packed = base64.b64decode(event["u"])
        step = DIGEST_BYTES + 16
        return (
            (
                packed[i : i + DIGEST_BYTES],
                str(uuid.UUID(bytes=packed[i + DIGEST_BYTES : i + step])),
            )
            for i in range(0, len(packed), step)
        )
    return zip(split_hashes(event["h"]), event["ids"], strict=True)


def join_hashes(tracking_ids: Iterable[str]) -> str:
    return base64.b64encode(b"".join(digest(t) for t in tracking_ids)).decode()


def split_hashes(text: str) -> list[bytes]:
    packed = base64.b64decode(text)
    return [packed[i : i + DIGEST_BYTES] for i in range(0, len(packed), DIGEST_BYTES)]


def inline_ids(sent: Sequence[SentMessage]) -> Iterable[dict[str, Any]]:
    """The compact inline form: digest + UUID bytes when every id is a canonical UUID (the
    service's documented form: 43 KB of base64 for 1,000 messages), else the digests and
    the ids as text, in as many events as keep each under the value limit."""
    try:
        packed = b"".join(digest(s.tracking_id) + _uuid_bytes(s.message_id) for s in sent)
    except ValueError:
        pass
    else:
        yield {"u": base64.b64encode(packed).decode()}
        return
    chunk: list[SentMessage] = []
    size = 0
    for message in sent:
        cost = len(json.dumps(message.message_id)) + 25  # its text, a comma, its digest
        if chunk and size + cost > MAX_VALUE_BYTES * 3 // 4:
            yield _text_ids(chunk)
            chunk, size = [], 0
        chunk.append(message)
        size += cost
    if chunk:
        yield _text_ids(chunk)


def _text_ids(sent: Sequence[SentMessage]) -> dict[str, Any]:
    return {"h": join_hashes(s.tracking_id for s in sent), "ids": [s.message_id for s in sent]}


def _uuid_bytes(message_id: str) -> bytes:
    value = uuid.UUID(message_id)
    if str(value) != message_id:  # only what decodes back to the same text
        raise ValueError(message_id)
    return value.bytes
