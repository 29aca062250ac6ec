"""The callback receiver: ``POST /cascade/replies/{conn_id}?token=...``.

It runs inside the Airflow API server (the provider's plugin) and on its own
(``cascade-replies``, :mod:`~airflow_provider_cascade.replies.cli`); both serve this one
router. SMSBAT cannot log in to Airflow, so the secret is in the URL's query string (the
API server's access log redacts query strings, not paths; the standalone server logs
paths only).

Answers:

- ``404``: no such ``cascade`` connection, it has no ``replies_token``, or the token is
  missing or wrong (compared in constant time with each token set). Nothing is stored,
  and nothing tells which of these it was.
- ``413``: a body over 64 KB. ``422``: not JSON, or a field missing, mistyped or
  unreadable, named (``reply.phoneNumber``); the log line masks the number and never
  shows the text.
- ``503``: the connection's settings or database cannot be used now: SMSBAT retries.
- ``200`` ``{"stored": n, "repeated": m}``: only after the replies are committed.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from airflow_provider_cascade.metrics import incr
from airflow_provider_cascade.replies.payload import MAX_BODY_BYTES, PayloadError, read_replies
from airflow_provider_cascade.replies.settings import ReplySettings, reply_settings
from airflow_provider_cascade.replies.store import ReplyStore, Stored, dialect_of

__all__ = ["Receivers", "create_app", "router"]

log = logging.getLogger(__name__)

#: Seconds a connection's settings are kept before they are read again (a new token, a
#: rotated one, takes effect within this).
SETTINGS_TTL = 10.0

_NOT_FOUND = {"detail": "Not Found"}


@dataclass
class Receiver:
    """One connection's settings, its store and a pool of database connections."""

    settings: ReplySettings
    store: ReplyStore
    engine: Any
    on_stored: Callable[[str, Stored], None] | None = None

    def accepts(self, token: str) -> bool:
        given = token.encode()
        matches = [hmac.compare_digest(given, known.encode()) for known in self.settings.tokens]
        return any(matches)

    def save(self, replies: list[Any]) -> Stored:
        conn = self.engine.raw_connection()
        try:
            stored = self.store.store(conn, replies)
        except BaseException:
            # Not back into the pool: after a database restart it would fail the next one.
            conn.invalidate()
            raise
        finally:
            conn.close()
        if self.on_stored is not None and stored.new:
            self.on_stored(self.settings.cascade_conn_id, stored)
        return stored


@dataclass
class _Pool:
    """A store's SQLAlchemy engine, for the SQL connection's ``uri`` it was made from."""

    uri: str
    engine: Any
    driver: str
    tables_made: bool = False


def _get_connection(conn_id: str) -> Any:
    from airflow.providers.common.compat.sdk import BaseHook

    return BaseHook.get_connection(conn_id)


class Receivers:
    """The receivers of every connection, built when first asked for and re-read after
    :data:`SETTINGS_TTL` seconds.

    :param get_connection: reads an Airflow connection (default: Airflow's own look-up:
        secrets backends, environment, metadata database).
    :param on_stored: called after a commit that stored new replies.
    """

    def __init__(
        self,
        get_connection: Callable[[str], Any] = _get_connection,
        on_stored: Callable[[str, Stored], None] | None = None,
    ) -> None:
        self._get_connection = get_connection
        self._on_stored = on_stored
        self._known: dict[str, tuple[float, Receiver | None]] = {}
        self._pools: dict[str, _Pool] = {}  # by the store's SQL connection id
        self._lock = threading.Lock()

    def get(self, conn_id: str) -> Receiver | None:
        """The connection's receiver; None when it receives nothing (unknown connection,
        another type, no token).

        :raises Exception: the settings or the database cannot be used (answered 503).
        """
        with self._lock:
            known = self._known.get(conn_id)
            if known is not None and known[0] > time.monotonic():
                return known[1]
            receiver = self._build(conn_id)
            self._known[conn_id] = (time.monotonic() + SETTINGS_TTL, receiver)
            return receiver

    def _pool(self, store_conn_id: str) -> _Pool:
        """The store's pool of database connections: kept while the SQL connection's
        address and credentials stay the same (a settings re-read does not open a new
        pool, nor run ``CREATE TABLE`` again); replaced, and the old one closed, when
        they change."""
        from airflow_provider_cascade.sql import sql_hook

        hook = sql_hook(store_conn_id, "replies_conn_id")
        uri = hook.get_uri()
        pool = self._pools.get(store_conn_id)
        if pool is not None and pool.uri == uri:
            return pool
        # Checked before each use: a connection the database dropped is replaced, not failed.
        engine = hook.get_sqlalchemy_engine(engine_kwargs={"pool_pre_ping": True})
        with closing(engine.raw_connection()) as raw:
            driver, _, _ = dialect_of(raw)
        if pool is not None:
            pool.engine.dispose()
        self._pools[store_conn_id] = pool = _Pool(uri, engine, driver)
        return pool

    def _build(self, conn_id: str) -> Receiver | None:
        from airflow_provider_cascade.constants import CONN_TYPE

        try:
            conn = self._get_connection(conn_id)
        except Exception as error:  # AirflowNotFoundException, across versions
            if type(error).__name__ == "AirflowNotFoundException":
                return None
            raise
        if conn.conn_type != CONN_TYPE:
            return None
        settings = reply_settings(conn)
        if not settings.receives:
            return None
        if settings.store_conn_id is None:
            raise RuntimeError(
                f"connection {conn_id!r} has a replies_token but no replies_conn_id: "
                "replies are refused (503) until it names the SQL connection to store them on"
            )
        pool = self._pool(settings.store_conn_id)
        store = ReplyStore(settings, pool.driver)
        if store.uses_own_tables and not pool.tables_made:
            with closing(pool.engine.raw_connection()) as raw:
                store.create_tables(raw)
            pool.tables_made = True
        return Receiver(settings, store, pool.engine, self._on_stored)


