"""Reading a ``cascade`` connection: base URL, credential headers, timeouts, pacing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow.providers.common.compat.sdk import mask_secret

from airflow_provider_cascade.constants import (
    CONN_TYPE,
    DEFAULT_BASE_URL,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_REQUESTS_PER_SECOND,
    DEFAULT_STATUS_PATH,
    DEFAULT_STATUS_REQUESTS_PER_SECOND,
    DEFAULT_TIMEOUT,
)
from airflow_provider_cascade.exceptions import (
    CascadeAuthError,
    CascadeConnectionError,
    CascadeError,
)
from airflow_provider_cascade.wire import API_KEY_HEADER, EXTRA_CREDENTIAL_HEADERS, JSON_HEADERS


@dataclass(frozen=True)
class CascadeConnectionConfig:
    """What a ``cascade`` connection says, read once and checked."""

    base_url: str
    headers: Mapping[str, str]
    timeout: float
    connect_timeout: float
    max_requests_per_second: float
    status_path: str
    #: The status budget (look-ups per second) the connection's delivery waits share.
    status_requests_per_second: float = DEFAULT_STATUS_REQUESTS_PER_SECOND

    def status_url(self, message_id: str) -> str:
        return self.base_url + self.status_path.format(message_id=message_id)


def connection_config(
    conn: Any,
    *,
    max_requests_per_second: float | None = None,
    timeout: float | None = None,
    mask: bool = True,
) -> CascadeConnectionConfig:
    """Read a ``cascade`` connection; its credentials are registered for masking in logs
    (``mask=False`` where the caller already did, as ``get_async_connection`` does).

    :raises CascadeConnectionError: the connection is not of type ``cascade``.
    :raises CascadeAuthError: the connection holds no credential.
    :raises CascadeError: an extra that should be a number is not.
    """
    if conn.conn_type and conn.conn_type != CONN_TYPE:
        raise CascadeConnectionError(
            f"connection {conn.conn_id!r} is of type {conn.conn_type!r}, not {CONN_TYPE!r}: "
            f"cascade_conn_id= needs a Cascade connection (type {CONN_TYPE!r}: host, API key "
            f"as the password), e.g. AIRFLOW_CONN_{str(conn.conn_id).upper()}="
            f'\'{{"conn_type": "{CONN_TYPE}", "host": "{DEFAULT_BASE_URL}", '
            '"password": "<your API key>"}\''
        )
    extra = conn.extra_dejson
    credentials = {API_KEY_HEADER: conn.password or ""} | {
        header: str(extra.get(name) or "") for name, header in EXTRA_CREDENTIAL_HEADERS.items()
    }
    headers = dict(JSON_HEADERS)
    for header, secret in credentials.items():
        if secret:
            if mask:
                mask_secret(secret)
            headers[header] = secret
    if len(headers) == len(JSON_HEADERS):
        raise CascadeAuthError(
            f"connection {conn.conn_id!r} has no credential: set the password "
            "(API key) or the extra viber_auth_token or tg_bot_key"
        )
    return CascadeConnectionConfig(
        base_url=_base_url(conn.host, conn.schema, conn.port),
        headers=headers,
        timeout=timeout or _number(extra, "timeout", DEFAULT_TIMEOUT),
        connect_timeout=_number(extra, "connect_timeout", DEFAULT_CONNECT_TIMEOUT),
        max_requests_per_second=max_requests_per_second
        or _number(extra, "max_requests_per_second", DEFAULT_MAX_REQUESTS_PER_SECOND),
        status_path=str(extra.get("status_path") or DEFAULT_STATUS_PATH),
        status_requests_per_second=_number(
            extra, "status_requests_per_second", DEFAULT_STATUS_REQUESTS_PER_SECOND
        ),
    )


def _base_url(host: str | None, schema: str | None, port: int | None) -> str:
    if not host:
        return DEFAULT_BASE_URL
    host = host.rstrip("/")
    if "://" in host:
        return host
    url = f"{schema or 'https'}://{host}"
    return f"{url}:{port}" if port else url


def _number(extra: Mapping[str, Any], name: str, default: float) -> float:
    value = extra.get(name)
    if value in (None, ""):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise CascadeError(f"connection extra {name!r} must be a number, not {value!r}") from None
    if number <= 0:
        raise CascadeError(f"connection extra {name!r} must be positive, not {value!r}")
    return number
