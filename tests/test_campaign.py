"""The one send loop, :class:`~airflow_provider_cascade.send.campaign.Campaign`, without Airflow:
batches, ledger, concurrency, validation modes, offload, write-back (the real runs are in
tests/integration/)."""

from __future__ import annotations

import json
import logging
import time

import pytest

from airflow_provider_cascade.exceptions import (
    CascadeBatchInDoubtError,
    CascadeError,
    CascadeGuardrailError,
    CascadeValidationError,
)
from airflow_provider_cascade.results import CascadeSendResult
from airflow_provider_cascade.send.campaign import Campaign, CampaignSettings
from airflow_provider_cascade.send.guardrails import CascadeGuardrails
from airflow_provider_cascade.send.ledger import PartStore, SendLedger
from airflow_provider_cascade.send.sources import ListSource, RawBatch
from tests.conftest import make_message
from tests.fakes import BatchesSource, FakeSender, MemoryStore, checked, numbered

log = logging.getLogger("test")


#: The arguments of CascadeGuardrails; the others are CampaignSettings'.
GUARDRAILS = {"max_messages", "max_reject_ratio", "dedupe", "suppress", "quiet_hours"}


def campaign(sender: FakeSender, store: MemoryStore | None = None, **settings) -> Campaign:
    """A campaign with its ledger and guardrails as the operator builds them (parts under
    results_path)."""
    settings.setdefault("max_in_flight", 1)  # one at a time: the order of requests is fixed
    guardrails = CascadeGuardrails(**{k: settings.pop(k) for k in GUARDRAILS & settings.keys()})
    guardrails.check(on_invalid=settings.get("on_invalid", "fail"), sql_conn_id=None)
    path = settings.get("results_path")
    ledger = SendLedger(store, parts=PartStore(path) if path and store is not None else None)
    return Campaign(
        sender, ledger, CampaignSettings(**settings), log, guardrails=guardrails.steps(log)
    )


class TestCampaign:
    def test_sends_every_batch_and_keeps_order(self):
        hook = FakeSender()
        result = campaign(hook, batch_size=2).run(numbered(5))
        assert (result.sent, result.batches) == (5, 3)
        assert [m["tracking_id"] for m in result.messages] == [f"order-{n}" for n in range(5)]

    def test_defaults_and_recommended_ttl_fill_gaps(self):
        hook = FakeSender()
        items = [{"tracking_id": "a", "to_phone": "+380501234567", "message_type": "flashcall"}]
        run = campaign(hook, defaults={"from_name": "App"})
        batch, _ = run.checks.check(RawBatch("message", 1, items))
        (message,) = batch.messages
        assert message.from_name == "App" and message.ttl == 300

    def test_retry_skips_what_an_earlier_try_sent(self):
        store = MemoryStore()
        first = FakeSender(fail={"order-2": CascadeError("boom")})
        with pytest.raises(CascadeError):
            campaign(first, store, batch_size=2).run(numbered(6))
        second = FakeSender()
        result = campaign(second, store, batch_size=2).run(numbered(6))
        assert second.batches == [["order-2", "order-3"], ["order-4", "order-5"]]
        assert result.sent == 6
        assert result.messages[0] == {"message_id": "id-order-0", "tracking_id": "order-0"}

    def test_requests_overlap_up_to_max_in_flight_and_keep_order(self):
        hook = FakeSender(delay=0.05)
        started = time.monotonic()
        result = campaign(hook, max_in_flight=4, batch_size=1).run(numbered(8))
        assert time.monotonic() - started < 8 * 0.05  # not one after another
        assert [m["tracking_id"] for m in result.messages] == [f"order-{n}" for n in range(8)]

    def test_a_failure_waits_for_the_batches_in_flight_and_records_them(self):
        store = MemoryStore()
        hook = FakeSender(fail={"order-1": CascadeError("boom")}, delay=0.02)
        with pytest.raises(CascadeError, match="boom"):
            campaign(hook, store, max_in_flight=4, batch_size=1).run(numbered(4))
        retry = FakeSender()
        campaign(retry, store, batch_size=1).run(numbered(4))
        # Batches 0, 2 and 3 were in flight with batch 1 and accepted: only 1 goes again.
        assert retry.batches == [["order-1"]]

    def test_a_batch_left_in_flight_is_resent_or_skipped(self):
        store = MemoryStore()
        ledger = SendLedger(store)
        number = ledger.begin()
        # Durable before the request, as at-most-once requires; then the worker is killed.
        ledger.wait(ledger.mark_sending(number, [m.tracking_id for m in checked(0, 1)]))
        ledger.close()

        resend = FakeSender()
        assert campaign(resend, MemoryStore(store), batch_size=2).run(numbered(2)).sent == 2
        assert resend.batches == [["order-0", "order-1"]]

        skip = FakeSender()
        result = campaign(skip, MemoryStore(store), on_uncertain="skip", batch_size=2).run(
            numbered(2)
        )
        assert skip.batches == [] and result.in_doubt == ["order-0", "order-1"] and result.sent == 0

    def test_in_doubt_with_resend_fails_the_try_then_the_retry_resends(self):
        store = MemoryStore()
        doubt = CascadeBatchInDoubtError("HTTP 500", tracking_ids=["order-2", "order-3"])
        with pytest.raises(CascadeBatchInDoubtError, match="HTTP 500"):
            campaign(FakeSender(fail={"order-2": doubt}), store, batch_size=2).run(numbered(4))
        retry = FakeSender()
        campaign(retry, store, batch_size=2).run(numbered(4))
        assert retry.batches == [["order-2", "order-3"]]

    def test_in_doubt_with_skip_goes_on(self):
        doubt = CascadeBatchInDoubtError("reset", tracking_ids=["order-2", "order-3"])
        hook = FakeSender(fail={"order-2": doubt})
        result = campaign(hook, on_uncertain="skip", batch_size=2).run(numbered(6))
        assert result.in_doubt == ["order-2", "order-3"] and result.sent == 4

    def test_duplicates_across_batches_are_caught(self):
        items = [make_message(1), make_message(2), make_message(1)]
        with pytest.raises(CascadeValidationError, match="again at message 3"):
            campaign(FakeSender(), batch_size=2).run(ListSource(items))

    def test_skip_lists_rejected_messages(self):
        items = [make_message(1), make_message(2, ttl=-1), make_message(3)]
        result = campaign(FakeSender(), on_invalid="skip").run(ListSource(items))
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
            campaign(FakeSender(), xcom_inline_limit=3, batch_size=2).run(numbered(6))

    @pytest.mark.compat("object_storage")
    def test_large_results_are_offloaded_and_load_reads_them(self, tmp_path):
        path = f"file://{tmp_path}/out/result.jsonl"
        result = campaign(FakeSender(), xcom_inline_limit=3, results_path=path, batch_size=2).run(
            numbered(6)
        )
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
            FakeSender(), SendLedger(None), CampaignSettings(), log, write_back=rows.extend
        )
        run.run(BatchesSource([RawBatch("row", 1, items)]))
        assert (
            rows[0]["tracking_id"] == 7
            and rows[0]["message_id"] == "id-7"
            and rows[0]["sent_at"].endswith("Z")
        )

    def test_progress_is_logged(self, caplog):
        with caplog.at_level(logging.INFO):
            settings = CampaignSettings(progress_interval=0, batch_size=2)
            run = Campaign(FakeSender(), SendLedger(None), settings, log)
            run.run(numbered(4))
        assert "Sent 2/4 messages" in caplog.text and "ETA" in caplog.text