router = APIRouter()
#: The receivers the router serves (replaced by :func:`create_app` for a standalone app).
receivers = Receivers()


def _receivers(request: Request) -> Receivers:
    own = getattr(request.app.state, "cascade_receivers", None)
    return own if isinstance(own, Receivers) else receivers


@router.post("/replies/{conn_id}", include_in_schema=False)
async def receive(conn_id: str, request: Request, token: str | None = None) -> JSONResponse:
    """Store the replies SMSBAT forwards for the ``cascade`` connection ``conn_id``."""
    try:
        receiver = await run_in_threadpool(_receivers(request).get, conn_id)
    except Exception as error:
        log.error("Replies for %r refused (503): its settings cannot be used: %s", conn_id, error)
        incr("cascade.replies.unavailable", conn_id=conn_id)
        return JSONResponse({"detail": "replies cannot be stored now"}, status_code=503)
    if receiver is None or not token or not receiver.accepts(token):
        # No conn_id tag: the path is anyone's to make up (a metric's tags stay few).
        incr("cascade.replies.refused", http_status=404)
        return JSONResponse(_NOT_FOUND, status_code=404)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return _too_large(conn_id)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return _too_large(conn_id)
    try:
        replies = read_replies(bytes(body))
    except PayloadError as error:
        log.warning("Replies for %r refused (422): %s", conn_id, error)
        incr("cascade.replies.refused", conn_id=conn_id, http_status=422)
        return JSONResponse({"detail": str(error)}, status_code=422)
    try:
        stored = await run_in_threadpool(receiver.save, replies)
    except Exception as error:
        log.error(
            "Replies for %r not stored (503, SMSBAT retries): %s", conn_id, type(error).__name__
        )
        incr("cascade.replies.unavailable", conn_id=conn_id)
        return JSONResponse({"detail": "replies cannot be stored now"}, status_code=503)
    incr("cascade.replies.received", stored.new, conn_id=conn_id)
    log.info(
        "Replies for %r: %d stored, %d repeated%s",
        conn_id,
        stored.new,
        stored.repeated,
        f"; {', '.join(stored.changed)}" if stored.changed else "",
    )
    return JSONResponse({"stored": stored.new, "repeated": stored.repeated})


def _too_large(conn_id: str) -> JSONResponse:
    incr("cascade.replies.refused", conn_id=conn_id, http_status=413)
    return JSONResponse(
        {"detail": f"the body is over {MAX_BODY_BYTES // 1024} KB"}, status_code=413
    )


def create_app(own: Receivers | None = None, *, prefix: str = "/cascade") -> FastAPI:
    """The receiver as an app of its own: the route under ``prefix`` (``cascade-replies``
    serves ``/cascade/replies/...``; the API server mounts it at ``/cascade`` itself), no
    documentation pages, nothing else."""
    app = FastAPI(title="Cascade replies", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.cascade_receivers = own or receivers
    app.include_router(router, prefix=prefix)
    return app
