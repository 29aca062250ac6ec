"""``CascadeAsyncHook``: status look-ups and a few sends (an async notifier's pages)
without blocking an event loop (the triggerer's).

It speaks through ``aiohttp``, as Airflow's own ``HttpAsyncHook`` does: measured on the
sandbox (``benchmarks/status_lookups.py``), httpx's async client spent about 2 ms of CPU a
look-up and collapsed with many in flight (encode/httpx#3215), where aiohttp stays near a
tenth of that. Connections are bounded (``max_connections``) and kept alive, so a wait
with hundreds of look-ups in flight reuses its connections instead of opening one per
look-up (which once timed connections out on loopback).
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit
from urllib.request import getproxies, proxy_bypass

from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider_cascade.constants import (
    CONN_TYPE,
    DEFAULT_CONN_ID,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_RETRY_WAIT,
    DEFAULT_RETRY_WAIT,
    MAX_BATCH_SIZE,
    MAX_STATUS_CONCURRENCY,
)
from airflow_provider_cascade.exceptions import CascadeServerError
from airflow_provider_cascade.hooks.connection import CascadeConnectionConfig, connection_config
from airflow_provider_cascade.hooks.outcomes import Retryable, Uncertain, accepted, backoff
from airflow_provider_cascade.hooks.pacing import Pacer
from airflow_provider_cascade.hooks.replies import Reply, ReplyKind, classify, status_payload
from airflow_provider_cascade.messages import CascadeMessage, Route, SentMessage
from airflow_provider_cascade.metrics import incr
from airflow_provider_cascade.wire import send_body

if TYPE_CHECKING:
    from collections.abc import Sequence

    import aiohttp

__all__ = ["CascadeAsyncHook"]


class CascadeAsyncHook(BaseHook):
    """The async twin of :class:`~airflow_provider_cascade.hooks.cascade.CascadeHook`:
    status look-ups (the triggerer's waits) and single batches (an async notifier's pages).
    Use it as an async context manager so its connections are closed::

        async with CascadeAsyncHook("cascade_default") as hook:
            payload = await hook.get_message_status(message_id)

    :param cascade_conn_id: the connection id.
    :param max_requests_per_second: look-ups per second; default the connection's
        ``status_requests_per_second`` (40, under the published 50/s data limit).
    :param timeout: read timeout in seconds, overriding the connection's.
    :param max_connections: connections open at once, at most (kept alive, reused).
    """

    conn_name_attr = "cascade_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONN_TYPE
    hook_name = "SMSBAT Cascade (async)"

    def __init__(
        self,
        cascade_conn_id: str = default_conn_name,
        *,
        max_requests_per_second: float | None = None,
        timeout: float | None = None,
        max_connections: int = MAX_STATUS_CONCURRENCY,
    ) -> None:
        super().__init__()
        if max_requests_per_second is not None and max_requests_per_second <= 0:
            raise ValueError("max_requests_per_second must be positive")
        self.cascade_conn_id = cascade_conn_id
        self._max_requests_per_second = max_requests_per_second
        self._timeout = timeout
        self._max_connections = max_connections
        self._config: CascadeConnectionConfig | None = None
        self._session: aiohttp.ClientSession | None = None
        self._pacer: Pacer | None = None
        self._send_pacer: Pacer | None = None
        self._proxy: str | None = None

    async def __aenter__(self) -> CascadeAsyncHook:
        await self.get_conn()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def get_conn(self) -> aiohttp.ClientSession:
        """The hook's one session, with the credentials as default headers."""
        if self._session is None:
            import aiohttp
            from airflow.providers.common.compat.connection import get_async_connection

            conn = await get_async_connection(self.cascade_conn_id, type(self))
            # get_async_connection has registered the secrets for masking already.
            config = connection_config(conn, timeout=self._timeout, mask=False)
            self._config = config
            if self._pacer is None:
                self._pacer = Pacer(self.rate)
            self._session = aiohttp.ClientSession(
                headers=dict(config.headers),
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=config.connect_timeout, sock_read=config.timeout
                ),
                connector=aiohttp.TCPConnector(limit=self._max_connections),
            )
            # The environment's proxy, read once (aiohttp's trust_env reads the environment
            # and ~/.netrc again on every request: most of a look-up's CPU).
            self._proxy = _proxy_for(config.base_url)
        return self._session

    @property
    def rate(self) -> float:
        """Look-ups per second: the one given, else the connection's (read by
        :meth:`get_conn`)."""
        if self._max_requests_per_second is not None:
            return self._max_requests_per_second
        if self._config is None:
            raise RuntimeError("the connection is read by get_conn() first")
        return self._config.status_requests_per_second

    def use_pacer(self, pacer: Pacer) -> None:
        """Pace look-ups with ``pacer`` (one shared by several waits) instead of the hook's own."""
        self._pacer = pacer

    async def get_message_status(self, message_id: str) -> dict[str, Any] | None:
        """The status object the service gives for ``message_id`` (None for ``404``).

        :raises CascadeAuthError: ``401``.
        :raises CascadeRateLimitError: ``429``.
        :raises CascadeServerError: ``5xx``, an unreadable reply, or the service could not
            be reached.
        """
        session = await self.get_conn()
        assert self._config is not None and self._pacer is not None
        delay = self._pacer.reserve()
        if delay > 0:
            await asyncio.sleep(delay)
        import aiohttp

        try:
            url = self._config.status_url(message_id)
            async with session.get(url, proxy=self._proxy) as response:
                body = await response.read()
                status, retry_after = response.status, response.headers.get("Retry-After")
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            raise CascadeServerError(f"status look-up failed ({type(error).__name__})") from None
        reply = classify(status, body, retry_after)
        self._count(reply, "status")
        return status_payload(reply, self.cascade_conn_id)

    def _count(self, reply: Reply, call: str) -> None:
        if call == "status":
            incr("cascade.status.lookups", conn_id=self.cascade_conn_id)
        if reply.kind is ReplyKind.RATE_LIMITED:
            incr("cascade.requests.rate_limited", conn_id=self.cascade_conn_id, call=call)

    async def send_batch(
        self,
        batch: Sequence[CascadeMessage],
        route: Route | str = Route.STANDARD,
        *,
        max_retries: int = DEFAULT_MAX_RETRIES,
        retry_wait: float = DEFAULT_RETRY_WAIT,
        max_retry_wait: float = DEFAULT_MAX_RETRY_WAIT,
    ) -> list[SentMessage]:
        """Send one batch of already valid messages in one request, as
        :meth:`CascadeHook.send_batch <airflow_provider_cascade.hooks.cascade.CascadeHook.
        send_batch>` does: paced at the connection's ``max_requests_per_second``, retried
        with the same backoff, a batch in doubt sent again (at-least-once).

        :return: the accepted messages, in request order.
        :raises CascadeAuthError: the credentials were refused.
        :raises CascadeValidationError: the service refused the batch (``400``).
        :raises CascadeRateLimitError: still ``429`` after every retry.
        :raises CascadeBatchInDoubtError: a try left the batch in doubt and none was left.
        :raises CascadeServerError: the service could not be reached or kept failing.
        """
        if not 1 <= len(batch) <= MAX_BATCH_SIZE:
            raise ValueError(f"a batch holds 1 to {MAX_BATCH_SIZE} messages, not {len(batch)}")
        session = await self.get_conn()
        assert self._config is not None
        if self._send_pacer is None:
            self._send_pacer = Pacer(self._config.max_requests_per_second)
        url, body = self._config.base_url + Route(route).path, send_body(batch)
        was_uncertain = False
        for attempt in range(1, max_retries + 2):
            delay = self._send_pacer.reserve()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                return await self._post(session, url, body, batch)
            except Retryable as failure:
                was_uncertain = was_uncertain or isinstance(failure, Uncertain)
                if attempt > max_retries:
                    raise failure.final_error(batch, uncertain=was_uncertain) from None
                wait = backoff(attempt, failure.retry_after, retry_wait, max_retry_wait)
                self.log.warning(
                    "Cascade request failed (%s); retry %d of %d in %.1f s",
                    failure,
                    attempt,
                    max_retries,
                    wait,
                )
                await asyncio.sleep(wait)
        raise AssertionError("unreachable: the last try returns or raises")

    async def _post(
        self,
        session: aiohttp.ClientSession,
        url: str,
        body: bytes,
        batch: Sequence[CascadeMessage],
    ) -> list[SentMessage]:
        import aiohttp

        try:
            async with session.post(url, data=body, proxy=self._proxy) as response:
                content = await response.read()
                status, retry_after = response.status, response.headers.get("Retry-After")
        except aiohttp.ClientConnectorError as error:
            raise Retryable(
                f"could not connect to the Cascade service ({type(error).__name__}) before "
                "anything was sent: check the connection's host, port and scheme"
            ) from None
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            raise Uncertain(f"{type(error).__name__} after the request was sent") from None
        reply = classify(status, content, retry_after)
        self._count(reply, "send")
        return accepted(reply, batch, self.cascade_conn_id)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _proxy_for(url: str) -> str | None:
    """The proxy the environment names for ``url`` (``HTTPS_PROXY``..., ``NO_PROXY``
    honoured), as requests would use it; None for none."""
    parts = urlsplit(url)
    proxy = getproxies().get(parts.scheme)
    if not proxy or proxy_bypass(parts.hostname or ""):
        return None
    return proxy