class TestStateStoreBudget:
    """Airflow sizes the task state store for coordination state: 64 KB a value."""

    def test_100_000_messages_with_results_path(self, tmp_path):
        store = MemoryStore()
        path = f"file://{tmp_path}/result.jsonl"
        run = campaign(FakeSender(), store, results_path=path, max_in_flight=8)
        result = run.run(numbered(100_000))
        sizes = [len(json.dumps(value)) for value in store.values()]
        assert result.sent == 100_000 and result.results_path == path
        assert max(sizes) < 10_000 and sum(sizes) < 20_000  # pointers and counts
        assert not (tmp_path / "result.jsonl.parts").exists()  # removed after the results file

    def test_10_000_messages_inline(self):
        store = MemoryStore()
        result = campaign(FakeSender(uuids=True), store).run(numbered(10_000))
        sizes = [len(json.dumps(value)) for value in store.values()]
        assert result.sent == 10_000
        # 32 bytes a message (a 128-bit digest of the tracking id, the UUID), base64
        assert max(sizes) <= 60_000 and sum(sizes) < 450_000

    def test_a_retry_rebuilds_the_same_result_from_parts(self, tmp_path):
        store = MemoryStore()
        path = f"file://{tmp_path}/result.jsonl"
        first = FakeSender(fail={"order-6000": CascadeError("boom")})
        with pytest.raises(CascadeError):
            campaign(first, store, results_path=path, xcom_inline_limit=100).run(numbered(10_000))
        retry = FakeSender()
        result = campaign(retry, store, results_path=path, xcom_inline_limit=100).run(
            numbered(10_000)
        )
        assert retry.batches[0][0] == "order-6000" and len(retry.batches) == 4
        loaded = CascadeSendResult.load(result.to_xcom())
        assert [m["tracking_id"] for m in loaded.messages] == [f"order-{n}" for n in range(10_000)]
        assert loaded.message_ids == [f"id-order-{n}" for n in range(10_000)]

    @pytest.mark.compat("object_storage")
    def test_a_retry_after_a_finished_send_reads_its_results_file_once(self, tmp_path, monkeypatch):
        """Its parts are gone (removed once the results file was written): the retry reads
        the file once, not once per batch (a million-message retry would read it 1,000
        times), and sends nothing again."""
        store = MemoryStore()
        path = f"file://{tmp_path}/result.jsonl"
        campaign(FakeSender(), store, results_path=path, xcom_inline_limit=100).run(numbered(5_000))
        reads = []
        original = CascadeSendResult.iter_messages

        def counted(result):
            reads.append(result.results_path)
            return original(result)

        monkeypatch.setattr(CascadeSendResult, "iter_messages", counted)
        retry = FakeSender()
        result = campaign(retry, store, results_path=path, xcom_inline_limit=100).run(
            numbered(5_000)
        )
        assert reads == [path] and retry.batches == [] and result.sent == 5_000


