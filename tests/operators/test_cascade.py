"""CascadeSendOperator and the campaign loop without an Airflow run (the real runs are in
tests/integration/test_operator_runs.py)."""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest

from airflow_provider_cascade.campaign import Campaign, CampaignSettings
from airflow_provider_cascade.exceptions import (
    CascadeBatchInDoubtError,
    CascadeError,
    CascadeValidationError,
)
from airflow_provider_cascade.hooks.cascade import CascadeHook
from airflow_provider_cascade.ledger import SendLedger
from airflow_provider_cascade.messages import Route, SentMessage
from airflow_provider_cascade.operators.cascade import CascadeSendOperator, masked_preview
from airflow_provider_cascade.results import CascadeSendResult
from airflow_provider_cascade.sources import RawBatch, as_message_list, list_batches
from tests.conftest import make_message
from tests.test_ledger import MemoryStore

log = logging.getLogger("test")


class FakeHook:
    """Accepts every batch, or fails the batches (by their first id) listed in ``fail``."""

    def __init__(self, fail: dict[str, Exception] | None = None, delay: float = 0.0):
        self.fail = fail or {}
        self.delay = delay
        self.batches: list[list[str]] = []
        self.lock = threading.Lock()

    def send_batch(self, batch, route):
        with self.lock:
            self.batches.append([m.tracking_id for m in batch])
        time.sleep(self.delay)
        if batch[0].tracking_id in self.fail:
            raise self.fail[batch[0].tracking_id]
        return [SentMessage(f"id-{m.tracking_id}", m.tracking_id) for m in batch]


def campaign(hook, store=None, **settings) -> Campaign:
    settings.setdefault("defaults", {})
    settings.setdefault("max_in_flight", 1)  # one at a time: the order of requests is fixed
    return Campaign(hook, SendLedger(store), CampaignSettings(**settings), log)  # type: ignore[arg-type]


def raw_batches(count: int, size: int) -> list[RawBatch]:
    return list(list_batches([make_message(n) for n in range(count)], size))


