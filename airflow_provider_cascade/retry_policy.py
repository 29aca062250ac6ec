"""``CascadeRetryPolicy``: retries that follow what the Cascade service answered (Airflow 3.3+).

On every Airflow version the errors a retry cannot fix (validation and a ``400``,
refused credentials, a write-back statement that cannot run, a guardrail) are
``AirflowFailException`` s and fail the task at once. On 3.3+ this policy, given as an
operator's ``retry_policy=``, adds what a static ``retry_delay`` cannot know::

    CascadeSendOperator(..., retries=3, retry_policy=CascadeRetryPolicy())

- still rate limited (``429`` after the hook's own retries): the task's retry waits the
  ``Retry-After`` the service asked for (at least ``min_rate_limit_delay``);
- anything the provider knows a retry cannot fix: fail now (``AirflowFailException``
  does so already; the policy says why in the task's record);
- in doubt, server errors and anything else: the task's own retries and delay, as
  documented (a retry of a send never re-sends what was accepted).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow_provider_cascade.exceptions import CascadeFinalError, CascadeRateLimitError

if TYPE_CHECKING:
    from airflow.sdk.definitions.retry_policy import RetryDecision, RetryPolicy
else:
    try:
        from airflow.sdk.definitions.retry_policy import RetryDecision, RetryPolicy
    except ImportError:  # before Airflow 3.3: no retry policies

        class RetryPolicy:
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                raise RuntimeError(
                    "retry_policy= needs Airflow 3.3+; below it the provider's errors that a "
                    "retry cannot fix fail the task at once all the same"
                )

        RetryDecision = None


class CascadeRetryPolicy(RetryPolicy):
    """Retry a send or a delivery check as the Cascade service's answer says.

    :param min_rate_limit_delay: the shortest wait after a ``429`` (also used when the
        service sent no ``Retry-After``).
    """

    def __init__(self, min_rate_limit_delay: timedelta = timedelta(seconds=30)) -> None:
        self.min_rate_limit_delay = min_rate_limit_delay

    def evaluate(
        self,
        exception: BaseException,
        try_number: int,
        max_tries: int,
        context: Any = None,
    ) -> RetryDecision:
        if isinstance(exception, CascadeRateLimitError):
            asked = timedelta(seconds=exception.retry_after or 0)
            delay = max(asked, self.min_rate_limit_delay)
            return RetryDecision.retry(
                delay, reason=f"rate limited (429): retrying after {delay.total_seconds():.0f} s"
            )
        if isinstance(exception, CascadeFinalError):
            return RetryDecision.fail(reason=f"{type(exception).__name__}: a retry cannot fix it")
        return RetryDecision.default()

    def serialize(self) -> dict[str, Any]:
        return {
            "__type": "CascadeRetryPolicy",
            "min_rate_limit_delay": self.min_rate_limit_delay.total_seconds(),
        }

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> CascadeRetryPolicy:
        return cls(timedelta(seconds=float(data.get("min_rate_limit_delay", 30))))
