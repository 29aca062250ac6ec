"""The ``cascade`` connection type: credentials, one pooled HTTP session, pacing and retries."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import requests
import tenacity
from airflow.providers.common.compat.sdk import BaseHook, mask_secret
from urllib3.exceptions import NewConnectionError

from airflow_provider_cascade.exceptions import (
    CascadeAuthError,
    CascadeBatchInDoubtError,
    CascadeError,
    CascadeRateLimitError,
    CascadeServerError,
    CascadeValidationError,
    Problem,
)
from airflow_provider_cascade.get_provider_info import DEFAULT_CONN_ID
from airflow_provider_cascade.messages import (
    MAX_BATCH_SIZE,
    CascadeMessage,
    Route,
    SentMessage,
    parse_messages,
    parse_send_response,
    redact_phones,
)

DEFAULT_BASE_URL = "https://restapi.smsbat.com"
DEFAULT_STATUS_PATH = "/bat/message/{message_id}"
#: Below the published 100 requests/s, so a send stays under the limit instead of hitting it.
DEFAULT_MAX_REQUESTS_PER_SECOND = 80.0
DEFAULT_TIMEOUT = 30.0
DEFAULT_CONNECT_TIMEOUT = 10.0
NIL_UUID = "00000000-0000-0000-0000-000000000000"

# Connection extra -> request header. The API key (the connection password) is the third.
_EXTRA_HEADERS = {"viber_auth_token": "X-Viber-Auth-Token", "tg_bot_key": "X-Tg-Bot-Key"}


@dataclass(frozen=True)
class CascadeConnectionConfig:
    """What a ``cascade`` connection says, read once and checked."""

    base_url: str
    headers: Mapping[str, str]
    timeout: float
    connect_timeout: float
    max_requests_per_second: float
    status_path: str


class CascadeHook(BaseHook):
    """Talk to the SMSBAT Cascade API through a ``cascade`` connection.

    The connection: ``host`` is the base URL (default ``https://restapi.smsbat.com``; a full
    URL such as ``http://127.0.0.1:8765`` works), ``password`` the API key sent as
    ``X-Authorization-Key``; extras ``viber_auth_token`` (``X-Viber-Auth-Token``),
    ``tg_bot_key`` (``X-Tg-Bot-Key``), ``timeout``, ``connect_timeout``,
    ``max_requests_per_second`` and ``status_path``. At least one credential is required.

    :param cascade_conn_id: the connection id.
    :param max_requests_per_second: overrides the connection's pacing (default 80/s).
    :param timeout: read timeout in seconds, overriding the connection's (default 30).
    :param max_retries: retries of one request after a ``429``, a ``5xx`` or a broken
        connection (default 4: waits of 1, 2, 4 and 8 s, or the ``Retry-After`` given).
    :param retry_wait: the first backoff wait in seconds, doubled on each retry.
    :param max_retry_wait: the longest wait, also the cap on ``Retry-After``.
    :param resend_uncertain: retry a batch whose request went out but whose fate is
        unknown (``5xx``, timeout, reset; at-least-once, the service's own advice). With
        ``False`` such a batch raises :class:`CascadeBatchInDoubtError` at once
        (at-most-once). A ``429`` and a refused connection are always retried: nothing
        was accepted.
    """

    conn_name_attr = "cascade_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "cascade"
    hook_name = "SMSBAT Cascade"

    def __init__(
        self,
        cascade_conn_id: str = default_conn_name,
        *,
        max_requests_per_second: float | None = None,
        timeout: float | None = None,
        max_retries: int = 4,
        retry_wait: float = 1.0,
        max_retry_wait: float = 60.0,
        resend_uncertain: bool = True,
    ) -> None:
        super().__init__()
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        if max_requests_per_second is not None and max_requests_per_second <= 0:
            raise ValueError("max_requests_per_second must be positive")
        self.cascade_conn_id = cascade_conn_id
        self._max_requests_per_second = max_requests_per_second
        self._timeout = timeout
        self.max_retries = max_retries
        self.retry_wait = retry_wait
        self.max_retry_wait = max_retry_wait
        self.resend_uncertain = resend_uncertain

    # --- connection ---------------------------------------------------------------------

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """The connection form's extras for Airflow before 3.2 (3.2+ reads
        ``conn-fields`` from the provider info and does not call this)."""
        from airflow_provider_cascade.hooks.connection_form import form_widgets

        return form_widgets()

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """How the standard fields are shown, for Airflow before 3.2."""
        from airflow_provider_cascade.hooks.connection_form import field_behaviour

        return field_behaviour()

    @cached_property
    def config(self) -> CascadeConnectionConfig:
        """The connection, read and checked once per hook."""
        return connection_config(
            self.get_connection(self.cascade_conn_id),
            max_requests_per_second=self._max_requests_per_second,
            timeout=self._timeout,
        )

    def get_conn(self) -> requests.Session:
        """The hook's one pooled session, with the credentials as default headers."""
        return self._session

    @cached_property
    def _session(self) -> requests.Session:
        session = requests.Session()
        session.headers.update(self.config.headers)
        return session

    @cached_property
    def _pacer(self) -> Pacer:
        return Pacer(self.config.max_requests_per_second)

    def close(self) -> None:
        """Close the pooled connections (a new session is made if the hook is used again)."""
        if "_session" in self.__dict__:
            self.__dict__.pop("_session").close()

    # --- sending ------------------------------------------------------------------------

    def send(
        self,
        messages: Iterable[CascadeMessage | Mapping[str, Any]],
        route: Route | str = Route.STANDARD,
        *,
        batch_size: int = MAX_BATCH_SIZE,
    ) -> list[SentMessage]:
        """Validate every message, then send them in batches of ``batch_size``.

        Nothing is sent unless every message is valid. Batches go out one after another,
        each paced and retried as the class describes.

        :return: one :class:`SentMessage` per message, in the order given.
        :raises CascadeValidationError: an invalid message (nothing sent), or a batch the
            service refused with ``400``.
        :raises CascadeAuthError: the credentials were refused.
        :raises CascadeRateLimitError: still ``429`` after every retry.
        :raises CascadeBatchInDoubtError: a batch may or may not have been accepted.
        :raises CascadeServerError: the service could not be reached or kept failing.
        Every error carries ``accepted``: what earlier batches had already delivered.
        """
        checked = parse_messages(messages)
        sent: list[SentMessage] = []
        try:
            for batch in self.batches(checked, batch_size):
                sent.extend(self.send_batch(batch, route))
        except CascadeError as error:
            error.accepted = tuple(sent)
            raise
        return sent

    @staticmethod
    def batches(
        messages: Sequence[CascadeMessage], batch_size: int = MAX_BATCH_SIZE
    ) -> Iterator[Sequence[CascadeMessage]]:
        """Split a list into request-sized batches (1 to 1,000 messages)."""
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be 1 to {MAX_BATCH_SIZE}, not {batch_size}")
        for start in range(0, len(messages), batch_size):
            yield messages[start : start + batch_size]

    def send_batch(
        self, batch: Sequence[CascadeMessage], route: Route | str = Route.STANDARD
    ) -> list[SentMessage]:
        """Send one batch of already valid messages in one request (retried as configured).

        :return: the accepted messages, in request order.
        :raises CascadeError: as :meth:`send` does.
        """
        if not 1 <= len(batch) <= MAX_BATCH_SIZE:
            raise ValueError(f"a batch holds 1 to {MAX_BATCH_SIZE} messages, not {len(batch)}")
        url = self.config.base_url + Route(route).path
        body = json.dumps(
            [message.to_wire() for message in batch], ensure_ascii=False, separators=(",", ":")
        ).encode("utf-8")
        attempt = _BatchAttempt(self, url, body, batch)
        try:
            sent = self._retrying()(attempt)
        except _Retryable as failure:
            raise failure.final_error(batch, uncertain=attempt.was_uncertain) from failure
        if attempt.was_uncertain:
            self.log.warning(
                "Batch %s… (%d messages) was sent again after an uncertain failure: the "
                "service may deliver some of them twice",
                batch[0].tracking_id,
                len(batch),
            )
        return sent

    def _retrying(self) -> tenacity.Retrying:
        return tenacity.Retrying(
            retry=tenacity.retry_if_exception(self._is_retryable),
            stop=tenacity.stop_after_attempt(self.max_retries + 1),
            wait=self._backoff,
            before_sleep=self._log_retry,
            reraise=True,
        )

    def _is_retryable(self, error: BaseException) -> bool:
        if isinstance(error, _Uncertain):
            return self.resend_uncertain
        return isinstance(error, _Retryable)

    def _backoff(self, state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return float(min(retry_after, self.max_retry_wait))
        return float(min(self.retry_wait * 2 ** (state.attempt_number - 1), self.max_retry_wait))

    def _log_retry(self, state: tenacity.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        self.log.warning(
            "Cascade request failed (%s); retry %d of %d in %.1f s",
            error,
            state.attempt_number,
            self.max_retries,
            wait,
        )

    # --- status and connection test -----------------------------------------------------

    def get_message_status(self, message_id: str) -> dict[str, Any] | None:
        """The delivery status of one message (``deliverystatus``, ``extendedStatuses``...),
        or None when the service knows no such message (``404``).

        :raises CascadeAuthError: the credentials were refused.
        :raises CascadeError: any other failure of the look-up.
        """
        response = self._get_status_response(message_id)
        if response.status_code == 404:
            return None
        _raise_for_status(response, self.cascade_conn_id)
        try:
            payload = response.json()
        except ValueError:
            raise CascadeServerError("status reply is not JSON", status=200) from None
        if not isinstance(payload, dict):
            raise CascadeServerError("status reply is not a JSON object", status=200)
        return payload

    def test_connection(self) -> tuple[bool, str]:
        """Check the credentials without sending anything: look up the nil message id.

        ``404`` (no such message) means the service took the credentials; ``401`` that it
        refused them.
        """
        try:
            response = self._get_status_response(NIL_UUID)
        except (CascadeError, requests.RequestException) as error:
            return False, f"Cascade service unreachable: {error}"
        if response.status_code == 401:
            return False, "the Cascade service refused the credentials (401)"
        if response.status_code in (200, 404):
            return True, "Connection to the Cascade service works: credentials accepted"
        return False, f"unexpected answer from the Cascade service: HTTP {response.status_code}"

    def _get_status_response(self, message_id: str) -> requests.Response:
        path = self.config.status_path.format(message_id=message_id)
        self._pacer.wait()
        return self._session.get(self.config.base_url + path, timeout=self._timeouts)

    @property
    def _timeouts(self) -> tuple[float, float]:
        return (self.config.connect_timeout, self.config.timeout)


# --- one batch's request and the ways it can fail ----------------------------------------


class _Retryable(Exception):
    """A failed try that nothing was accepted by (or might have been, see _Uncertain)."""

    retry_after: float | None = None

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.status = status

    def final_error(self, batch: Sequence[CascadeMessage], *, uncertain: bool) -> CascadeError:
        ids = [message.tracking_id for message in batch]
        if uncertain:
            return CascadeBatchInDoubtError(str(self), tracking_ids=ids, status=self.status)
        return CascadeServerError(f"{self}; nothing of the batch was accepted", status=self.status)


class _RateLimited(_Retryable):
    def __init__(self, retry_after: float | None) -> None:
        super().__init__("429 Too Many Requests", status=429)
        self.retry_after = retry_after

    def final_error(self, batch: Sequence[CascadeMessage], *, uncertain: bool) -> CascadeError:
        if uncertain:
            return super().final_error(batch, uncertain=uncertain)
        return CascadeRateLimitError(
            f"still rate limited (429) after every retry; the batch of {len(batch)} "
            "message(s) was not accepted: lower max_requests_per_second"
        )


class _Uncertain(_Retryable):
    """The request went out; the service may have accepted the batch."""


class _BatchAttempt:
    """One try of one batch; remembers whether any try left the batch in doubt."""

    def __init__(
        self, hook: CascadeHook, url: str, body: bytes, batch: Sequence[CascadeMessage]
    ) -> None:
        self.hook = hook
        self.url = url
        self.body = body
        self.batch = batch
        self.was_uncertain = False

    def __call__(self) -> list[SentMessage]:
        try:
            return self._try()
        except _Uncertain:
            self.was_uncertain = True
            raise

    def _try(self) -> list[SentMessage]:
        hook = self.hook
        hook._pacer.wait()
        try:
            response = hook._session.post(self.url, data=self.body, timeout=hook._timeouts)
        except requests.RequestException as error:
            if _never_sent(error):
                raise _Retryable(f"could not connect ({type(error).__name__})") from None
            raise _Uncertain(f"{type(error).__name__} after the request was sent") from None
        status = response.status_code
        if status == 200:
            try:
                return parse_send_response(response.json(), self.batch)
            except ValueError as error:
                raise _Uncertain(f"unreadable 200 reply: {error}", status=200) from None
        if status == 429:
            raise _RateLimited(_retry_after(response))
        if status >= 500:
            raise _Uncertain(f"HTTP {status} from the Cascade service", status=status)
        _raise_for_status(response, hook.cascade_conn_id, self.batch)
        raise _Uncertain(f"unexpected HTTP {status}", status=status)


def _never_sent(error: requests.RequestException) -> bool:
    """True when the connection failed before any byte of the request left."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    reason = error.args[0] if error.args else None
    reason = getattr(reason, "reason", reason)  # urllib3 wraps it in MaxRetryError
    return isinstance(reason, NewConnectionError)


def _raise_for_status(
    response: requests.Response, conn_id: str, batch: Sequence[CascadeMessage] = ()
) -> None:
    """Turn a final 4xx answer into the error it means; 2xx passes."""
    status = response.status_code
    if status < 400:
        return
    if status == 401:
        raise CascadeAuthError(
            f"the Cascade service refused the credentials of connection {conn_id!r} (401): "
            "check the API key (password) and the viber_auth_token / tg_bot_key extras"
        )
    if status == 400:
        raise CascadeValidationError([_service_problem(response, batch)], from_service=True)
    raise CascadeError(f"the Cascade service answered HTTP {status}")


def _service_problem(response: requests.Response, batch: Sequence[CascadeMessage]) -> Problem:
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    if not isinstance(error, dict):
        error = {"message": str(error)}
    ref = f"batch of {len(batch)} from {batch[0].tracking_id}" if batch else "request"
    return Problem(
        ref=ref,
        field=str(error.get("field") or "request"),
        rule=redact_phones(str(error.get("message") or "rejected as invalid (400)")),
        code=str(error.get("code") or "BAD_REQUEST"),
    )


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


# --- pacing ------------------------------------------------------------------------------


class Pacer:
    """Spaces requests at most ``rate`` per second, across threads sharing it."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take the next slot; return how long to wait for it (async callers sleep it)."""
        with self._lock:
            now = self._clock()
            slot = max(now, self._next)
            self._next = slot + self.interval
        return slot - now

    def wait(self) -> None:
        delay = self.reserve()
        if delay > 0:
            self._sleep(delay)


# --- connection parsing ------------------------------------------------------------------


def connection_config(
    conn: Any,
    *,
    max_requests_per_second: float | None = None,
    timeout: float | None = None,
    mask: bool = True,
) -> CascadeConnectionConfig:
    """Read a ``cascade`` connection; its credentials are registered for masking in logs
    (``mask=False`` where the caller already did, as ``get_async_connection`` does).

    :raises CascadeAuthError: the connection holds no credential.
    :raises CascadeError: an extra that should be a number is not.
    """
    extra = conn.extra_dejson
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    credentials = {"X-Authorization-Key": conn.password or ""} | {
        header: str(extra.get(name) or "") for name, header in _EXTRA_HEADERS.items()
    }
    for header, secret in credentials.items():
        if secret:
            if mask:
                mask_secret(secret)
            headers[header] = secret
    if len(headers) == 2:
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
