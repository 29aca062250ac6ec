"""What a ``cascade`` connection says about its replies: tokens, where they are stored, and
which replies opt a number out of which message types.

Extras (each a field of the connection form):

- ``replies_token``: the secret in the callback URL SMSBAT is given; ``replies_token_previous``
  a second one accepted while rotating. No token: the connection receives nothing (404).
- ``replies_conn_id``: the common-sql connection replies are stored on.
- ``replies_sql``: the statement storing one reply (named parameters ``reply_id``,
  ``phone``, ``alpha_name``, ``text``, ``received_at``, ``cascade_conn_id``); default: the
  provider's own table ``cascade_replies`` (SQLite, PostgreSQL, MySQL/MariaDB), created
  when first needed.
- ``opt_out_sql`` / ``opt_in_sql``: the statements run once per message type when a reply
  opts its sender out or in (``phone``, ``message_type``, ``reply_id``, ``changed_at``,
  ``cascade_conn_id``); default: the table ``cascade_opt_outs``.
- ``opt_out_message_types``: the types an opt-out stops (default ``promo,viber_survey``:
  a STOP to a campaign does not block one-time codes or order confirmations).
- ``opt_out_keywords`` / ``opt_in_keywords``: comma-separated, replacing the defaults
  (:mod:`~airflow_provider_cascade.replies.keywords`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from airflow_provider_cascade.constants import CONN_TYPE
from airflow_provider_cascade.exceptions import CascadeError
from airflow_provider_cascade.replies.keywords import DEFAULT_OPT_IN, DEFAULT_OPT_OUT, Keywords
from airflow_provider_cascade.validation import MessageType

__all__ = ["DEFAULT_OPT_OUT_TYPES", "ReplySettings", "reply_settings"]

DEFAULT_OPT_OUT_TYPES = (MessageType.PROMO.value, MessageType.VIBER_SURVEY.value)
#: The extras that are secrets (masked, password fields in the form).
SECRET_EXTRAS = ("replies_token", "replies_token_previous")


@dataclass(frozen=True)
class ReplySettings:
    """A connection's reply settings, read and checked once."""

    cascade_conn_id: str
    tokens: tuple[str, ...]
    store_conn_id: str | None
    replies_sql: str | None
    opt_out_sql: str | None
    opt_in_sql: str | None
    opt_out_types: tuple[str, ...]
    keywords: Keywords

    @property
    def receives(self) -> bool:
        """True when the connection has a token: callbacks to it are taken."""
        return bool(self.tokens)


def reply_settings(conn: Any) -> ReplySettings:
    """Read a connection's reply settings; its tokens are registered for masking.

    :raises CascadeError: not a ``cascade`` connection, or an extra that cannot be used
        (an unknown message type, a keyword in both sets), named.
    """
    if conn.conn_type and conn.conn_type != CONN_TYPE:
        raise CascadeError(f"connection {conn.conn_id!r} is not of type {CONN_TYPE!r}")
    extra = conn.extra_dejson
    tokens = tuple(str(extra[name]) for name in SECRET_EXTRAS if extra.get(name))
    if tokens:
        from airflow.providers.common.compat.sdk import mask_secret

        for token in tokens:
            mask_secret(token)
    types = _listed(extra, "opt_out_message_types") or DEFAULT_OPT_OUT_TYPES
    known = {kind.value for kind in MessageType}
    unknown = [kind for kind in types if kind not in known]
    if unknown:
        raise CascadeError(
            f"connection {conn.conn_id!r}: opt_out_message_types names {', '.join(unknown)}; "
            f"the types are {', '.join(sorted(known))}"
        )
    try:
        keywords = Keywords(
            _listed(extra, "opt_out_keywords") or DEFAULT_OPT_OUT,
            _listed(extra, "opt_in_keywords") or DEFAULT_OPT_IN,
        )
    except ValueError as error:
        raise CascadeError(f"connection {conn.conn_id!r}: {error}") from None
    return ReplySettings(
        cascade_conn_id=str(conn.conn_id),
        tokens=tokens,
        store_conn_id=_text(extra, "replies_conn_id"),
        replies_sql=_text(extra, "replies_sql"),
        opt_out_sql=_text(extra, "opt_out_sql"),
        opt_in_sql=_text(extra, "opt_in_sql"),
        opt_out_types=tuple(dict.fromkeys(types)),
        keywords=keywords,
    )


def _text(extra: dict[str, Any], name: str) -> str | None:
    value = extra.get(name)
    return str(value).strip() or None if value is not None else None


def _listed(extra: dict[str, Any], name: str) -> tuple[str, ...]:
    value = extra.get(name)
    if value in (None, ""):
        return ()
    items = value if isinstance(value, list) else str(value).split(",")
    return tuple(str(item).strip() for item in items if str(item).strip())