class TestTheCollector:
    def test_a_send_freezes_only_when_nothing_is_frozen_and_thaws_what_it_froze(self):
        import gc

        seen = []

        class Watching(FakeSender):
            def send_batch(self, batch, route):
                seen.append(gc.get_freeze_count() > 0)
                return super().send_batch(batch, route)

        frozen_by_others = gc.get_freeze_count() > 0
        gc.unfreeze()  # as in a fresh worker: nothing frozen yet
        try:
            campaign(Watching()).run(numbered(3))
            assert seen == [True] and gc.get_freeze_count() == 0
        finally:
            if frozen_by_others:
                gc.freeze()

    def test_a_host_that_froze_objects_is_left_alone(self):
        import gc

        gc.freeze()
        try:
            before = gc.get_freeze_count()
            campaign(FakeSender()).run(numbered(3))
            # Neither thawed nor frozen more (a frozen object may die of its refcount).
            assert before - 100 <= gc.get_freeze_count() <= before
        finally:
            gc.unfreeze()


class TestGuardrails:
    def test_more_messages_than_the_cap_sends_nothing(self):
        sender = FakeSender()
        with pytest.raises(
            CascadeGuardrailError, match="holds 12 messages, more than max_messages=10"
        ):
            campaign(sender, max_messages=10).run(numbered(12))
        assert sender.batches == []
        assert campaign(FakeSender(), max_messages=12).run(numbered(12)).counted == 12

    def test_a_dry_run_reports_the_count_and_does_not_fail(self):
        result = campaign(FakeSender(), max_messages=10, dry_run=True).run(numbered(12))
        assert (result.counted, result.sent) == (12, 12)

    def test_the_rejection_brake_stops_past_the_ratio_after_100(self):
        items = [
            make_message(n, to_phone="bad") if n % 4 == 0 else make_message(n) for n in range(400)
        ]
        sender = FakeSender()
        run = campaign(sender, on_invalid="skip", max_reject_ratio=0.2, batch_size=50)
        with pytest.raises(
            CascadeGuardrailError,
            match=r"25 of the first 100 .* \(25\.0%\), more than max_reject_ratio=20\.0%: "
            r"stopping; the batches already sent stay sent and recorded, and a retry does not "
            r"send them again\. First problem: ",
        ):
            run.run(ListSource(items))
        # The first batch (50 checked, under 100) went out; the brake held the rest.
        assert [len(batch) for batch in sender.batches] == [37]

    def test_under_the_ratio_the_send_goes_on(self):
        items = [
            make_message(n, to_phone="bad") if n % 10 == 0 else make_message(n) for n in range(300)
        ]
        result = campaign(FakeSender(), on_invalid="skip", max_reject_ratio=0.2).run(
            ListSource(items)
        )
        assert (result.sent, len(result.rejected)) == (270, 30)

    def test_the_brake_needs_skip(self):
        with pytest.raises(ValueError, match="max_reject_ratio= limits what on_invalid='skip'"):
            campaign(FakeSender(), max_reject_ratio=0.1)


class TestDedupe:
    def test_one_message_per_number_across_batches(self):
        items = [make_message(n, to_phone=f"+38050000000{n % 3}") for n in range(7)]
        sender = FakeSender()
        result = campaign(sender, dedupe="phone", batch_size=2).run(ListSource(items))
        assert [t for batch in sender.batches for t in batch] == ["order-0", "order-1", "order-2"]
        assert result.duplicates == [
            {"tracking_id": f"order-{n}", "duplicate_of": f"order-{n % 3}"} for n in range(3, 7)
        ]

    def test_per_number_and_type(self):
        items = [
            make_message(1),
            make_message(2, to_phone=make_message(1)["to_phone"], message_type="promo"),
            make_message(3, to_phone=make_message(1)["to_phone"]),
        ]
        result = campaign(FakeSender(), dedupe="phone_and_type").run(ListSource(items))
        assert result.sent == 2
        assert result.duplicates == [{"tracking_id": "order-3", "duplicate_of": "order-1"}]

    def test_a_retry_finds_the_same_duplicates_and_sends_nothing_twice(self):
        store = MemoryStore()
        items = [make_message(n, to_phone=f"+38050000000{n % 2}") for n in range(6)]
        failing = FakeSender(fail={"order-1": CascadeError("boom")})
        with pytest.raises(CascadeError):
            campaign(failing, store, dedupe="phone", batch_size=1).run(ListSource(items))
        retry = FakeSender()
        result = campaign(retry, store, dedupe="phone", batch_size=1).run(ListSource(items))
        assert retry.batches == [["order-1"]] and result.sent == 2
        assert [d["tracking_id"] for d in result.duplicates] == [
            "order-2",
            "order-3",
            "order-4",
            "order-5",
        ]
