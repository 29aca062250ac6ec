"""CascadeRetryPolicy (Airflow 3.3+): what each of the provider's errors does to a retry.
(That the final errors fail a real run at once, on every lane, is in
tests/integration/test_operator_runs.py: retries=3, one try.)"""

from __future__ import annotations

from datetime import timedelta

import pytest

from airflow_provider_cascade.exceptions import (
    CascadeAuthError,
    CascadeBatchInDoubtError,
    CascadeRateLimitError,
    CascadeStatementError,
    CascadeValidationError,
    Problem,
)
from airflow_provider_cascade.version_compat import AIRFLOW_V_3_0_PLUS

try:
    from airflow.sdk.definitions.retry_policy import RetryAction
except ImportError:
    RetryAction = None

pytestmark = pytest.mark.skipif(RetryAction is None, reason="retry policies need Airflow 3.3+")


def decide(error: BaseException):
    from airflow_provider_cascade.retry_policy import CascadeRetryPolicy

    return CascadeRetryPolicy().evaluate(error, try_number=1, max_tries=4)


def test_a_429_is_retried_after_the_delay_the_service_asked_for():
    decision = decide(CascadeRateLimitError("429", retry_after=90))
    assert decision.action is RetryAction.RETRY and decision.retry_delay == timedelta(seconds=90)
    assert decide(CascadeRateLimitError("429")).retry_delay == timedelta(seconds=30)


@pytest.mark.parametrize(
    "error",
    [
        CascadeValidationError([Problem("m-1", "to_phone", "is required", "MISSING_FIELD")]),
        CascadeValidationError([Problem("batch", "text", "bad", "X")], from_service=True),
        CascadeAuthError("401"),
        CascadeStatementError("wrong style"),
    ],
)
def test_what_a_retry_cannot_fix_fails_at_once(error):
    assert decide(error).action is RetryAction.FAIL


def test_in_doubt_and_anything_else_keep_the_tasks_own_retries():
    in_doubt = CascadeBatchInDoubtError("500", tracking_ids=["a"], status=500)
    assert decide(in_doubt).action is RetryAction.DEFAULT
    assert decide(RuntimeError("x")).action is RetryAction.DEFAULT
    assert AIRFLOW_V_3_0_PLUS
