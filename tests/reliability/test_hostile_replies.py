"""Replies a client must never take for a success: each gives a clear error, and the
result (and ledger) say what was and was not accepted."""

from __future__ import annotations

import pytest

from airflow_provider_cascade.exceptions import (
    CascadeAuthError,
    CascadeBatchInDoubtError,
    CascadeServerError,
)
from airflow_provider_cascade.hooks.cascade import CascadeHook
from airflow_provider_cascade.messages import parse_messages
from airflow_provider_cascade.sandbox.state import REPLY_LOST_KINDS
from airflow_provider_cascade.send.options import CascadeRequests
from tests.fakes import MemoryStore
from tests.reliability._helpers import FAST, messages, send_with_retries

pytestmark = pytest.mark.integration

# kind -> (error, whether the service holds the batch)
HOSTILE = {
    "bad_json": (CascadeBatchInDoubtError, True),
    "json_object": (CascadeBatchInDoubtError, True),
    "short_reply": (CascadeBatchInDoubtError, True),
    "no_message_id": (CascadeBatchInDoubtError, True),
    "slow": (CascadeBatchInDoubtError, True),
    "response_lost": (CascadeBatchInDoubtError, True),
    "html_502": (CascadeBatchInDoubtError, False),
    "401": (CascadeAuthError, False),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_the_hook_raises_and_never_reports_a_success(sandbox, kind):
    error, held = HOSTILE[kind]
    sandbox.set_faults(script=[kind], slow_seconds=3)
    hook = CascadeHook(resend_uncertain=False, max_retries=0, timeout=1.0)
    batch = parse_messages(messages(3), defaults={"from_name": "A", "message_type": "promo"})
    with pytest.raises(error) as caught:
        hook.send_batch(batch)
    assert isinstance(caught.value, CascadeServerError | CascadeAuthError)
    if isinstance(caught.value, CascadeBatchInDoubtError):
        assert caught.value.tracking_ids == ["m-0", "m-1", "m-2"]
    assert (sandbox.stats()["accepted"] == 3) is held
    assert (kind in REPLY_LOST_KINDS) is held


@pytest.mark.parametrize("kind", sorted(k for k, (_, held) in HOSTILE.items() if held))
def test_the_operator_lists_the_batch_in_doubt_and_goes_on(sandbox, kind):
    sandbox.set_faults(script=[None, kind], slow_seconds=3)
    result = send_with_retries(
        MemoryStore(),
        messages=messages(300),
        from_name="A",
        message_type="transaction",
        requests=CascadeRequests(batch_size=100, max_in_flight=1, **{**FAST, "timeout": 1.0}),
        on_uncertain="skip",
    )
    assert result["in_doubt"] == [f"m-{n}" for n in range(100, 200)]
    assert result["sent"] == 200
    assert {m["tracking_id"] for m in result["messages"]}.isdisjoint(result["in_doubt"])
    assert sandbox.stats()["accepted"] == 300 and sandbox.stats()["duplicate_tracking_ids"] == 0


def test_401_mid_campaign_fails_and_a_later_try_sends_only_the_rest(sandbox):
    store = MemoryStore()
    sandbox.set_faults(script=[None, None, "401", "401", "401"])
    with pytest.raises(CascadeAuthError, match="refused the credentials"):
        send_with_retries(
            store,
            tries=1,
            messages=messages(500),
            from_name="A",
            message_type="transaction",
            requests=CascadeRequests(batch_size=100, max_in_flight=1, **FAST),
        )
    assert sandbox.stats()["accepted"] == 200
    # The credentials are fixed; the task runs again with the same state store.
    result = send_with_retries(
        store,
        messages=messages(500),
        from_name="A",
        message_type="transaction",
        requests=CascadeRequests(batch_size=100, max_in_flight=1, **FAST),
    )
    assert result["sent"] == 500 and sandbox.stats()["accepted"] == 500
    assert sandbox.stats()["duplicate_tracking_ids"] == 0
