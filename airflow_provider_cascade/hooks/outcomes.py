"""What one send request came to, for the sync hook and its async twin alike: the accepted
messages, or a failure that another try may mend (:class:`Retryable`), that left the batch
in doubt (:class:`Uncertain`), or that is final (a :class:`~airflow_provider_cascade.
exceptions.CascadeError`); and how long to wait before the next try."""

from __future__ import annotations

from collections.abc import Sequence

from airflow_provider_cascade.exceptions import (
    CascadeBatchInDoubtError,
    CascadeError,
    CascadeRateLimitError,
    CascadeServerError,
    CascadeValidationError,
)
from airflow_provider_cascade.hooks.replies import Reply, ReplyKind, auth_refused
from airflow_provider_cascade.messages import CascadeMessage, SentMessage
from airflow_provider_cascade.wire import read_error, read_send_reply

__all__ = ["RateLimited", "Retryable", "Uncertain", "accepted", "backoff"]


def backoff(attempt: int, retry_after: float | None, first_wait: float, max_wait: float) -> float:
    """Seconds to wait before retry ``attempt`` (1-based): the ``Retry-After`` asked for,
    else ``first_wait`` doubled each time; never more than ``max_wait``."""
    if retry_after is not None:
        return float(min(retry_after, max_wait))
    return float(min(first_wait * 2 ** (attempt - 1), max_wait))


class Retryable(Exception):
    """A failed try that nothing was accepted by (or might have been, see Uncertain)."""

    retry_after: float | None = None

    def __init__(self, reason: str, status: int | None = None) -> None:
        super().__init__(reason)
        self.status = status

    def final_error(self, batch: Sequence[CascadeMessage], *, uncertain: bool) -> CascadeError:
        """The error to raise once no try is left (``uncertain``: a try left it in doubt)."""
        ids = [message.tracking_id for message in batch]
        if uncertain:
            return CascadeBatchInDoubtError(str(self), tracking_ids=ids, status=self.status)
        return CascadeServerError(f"{self}; nothing of the batch was accepted", status=self.status)


class RateLimited(Retryable):
    def __init__(self, retry_after: float | None) -> None:
        super().__init__("429 Too Many Requests", status=429)
        self.retry_after = retry_after

    def final_error(self, batch: Sequence[CascadeMessage], *, uncertain: bool) -> CascadeError:
        if uncertain:
            return super().final_error(batch, uncertain=uncertain)
        return CascadeRateLimitError(
            f"still rate limited (429) after every retry; the batch of {len(batch)} "
            "message(s) was not accepted: lower max_requests_per_second",
            retry_after=self.retry_after,
        )


class Uncertain(Retryable):
    """The request went out; the service may have accepted the batch."""


def accepted(reply: Reply, batch: Sequence[CascadeMessage], conn_id: str) -> list[SentMessage]:
    """The messages of ``batch`` the reply says were accepted, in request order.

    :raises Retryable: a reply another try may mend (``RateLimited``, ``Uncertain``).
    :raises CascadeError: a final one (credentials refused, ``400``...).
    """
    kind = reply.kind
    if kind is ReplyKind.OK:
        try:
            return read_send_reply(reply.payload, [m.tracking_id for m in batch])
        except ValueError as error:
            raise Uncertain(f"unreadable 200 reply: {error}", status=200) from None
    if kind is ReplyKind.UNREADABLE:
        raise Uncertain("unreadable 200 reply: not JSON", status=200)
    if kind is ReplyKind.RATE_LIMITED:
        raise RateLimited(reply.retry_after)
    if kind is ReplyKind.SERVER_ERROR:
        raise Uncertain(f"HTTP {reply.status} from the Cascade service", status=reply.status)
    if kind is ReplyKind.AUTH_REFUSED:
        raise auth_refused(conn_id)
    if kind is ReplyKind.BAD_REQUEST:
        ref = f"batch of {len(batch)} from {batch[0].tracking_id}"
        raise CascadeValidationError([read_error(reply.payload, ref)], from_service=True)
    if reply.status < 400:  # a 2xx/3xx the contract does not name: it may have been taken
        raise Uncertain(f"unexpected HTTP {reply.status}", status=reply.status)
    raise CascadeError(f"the Cascade service answered HTTP {reply.status}")
