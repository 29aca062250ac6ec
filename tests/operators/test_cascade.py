"""CascadeSendOperator without an Airflow run: arguments, the messages argument, the
preview, the hook it builds (the send loop is tests/test_campaign.py; the real runs are in
tests/integration/test_operator_runs.py)."""

from __future__ import annotations

import json

import pytest

from airflow_provider_cascade.exceptions import CascadeValidationError
from airflow_provider_cascade.hooks.cascade import CascadeHook
from airflow_provider_cascade.messages import Route
from airflow_provider_cascade.operators.cascade import CascadeSendOperator
from airflow_provider_cascade.send.guardrails import CascadeGuardrails, QuietHours, Suppression
from airflow_provider_cascade.send.options import CascadeRequests, CascadeResults
from airflow_provider_cascade.send.preview import masked_preview
from airflow_provider_cascade.send.sources import as_message_list
from tests.conftest import make_message
from tests.fakes import MemoryStore


class TestArguments:
    @pytest.mark.parametrize(
        ("kwargs", "words"),
        [
            (lambda: {}, "exactly one source"),
            (
                lambda: {"messages": [], "sql": "SELECT 1", "sql_conn_id": "db"},
                "exactly one source",
            ),
            (lambda: {"sql": "SELECT 1"}, "needs sql_conn_id"),
            (lambda: {"messages": [], "mark_sent_sql": "UPDATE"}, "give sql= too"),
            (lambda: {"messages": [], "requests": CascadeRequests(batch_size=1001)}, "batch_size"),
            (lambda: {"messages": [], "on_invalid": "ignore"}, "on_invalid"),
            (lambda: {"messages": [], "on_uncertain": "maybe"}, "on_uncertain"),
            (lambda: {"messages": [], "route": "fastest"}, "fastest"),
            (
                lambda: {"messages": [], "requests": CascadeRequests(max_in_flight=0)},
                "max_in_flight must be 1 to 32",
            ),
            (
                lambda: {"messages": [], "results": CascadeResults(xcom_inline_limit=-1)},
                "xcom_inline_limit",
            ),
            (
                lambda: {"messages": [], "guardrails": CascadeGuardrails(max_reject_ratio=0.1)},
                "max_reject_ratio= limits what on_invalid='skip' leaves out",
            ),
            (
                lambda: {
                    "messages": [],
                    "guardrails": CascadeGuardrails(suppress=Suppression(sql="S")),
                },
                r"Suppression\(sql=...\) needs conn_id=",
            ),
        ],
    )
    def test_misuse_is_refused_at_parse_time(self, kwargs, words):
        with pytest.raises(ValueError, match=words):
            CascadeSendOperator(task_id="t", **kwargs())

    @pytest.mark.parametrize(
        ("kwargs", "words"),
        [
            ({"dedupe": "phone"}, r"dedupe= \(now guardrails=CascadeGuardrails\(dedupe=...\)\)"),
            ({"hook_params": {"timeout": 1}}, r"now requests=CascadeRequests\("),
            ({"results_path": "file:///x"}, r"now results=CascadeResults\(path=...\)"),
            ({"guardrails": {"dedupe": "phone"}}, "guardrails= takes a CascadeGuardrails"),
        ],
    )
    def test_the_flat_arguments_of_0_2_name_their_group(self, kwargs, words):
        with pytest.raises(TypeError, match=words):
            CascadeSendOperator(task_id="t", messages=[], **kwargs)

    @pytest.mark.parametrize(
        ("make", "words"),
        [
            (lambda: CascadeGuardrails(dedup="phone"), r"dedup= \(did you mean dedupe=\?\)"),
            (lambda: CascadeGuardrails(max_mesages=3), r"did you mean max_messages="),
            (lambda: QuietHours("21:00", "08:00", polcy="skip"), r"did you mean policy="),
            (lambda: Suppression(sq="SELECT 1"), r"did you mean sql="),
            (lambda: CascadeRequests(rate=5), r"did you mean max_requests_per_second="),
            (lambda: CascadeResults(results_path="x"), r"did you mean path="),
        ],
    )
    def test_a_misspelled_group_field_names_the_nearest(self, make, words):
        with pytest.raises(TypeError, match=words):
            make()

    def test_templated_fields_include_both_sources(self):
        assert {"messages", "sql", "scheduled_sent", "mark_sent_sql"} <= set(
            CascadeSendOperator.template_fields
        )
        assert ".sql" in CascadeSendOperator.template_ext