class TestCampaign:
    def test_sends_every_batch_and_keeps_order(self):
        hook = FakeHook()
        result = campaign(hook).run(raw_batches(5, 2))
        assert (result.sent, result.batches) == (5, 3)
        assert [m["tracking_id"] for m in result.messages] == [f"order-{n}" for n in range(5)]

    def test_defaults_and_recommended_ttl_fill_gaps(self):
        hook = FakeHook()
        items = [{"tracking_id": "a", "to_phone": "+380501234567", "message_type": "flashcall"}]
        run = campaign(hook, defaults={"from_name": "App"})
        (message,) = run.check(RawBatch("message", 1, items))
        assert message.from_name == "App" and message.ttl == 300

    def test_retry_skips_what_an_earlier_try_sent(self):
        store = MemoryStore()
        first = FakeHook(fail={"order-2": CascadeError("boom")})
        with pytest.raises(CascadeError):
            campaign(first, store).run(raw_batches(6, 2))
        second = FakeHook()
        result = campaign(second, store).run(raw_batches(6, 2))
        assert second.batches == [["order-2", "order-3"], ["order-4", "order-5"]]
        assert result.sent == 6
        assert result.messages[0] == {"message_id": "id-order-0", "tracking_id": "order-0"}

    def test_requests_overlap_up_to_max_in_flight_and_keep_order(self):
        hook = FakeHook(delay=0.05)
        started = time.monotonic()
        result = campaign(hook, max_in_flight=4).run(raw_batches(8, 1))
        assert time.monotonic() - started < 8 * 0.05  # not one after another
        assert [m["tracking_id"] for m in result.messages] == [f"order-{n}" for n in range(8)]

    def test_a_failure_waits_for_the_batches_in_flight_and_records_them(self):
        store = MemoryStore()
        hook = FakeHook(fail={"order-1": CascadeError("boom")}, delay=0.02)
        with pytest.raises(CascadeError, match="boom"):
            campaign(hook, store, max_in_flight=4).run(raw_batches(4, 1))
        retry = FakeHook()
        campaign(retry, store).run(raw_batches(4, 1))
        # Batches 0, 2 and 3 were in flight with batch 1 and accepted: only 1 goes again.
        assert retry.batches == [["order-1"]]

    def test_a_batch_left_in_flight_is_resent_or_skipped(self):
        store = MemoryStore()
        ledger = SendLedger(store)
        ledger.begin(campaign(FakeHook()).check(raw_batches(2, 2)[0]))
        ledger.flush()  # as before every request; then the worker is killed mid-request

        resend = FakeHook()
        assert campaign(resend, MemoryStore(store)).run(raw_batches(2, 2)).sent == 2
        assert resend.batches == [["order-0", "order-1"]]

        skip = FakeHook()
        result = campaign(skip, MemoryStore(store), on_uncertain="skip").run(raw_batches(2, 2))
        assert skip.batches == [] and result.in_doubt == ["order-0", "order-1"] and result.sent == 0

    def test_in_doubt_with_resend_fails_the_try_then_the_retry_resends(self):
        store = MemoryStore()
        doubt = CascadeBatchInDoubtError("HTTP 500", tracking_ids=["order-2", "order-3"])
        with pytest.raises(CascadeBatchInDoubtError, match="a retry of this task sends it again"):
            campaign(FakeHook(fail={"order-2": doubt}), store).run(raw_batches(4, 2))
        retry = FakeHook()
        campaign(retry, store).run(raw_batches(4, 2))
        assert retry.batches == [["order-2", "order-3"]]

    def test_in_doubt_with_skip_goes_on(self):
        doubt = CascadeBatchInDoubtError("reset", tracking_ids=["order-2", "order-3"])
        hook = FakeHook(fail={"order-2": doubt})
        result = campaign(hook, on_uncertain="skip").run(raw_batches(6, 2))
        assert result.in_doubt == ["order-2", "order-3"] and result.sent == 4

    def test_duplicates_across_batches_are_caught(self):
        items = [make_message(1), make_message(2), make_message(1)]
        with pytest.raises(CascadeValidationError, match="again at message 3"):
            campaign(FakeHook()).run(list_batches(items, 2))

    def test_skip_lists_rejected_messages(self):
        items = [make_message(1), make_message(2, ttl=-1), make_message(3)]
        result = campaign(FakeHook(), on_invalid="skip").run(list_batches(items, 10))
        assert result.sent == 2
        assert result.rejected == [
            {
                "ref": "order-2",
                "field": "ttl",
                "rule": "must be positive, not -1",
                "code": "INVALID_TTL",
            }
        ]

    def test_more_than_the_inline_limit_needs_results_path(self):
        with pytest.raises(CascadeError, match="set results_path"):
            campaign(FakeHook(), xcom_inline_limit=3).run(raw_batches(6, 2))

    @pytest.mark.compat("object_storage")
    def test_large_results_are_offloaded_and_load_reads_them(self, tmp_path):
        path = f"file://{tmp_path}/out/result.jsonl"
        result = campaign(FakeHook(), xcom_inline_limit=3, results_path=path).run(raw_batches(6, 2))
        value = result.to_xcom()
        assert value["messages"] is None and value["results_path"] == path
        assert len((tmp_path / "out" / "result.jsonl").read_text().splitlines()) == 6
        loaded = CascadeSendResult.load(json.loads(json.dumps(value)))
        assert loaded.message_ids == [f"id-order-{n}" for n in range(6)]

    def test_write_back_gets_the_source_key_unchanged(self):
        rows = []
        items = [
            {"tracking_id": 7, **{k: v for k, v in make_message(7).items() if k != "tracking_id"}}
        ]
        run = Campaign(
            FakeHook(), SendLedger(None), CampaignSettings(), log, write_back=rows.extend
        )  # type: ignore[arg-type]
        run.run([RawBatch("row", 1, items)])
        assert (
            rows[0]["tracking_id"] == 7
            and rows[0]["message_id"] == "id-7"
            and rows[0]["sent_at"].endswith("Z")
        )

    def test_progress_is_logged(self, caplog):
        with caplog.at_level(logging.INFO):
            run = Campaign(
                FakeHook(), SendLedger(None), CampaignSettings(progress_interval=0), log, total=4
            )  # type: ignore[arg-type]
            run.run(raw_batches(4, 2))
        assert "Sent 2/4 messages" in caplog.text and "ETA" in caplog.text


class TestArguments:
    @pytest.mark.parametrize(
        ("kwargs", "words"),
        [
            ({}, "exactly one source"),
            ({"messages": [], "sql": "SELECT 1", "sql_conn_id": "db"}, "exactly one source"),
            ({"sql": "SELECT 1"}, "needs sql_conn_id"),
            ({"messages": [], "mark_sent_sql": "UPDATE"}, "give sql= too"),
            ({"messages": [], "batch_size": 1001}, "batch_size"),
            ({"messages": [], "on_invalid": "ignore"}, "on_invalid"),
            ({"messages": [], "on_uncertain": "maybe"}, "on_uncertain"),
            ({"messages": [], "route": "fastest"}, "fastest"),
        ],
    )
    def test_misuse_is_refused_at_parse_time(self, kwargs, words):
        with pytest.raises(ValueError, match=words):
            CascadeSendOperator(task_id="t", **kwargs)

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
        with pytest.raises(CascadeValidationError, match="order-9: toPhone"):
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
        max_requests_per_second=5,
        hook_params={"max_retries": 2},
    )

    class TI:
        def xcom_push(self, key, value):
            created[key] = value

    operator.execute({"ti": TI(), "task_state_store": MemoryStore()})
    assert created == {
        "max_requests_per_second": 5,
        "resend_uncertain": False,
        "max_retries": 2,
        "message_ids": [],
    }
    assert operator.route == Route.STANDARD
