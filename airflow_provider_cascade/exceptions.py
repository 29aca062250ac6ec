"""The errors the provider raises, as a small hierarchy a DAG author can catch by meaning.

::

    CascadeError
    ├── CascadeValidationError   bad input: found before sending, or a 400 from the service
    ├── CascadeStatementError    a write-back statement that cannot run: found before sending
    ├── CascadeGuardrailError    a campaign guardrail (max_messages, max_reject_ratio) stopped it
    ├── CascadeAuthError         401: the connection's credentials were refused
    ├── CascadeConnectionError   cascade_conn_id names a connection of another type
    ├── CascadeWriteBackError    accepted messages could not be marked (the database failed)
    ├── CascadeRateLimitError    429 still answered after every retry
    └── CascadeServerError       5xx, a broken connection or an unreadable reply
        └── CascadeBatchInDoubtError   ... after the request went out: it may have been accepted

The errors a retry cannot fix (validation, statement, guardrail, auth) are also
``AirflowFailException`` s: the task fails at once, without using its retries.

Every message text is safe to log: phone numbers are masked and no credential is ever
part of one.
"""

from __future__ import annotations

from collections.abc import Sequence

from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

from airflow_provider_cascade.results import ScheduledMessage, SentMessage
from airflow_provider_cascade.validation import Problem

__all__ = [
    "CascadeAuthError",
    "CascadeBatchInDoubtError",
    "CascadeConnectionError",
    "CascadeError",
    "CascadeGuardrailError",
    "CascadeRateLimitError",
    "CascadeServerError",
    "CascadeStatementError",
    "CascadeValidationError",
    "CascadeWriteBackError",
    "Problem",
]


class CascadeError(AirflowException):
    """Base of every error raised by the Cascade provider.

    ``accepted`` holds what the service had already accepted, in earlier batches of the
    same :func:`~airflow_provider_cascade.send.campaign.send_messages`, when the error
    stopped it: those messages are on their way and must not be sent again.
    """

    accepted: Sequence[SentMessage] = ()


class CascadeFinalError(CascadeError, AirflowFailException):
    """An error a retry of the task cannot fix: the task fails without using its retries."""


class CascadeValidationError(CascadeFinalError):
    """Messages that break the contract's rules; nothing of the invalid batch was sent.

    Raised before any request when the provider finds the problems itself (all of them,
    in one error), or from a ``400`` answer of the service (``from_service`` is then true,
    and ``code``/``field`` are the service's). Never retried: the input must be fixed.
    """

    def __init__(self, problems: Sequence[Problem], *, from_service: bool = False) -> None:
        self.problems = list(problems)
        self.from_service = from_service
        first = self.problems[0] if self.problems else None
        self.code = first.code if first else None
        self.field = first.field if first else None
        origin = "the Cascade service rejected the batch" if from_service else "invalid messages"
        lines = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"{origin} ({len(self.problems)} problem(s)):\n{lines}")


class CascadeStatementError(CascadeFinalError):
    """A statement the provider would run after sending (``mark_sent_sql``,
    ``mark_delivered_sql``) cannot run on its connection: wrong placeholders for the
    driver, or refused by the database. Raised before anything is sent or waited for."""


class CascadeWriteBackError(CascadeError):
    """Accepted messages could not be written back: the send stopped at once.

    Retried like any failure: with durable progress (Airflow 3.3+) the retry finds them
    accepted and marks them without sending them again.

    :param unmarked: the accepted messages not written back, in send order.
    """

    def __init__(self, message: str, *, unmarked: Sequence[SentMessage | ScheduledMessage]) -> None:
        self.unmarked = list(unmarked)
        super().__init__(message)


class CascadeGuardrailError(CascadeFinalError):
    """A campaign guardrail stopped the send: more messages than ``max_messages`` (nothing
    sent), or more rejected than ``max_reject_ratio`` (what was sent before stays sent
    and recorded)."""


class CascadeAuthError(CascadeFinalError):
    """``401``: the service refused the connection's credentials. Never retried."""


class CascadeConnectionError(CascadeFinalError):
    """``cascade_conn_id`` names a connection of another type (``http``, ``postgres``...)."""


class CascadeRateLimitError(CascadeError):
    """``429`` answered on every try; nothing of the batch was accepted.

    :param retry_after: the seconds the service asked to wait (``Retry-After``), if any.
    """

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class CascadeServerError(CascadeError):
    """The service failed (``5xx``) or could not be reached, on every try.

    :param status: the HTTP status, ``None`` when no answer came.
    """

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class CascadeBatchInDoubtError(CascadeServerError):
    """The request went out, but whether the service accepted the batch is unknown.

    A ``5xx``, a timeout, a reset connection or an unreadable reply after the request was
    sent: the service may have queued the messages. Re-sending may deliver them twice;
    not re-sending may lose them. Callers choose (see the operator's ``on_uncertain``).

    :param tracking_ids: the tracking ids of the batch in doubt, in request order.
    """

    def __init__(
        self, message: str, *, tracking_ids: Sequence[str], status: int | None = None
    ) -> None:
        self.tracking_ids = list(tracking_ids)
        self.reason = message
        super().__init__(
            f"{message}; batch of {len(self.tracking_ids)} message(s) in doubt "
            f"({_preview(self.tracking_ids)})",
            status=status,
        )


def _preview(tracking_ids: Sequence[str], limit: int = 3) -> str:
    shown = ", ".join(tracking_ids[:limit])
    more = len(tracking_ids) - limit
    return f"{shown}, … {more} more" if more > 0 else shown