class TestMessagesArgument:
    def test_a_json_text_becomes_a_list(self):
        assert as_message_list(json.dumps([make_message(1)])) == [make_message(1)]

    @pytest.mark.parametrize("value", [make_message(1), "not json", "{}", 42, b"[]"])
    def test_anything_else_is_refused(self, value):
        with pytest.raises(CascadeValidationError, match="messages"):
            as_message_list(value)

    def test_an_invalid_list_fails_whole_before_any_request(self, monkeypatch, requests_mock):
        monkeypatch.setenv(
            "AIRFLOW_CONN_CASCADE_DEFAULT",
            json.dumps({"conn_type": "cascade", "host": "http://x.test", "password": "k"}),
        )
        operator = CascadeSendOperator(
            task_id="t",
            messages=[make_message(n) for n in range(1500)] + [make_message(9, to_phone="bad")],
        )
        with pytest.raises(CascadeValidationError, match="order-9: to_phone"):
            operator.execute({"ti": None})
        assert not requests_mock.called


def test_masked_preview_hides_phones_and_text():
    preview = masked_preview([make_message(n) for n in range(25)])
    assert len(preview) == 21 and preview[-1] == "... and 5 more"
    assert preview[1]["to_phone"] == "+380*****0001" and preview[1]["text"] == "<17 characters>"
    assert masked_preview('[{"to_phone": "+380501234567"}]') == "<31 characters>"


def test_hook_is_paced_and_told_about_uncertain_batches(monkeypatch):
    created = {}

    class SpyHook(CascadeHook):
        def __init__(self, *args, **kwargs):
            created.update(kwargs)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr("airflow_provider_cascade.hooks.cascade.CascadeHook", SpyHook)
    operator = CascadeSendOperator(
        task_id="t",
        messages=[],
        on_uncertain="skip",
        requests=CascadeRequests(max_requests_per_second=5, max_retries=2),
    )

    class TI:
        def xcom_push(self, key, value):
            created[key] = value

    operator.execute({"ti": TI(), "task_state_store": MemoryStore()})
    assert (
        created.items()
        >= {
            "max_requests_per_second": 5,
            "resend_uncertain": False,
            "budget_share": 1,  # an explicit rate is taken as it is
            "max_retries": 2,
            "message_ids": [],
        }.items()
    )
    assert operator.settings.route == Route.STANDARD


def test_a_misnamed_key_is_counted_never_shown():
    """A message with ``phone`` for ``to_phone`` and ``message`` for ``text`` was stored in
    full in the rendered fields; only known fields are shown now, and the rest counted."""
    preview = masked_preview(
        [{"tracking_id": "o-1", "phone": "+380501234561", "message": "Order 1 confirmed"}]
    )
    assert preview == [{"tracking_id": "o-1", "<other keys>": 2}]
    assert masked_preview({"toPhone": "+380501234561"}) == [{"toPhone": "+380*****4561"}]


def test_suppress_phones_render_as_a_count():
    suppression = Suppression(phones=["+380501234561", "+380501234562"])
    assert suppression.serialize()["phones"] == "<2 number(s)>"
    assert "+380501234561" not in repr(CascadeGuardrails(suppress=suppression))
    assert "+380501234561" not in str(CascadeGuardrails(suppress=suppression).serialize())
