from __future__ import annotations

import re
import time

import pytest

from airflow_provider_cascade.hooks.cascade import CascadeHook
from airflow_provider_cascade.messages import CascadeMessage
from airflow_provider_cascade.sandbox.__main__ import parse_args
from airflow_provider_cascade.sandbox.state import (
    FAULT_DESCRIPTIONS,
    FAULT_KINDS,
    Faults,
    SandboxState,
    outcome_for,
)
from airflow_provider_cascade.send.campaign import send_messages
from tests.conftest import make_message


def accept(state: SandboxState, *numbers: int, **overrides) -> list[str]:
    messages = [CascadeMessage.from_mapping(make_message(n, **overrides)) for n in numbers]
    return state.accept([message.to_wire() for message in messages], "standard")


@pytest.mark.parametrize(
    ("phone", "channel", "status"),
    [
        ("+380500000001", "telegram", "delivered"),
        ("+380500000002", "viber", "delivered"),
        ("+380500000003", "viber_business", "delivered"),
        ("+380500000004", "rcs", "delivered"),
        ("+380500000005", "sms", "delivered"),
        ("+380500000006", "telegram", "delivered"),
        ("+380500000000", None, "undeliverable"),
    ],
)
def test_outcome_is_deterministic_per_phone(phone, channel, status):
    assert outcome_for(phone) == (channel, status)


def test_status_goes_from_processing_to_final():
    state = SandboxState(delivery_seconds=10)
    (message_id,) = accept(state, 3)
    accepted = state.records[message_id].accepted_at
    early = state.status(message_id, now=accepted + 1)
    assert early is not None and early["deliverystatus"] == "processing"
    late = state.status(message_id, now=accepted + 11)
    assert late is not None
    assert late["deliverystatus"] == "delivered"
    assert late["extendedStatuses"] == {
        "telegram": "undeliverable",
        "viber": "undeliverable",
        "viber_business": "delivered",
        "rcs": "not_used",
        "sms": "not_used",
    }
    assert {"messagelistId", "messageId", "partscount", "cost", "fallbacks"} <= set(late)


def test_scheduled_messages_wait_for_their_time():
    state = SandboxState(delivery_seconds=0)
    when = time.time() + 3600
    (message_id,) = accept(
        state, 1, scheduled_sent=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))
    )
    status = state.status(message_id)
    assert status is not None and status["deliverystatus"] == "scheduled"
    final = state.status(message_id, now=when + 1)
    assert final is not None and final["deliverystatus"] == "delivered"


def test_unknown_message_has_no_status():
    assert SandboxState().status("nope") is None


def test_duplicate_tracking_ids_are_counted():
    state = SandboxState()
    accept(state, 1, 2)
    accept(state, 2, 3)
    assert state.snapshot()["duplicate_tracking_ids"] == 1
    assert state.snapshot()["accepted"] == 4


def test_rate_limit_is_a_token_bucket_with_a_burst():
    state = SandboxState(faults=Faults(rate_limit=2, burst=3))
    # Three at once (the burst), then one token every half second.
    moments = (0.0, 0.0, 0.0, 0.1, 0.5, 0.6, 1.0, 1.5)
    assert [state.rate_limited(t) for t in moments] == [
        False,
        False,
        False,
        True,
        False,
        True,
        False,
        False,
    ]


def test_burst_defaults_to_one_and_a_half_times_the_rate():
    state = SandboxState(faults=Faults(rate_limit=10))
    assert sum(not state.rate_limited(0.0) for _ in range(20)) == 15


def test_script_comes_before_chance():
    state = SandboxState(
        faults=Faults(script=[None, "500"], error_rate=1.0, kinds=["reset"], seed=1)
    )
    assert [state.draw_fault() for _ in range(3)] == [None, "500", "reset"]


@pytest.mark.parametrize(
    "changes",
    [
        {"error_rate": 2},
        {"kinds": ["explode"]},
        {"script": ["500", "nope"]},
        {"rate_limit": 0},
        {"colour": 1},
    ],
)
def test_bad_fault_settings_are_refused(changes):
    with pytest.raises(ValueError):
        SandboxState().update_faults(changes)


def test_authorization():
    open_state = SandboxState()
    assert open_state.authorized({"x-tg-bot-key": "any"})
    assert not open_state.authorized({})
    keyed = SandboxState(api_key="k")
    assert keyed.authorized({"x-authorization-key": "k"})
    assert not keyed.authorized({"x-authorization-key": "other"})


def test_cli_flags():
    args = parse_args(
        ["--port", "0", "--rate-limit", "20", "--latency-ms", "200", "--fault-kinds", "500,reset"]
    )
    assert (args.port, args.rate_limit, args.latency_ms, args.fault_kinds) == (
        0,
        20.0,
        200.0,
        "500,reset",
    )


def test_without_uvicorn_the_sandbox_says_which_extra_to_install(monkeypatch):
    """Airflow 2 ships neither FastAPI nor uvicorn: the CLI names the extra, no traceback."""
    import sys

    from airflow_provider_cascade.sandbox.__main__ import main

    monkeypatch.delitem(sys.modules, "airflow_provider_cascade.sandbox.server", raising=False)
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # import uvicorn now raises ImportError
    with pytest.raises(SystemExit) as exit_:
        main(["--port", "0"])
    assert str(exit_.value) == (
        "cascade-sandbox: uvicorn is not installed; pip install 'airflow-provider-cascade[sandbox]'"
    )


def test_the_api_key_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("CASCADE_SANDBOX_API_KEY", "from-env-123")
    assert parse_args([]).api_key == "from-env-123"
    assert parse_args(["--api-key", "given"]).api_key == "given"
    monkeypatch.delenv("CASCADE_SANDBOX_API_KEY")
    assert parse_args([]).api_key is None


def test_help_lists_every_fault_kind_with_its_description(capsys):
    """``--help`` and the docs (docs/conf.py renders the table) read FAULT_DESCRIPTIONS."""
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    shown = capsys.readouterr().out
    assert tuple(FAULT_DESCRIPTIONS) == FAULT_KINDS
    for kind, description in FAULT_DESCRIPTIONS.items():
        assert re.search(rf"^  {kind} +{re.escape(description)}$", shown, re.MULTILINE), kind


@pytest.mark.integration
def test_the_key_stays_out_of_the_process_arguments(sandbox_server):
    assert not any(sandbox_server.api_key in arg for arg in sandbox_server.process.args)


@pytest.mark.integration
def test_the_record_holds_the_whole_message_as_sent(sandbox):
    hook = CascadeHook(max_requests_per_second=1000)
    send_messages(
        [
            make_message(1, message_type="flashcall", text=None, ttl=300),
            make_message(
                2, message_type="viber_survey", text="Happy?", survey_options=["Yes", "No"]
            ),
        ],
        sender=hook,
    )
    flash, survey = sandbox.messages()
    assert (flash["message_type"], flash["ttl"], flash["text"]) == ("flashcall", 300, None)
    assert flash["from_name"] == "Shop" and flash["to_phone"] == "+380500000001"
    assert survey["survey_options"] == ["Yes", "No"] and survey["text"] == "Happy?"
    assert survey["wire"]["surveyOptions"] == ["Yes", "No"]
