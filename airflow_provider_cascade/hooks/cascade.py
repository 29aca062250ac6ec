"""The ``cascade`` connection type: the only place that talks HTTP to the service.

:class:`CascadeHook` (sync, ``requests``) sends batches and looks up statuses;
:class:`~.status.CascadeAsyncHook` (``aiohttp``, in :mod:`.status`) is its async twin for
the triggerer and async notifiers, as ``HttpHook``/``HttpAsyncHook`` are. Both read the
connection the same way (:mod:`.connection`), classify every reply with one classifier
(:mod:`.replies`), read a send's outcome one way (:mod:`.outcomes`) and pace themselves
with one :class:`~.pacing.Pacer`. Request and reply shapes are
:mod:`~airflow_provider_cascade.wire`'s.

Longer than 300 lines: one batch's request and the ways it can fail (retry, in doubt,
refused) are read together with the hook that sends it.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import requests
import tenacity
from airflow.providers.common.compat.sdk import BaseHook
from urllib3.exceptions import NewConnectionError

from airflow_provider_cascade.constants import (
    CONN_TYPE,
    DEFAULT_CONN_ID,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_WAIT,
    DEFAULT_RETRY_WAIT,
    MAX_BATCH_SIZE,
)
from airflow_provider_cascade.exceptions import (
    CascadeError,
)
from airflow_provider_cascade.hooks.connection import CascadeConnectionConfig, connection_config
from airflow_provider_cascade.hooks.outcomes import Retryable, Uncertain, accepted, backoff
from airflow_provider_cascade.hooks.pacing import Pacer
from airflow_provider_cascade.hooks.replies import Reply, ReplyKind, classify, status_payload
from airflow_provider_cascade.hooks.status import CascadeAsyncHook
from airflow_provider_cascade.messages import CascadeMessage, Route, SentMessage
from airflow_provider_cascade.metrics import incr
from airflow_provider_cascade.wire import send_body

__all__ = ["CascadeAsyncHook", "CascadeConnectionConfig", "CascadeHook", "Pacer"]

NIL_UUID = "00000000-0000-0000-0000-000000000000"


class CascadeHook(BaseHook):
    """Talk to the SMSBAT Cascade API through a ``cascade`` connection.

    The connection: ``host`` is the base URL (default ``https://restapi.smsbat.com``; a full
    URL such as ``http://127.0.0.1:8765`` works), ``password`` the API key; extras
    ``viber_auth_token`` and ``tg_bot_key`` (the bot credentials; each goes in its own
    header, named in :mod:`~airflow_provider_cascade.wire`), ``timeout``,
    ``connect_timeout``, ``max_requests_per_second`` and ``status_path``. At least one
    credential is required.

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
    :param budget_share: how many senders share the rate (mapped sends running at once):
        this hook paces at ``max_requests_per_second / budget_share``.
    """

    conn_name_attr = "cascade_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONN_TYPE
    hook_name = "SMSBAT Cascade"

    def __init__(
        self,
        cascade_conn_id: str = default_conn_name,
        *,
        max_requests_per_second: float | None = None,
        timeout: float | None = None,
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry_wait: float = DEFAULT_RETRY_WAIT,
        max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT,
        resend_uncertain: bool = True,
        budget_share: int = 1,
    ) -> None:
        super().__init__()
        if budget_share < 1:
            raise ValueError("budget_share must be 1 or more")
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
        self.budget_share = budget_share

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
        # The environment's proxies and CA bundle, read once for the session: requests
        # would otherwise scan os.environ on every request (trust_env), a measurable share
        # of a large send's CPU (benchmarks/throughput.py). No .netrc: the key is the auth.
        session.proxies.update(requests.utils.get_environ_proxies(self.config.base_url))
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            session.verify = bundle
        session.trust_env = False
        return session

    @property
    def rate(self) -> float:
        """The requests per second this hook may make: the connection's (or the given)
        ``max_requests_per_second``, divided by ``budget_share``."""
        return self.config.max_requests_per_second / self.budget_share

    @cached_property
    def pacer(self) -> Pacer:
        """Spaces every request of this hook (sends and look-ups) under the rate."""
        return Pacer(self.rate)

    def close(self) -> None:
        """Close the pooled connections (a new session is made if the hook is used again)."""
        if "_session" in self.__dict__:
            self.__dict__.pop("_session").close()

    # --- sending ------------------------------------------------------------------------

    def send_batch(
        self, batch: Sequence[CascadeMessage], route: Route | str = Route.STANDARD
    ) -> list[SentMessage]:
        """Send one batch of already valid messages in one request (retried as configured).

        :return: the accepted messages, in request order.
        :raises CascadeError: as :meth:`send` does.
        """
        if not 1 <= len(batch) <= MAX_BATCH_SIZE:
            raise ValueError(f"a batch holds 1 to {MAX_BATCH_SIZE} messages, not {len(batch)}")
        attempt = _BatchAttempt(
            self._session,
            self.pacer,
            self.config.base_url + Route(route).path,
            send_body(batch),
            batch,
            self._timeouts,
            self.cascade_conn_id,
        )
        try:
            sent = self._retrying()(attempt)
        except Retryable as failure:
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
        if isinstance(error, Uncertain):
            return self.resend_uncertain
        return isinstance(error, Retryable)

    def _backoff(self, state: tenacity.RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        return backoff(
            state.attempt_number,
            getattr(error, "retry_after", None),
            self.retry_wait,
            self.max_retry_wait,
        )

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
        """The service's status answer for one message (read it with
        :func:`~airflow_provider_cascade.wire.read_status`), or None when the service knows
        no such message (``404``).

        :raises CascadeAuthError: the credentials were refused.
        :raises CascadeRateLimitError: ``429`` (``retry_after`` as the service asked).
        :raises CascadeError: any other failure of the look-up.
        """
        return status_payload(self._get_status(message_id), self.cascade_conn_id)

    def test_connection(self) -> tuple[bool, str]:
        """Check the credentials without sending anything: look up the nil message id.

        ``404`` (no such message) means the service took the credentials; ``401`` that it
        refused them.
        """
        try:
            reply = self._get_status(NIL_UUID)
        except (CascadeError, requests.RequestException) as error:
            return False, f"Cascade service unreachable: {error}"
        if reply.kind is ReplyKind.AUTH_REFUSED:
            return False, "the Cascade service refused the credentials (401)"
        if reply.kind in (ReplyKind.OK, ReplyKind.NOT_FOUND):
            return True, "Connection to the Cascade service works: credentials accepted"
        return False, f"unexpected answer from the Cascade service: HTTP {reply.status}"

    def _get_status(self, message_id: str) -> Reply:
        self.pacer.wait()
        response = self._session.get(self.config.status_url(message_id), timeout=self._timeouts)
        incr("cascade.status.lookups", conn_id=self.cascade_conn_id)
        reply = classify(
            response.status_code, response.content, response.headers.get("Retry-After")
        )
        if reply.kind is ReplyKind.RATE_LIMITED:
            incr("cascade.requests.rate_limited", conn_id=self.cascade_conn_id, call="status")
        return reply

    @property
    def _timeouts(self) -> tuple[float, float]:
        return (self.config.connect_timeout, self.config.timeout)


class _BatchAttempt:
    """One try of one batch; remembers whether any try left the batch in doubt."""

    def __init__(
        self,
        session: requests.Session,
        pacer: Pacer,
        url: str,
        body: bytes,
        batch: Sequence[CascadeMessage],
        timeouts: tuple[float, float],
        conn_id: str,
    ) -> None:
        self.session = session
        self.pacer = pacer
        self.url = url
        self.body = body
        self.batch = batch
        self.timeouts = timeouts
        self.conn_id = conn_id
        self.was_uncertain = False

    def __call__(self) -> list[SentMessage]:
        try:
            return self._try()
        except Uncertain:
            self.was_uncertain = True
            raise

    def _try(self) -> list[SentMessage]:
        self.pacer.wait()
        try:
            response = self.session.post(self.url, data=self.body, timeout=self.timeouts)
        except requests.RequestException as error:
            handshake = _failed_handshake(error)
            if handshake is not None:
                raise Retryable(
                    f"the TLS handshake with {_origin(self.url)} failed ({handshake}) before "
                    f"anything was sent{_tls_hint(handshake, self.url)}"
                ) from None
            if _never_sent(error):
                raise Retryable(
                    f"could not connect to {_origin(self.url)} ({type(error).__name__}) before "
                    "anything was sent: check the connection's host, port and scheme "
                    "(http:// or https://)"
                ) from None
            raise Uncertain(f"{type(error).__name__} after the request was sent") from None
        reply = classify(
            response.status_code, response.content, response.headers.get("Retry-After")
        )
        if reply.kind is ReplyKind.RATE_LIMITED:
            incr("cascade.requests.rate_limited", conn_id=self.conn_id, call="send")
        return accepted(reply, self.batch, self.conn_id)


def _never_sent(error: requests.RequestException) -> bool:
    """True when the connection failed before any byte of the request left."""
    if isinstance(error, requests.ConnectTimeout):
        return True
    reason = error.args[0] if error.args else None
    reason = getattr(reason, "reason", reason)  # urllib3 wraps it in MaxRetryError
    return isinstance(reason, NewConnectionError)


#: ``ssl`` reasons that fail the handshake, before any byte of the request is sent.
_HANDSHAKE_REASONS = frozenset(
    {
        "WRONG_VERSION_NUMBER",
        "RECORD_LAYER_FAILURE",
        "UNKNOWN_PROTOCOL",
        "HTTP_REQUEST",
        "CERTIFICATE_VERIFY_FAILED",
        "TLSV1_ALERT_PROTOCOL_VERSION",
        "SSLV3_ALERT_HANDSHAKE_FAILURE",
        "TLSV1_ALERT_INTERNAL_ERROR",
        "UNSUPPORTED_PROTOCOL",
        "NO_PROTOCOLS_AVAILABLE",
    }
)
#: Of those, the ones a server that speaks plain HTTP causes.
_PLAIN_HTTP_REASONS = frozenset(
    {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "UNKNOWN_PROTOCOL"}
)


def _failed_handshake(error: requests.RequestException) -> str | None:
    """The ``ssl`` reason when the TLS handshake failed (nothing of the request left then),
    else None: a TLS error while the request or its answer travelled stays in doubt."""
    if not isinstance(error, requests.exceptions.SSLError):
        return None
    cause: Any = error.args[0] if error.args else None
    for _ in range(4):  # requests -> urllib3 MaxRetryError -> urllib3 SSLError -> ssl.SSLError
        if isinstance(cause, ssl.SSLCertVerificationError):
            return "CERTIFICATE_VERIFY_FAILED"
        if isinstance(cause, ssl.SSLError):
            reason = getattr(cause, "reason", None)
            return reason if reason in _HANDSHAKE_REASONS else None
        cause = getattr(cause, "reason", None) or (
            cause.args[0] if getattr(cause, "args", None) else None
        )
    return None


def _tls_hint(reason: str, url: str) -> str:
    if reason in _PLAIN_HTTP_REASONS:
        plain = "http://" + url.split("://", 1)[-1].split("/", 1)[0]
        return (
            ": the server does not speak TLS. If it serves plain HTTP, write the connection's "
            f"host as {plain} (a host without a scheme gets https://)"
        )
    if reason == "CERTIFICATE_VERIFY_FAILED":
        return ": its certificate was not trusted (check the host name and the CA bundle)"
    return ": the server and this client share no TLS version or cipher"


def _origin(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"
