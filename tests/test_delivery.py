from __future__ import annotations

import json

import pytest

from airflow_provider_cascade.delivery import CascadeDeliveryError, DeliveryTracker
from airflow_provider_cascade.delivery.report import report as delivery_report
from airflow_provider_cascade.exceptions import CascadeError
from airflow_provider_cascade.wire import DeliveryStatus, read_status


def status(value: str, channel: str | None = None) -> dict[str, object]:
    extended = {"telegram": "undeliverable", channel: "delivered"} if channel else {}
    return {"deliverystatus": value, "extendedStatuses": extended}


def test_read_status_names_the_delivering_channel():
    delivered = read_status(status("delivered", "rcs"))
    assert (delivered.status, delivered.channel) == ("delivered", "rcs")
    assert read_status({"deliverystatus": "PROCESSING"}) == DeliveryStatus("processing")
    assert read_status({}) == DeliveryStatus("unknown")


def test_read_status_reads_cost_and_bill():
    payload = {"deliverystatus": "delivered", "cost": "0.12", "billAmount": 1.5}
    read = read_status({**payload, "billCurrency": "UAH", "extendedStatuses": "garbage"})
    assert (read.cost, read.bill_amount, read.bill_currency) == (0.12, 1.5, "UAH")
    assert read.channels is None and read.channel is None


def test_only_final_statuses_leave_pending():
    tracker = DeliveryTracker([("m1", "a"), ("m2", "b"), ("m3", None)])
    tracker.record("m1", status("processing"))
    tracker.record("m2", status("delivered", "sms"))
    tracker.record("m3", status("permanenterror"))
    assert tracker.pending == {"m1"} and not tracker.done
    tracker.record("m1", status("undeliverable"))
    assert tracker.done


def test_report_counts_statuses_and_channels():
    tracker = DeliveryTracker([("m1", "a"), ("m2", "b"), ("m3", "c")])
    tracker.record("m1", status("delivered", "viber"))
    tracker.record("m2", status("delivered", "viber"))
    tracker.record("m3", status("undeliverable"))
    report = delivery_report(tracker, inline_limit=10, results_path=None)
    assert report["by_status"] == {"delivered": 2, "undeliverable": 1}
    assert report["by_channel"] == {"viber": 2}
    assert report["messages"][2] == {
        "message_id": "m3",
        "tracking_id": "c",
        "status": "undeliverable",
        "channel": None,
    }


@pytest.mark.compat("object_storage")
def test_large_reports_are_offloaded(tmp_path):
    tracker = DeliveryTracker((f"m{n}", f"t{n}") for n in range(5))
    with pytest.raises(CascadeError, match="results_path"):
        delivery_report(tracker, inline_limit=3, results_path=None)
    report = delivery_report(tracker, inline_limit=3, results_path=f"file://{tmp_path}/r.jsonl")
    assert report["messages"] is None
    lines = (tmp_path / "r.jsonl").read_text().splitlines()
    assert [json.loads(line)["status"] for line in lines] == ["unknown"] * 5


@pytest.mark.parametrize(
    ("success_when", "fail_on_undeliverable", "fails"),
    [("all_final", False, False), ("all_final", True, True), ("all_delivered", False, True)],
)
def test_undeliverable_fails_only_when_asked(success_when, fail_on_undeliverable, fails):
    tracker = DeliveryTracker([("m1", "order-1"), ("m2", "order-2")])
    tracker.record("m1", status("delivered", "sms"))
    tracker.record("m2", status("undeliverable"))
    if fails:
        with pytest.raises(CascadeDeliveryError, match=r"1 of 2 .*order-2 \(undeliverable\)"):
            tracker.check(success_when, fail_on_undeliverable)
    else:
        tracker.check(success_when, fail_on_undeliverable)


def test_tracker_survives_the_trigger_event_round_trip():
    tracker = DeliveryTracker([("m1", "a"), ("m2", None)])
    tracker.record("m1", status("delivered", "telegram"))
    again = DeliveryTracker.from_json(json.loads(json.dumps(tracker.to_json())))
    assert again.pending == {"m2"}
    assert (again.statuses["m1"].status, again.statuses["m1"].channel) == ("delivered", "telegram")
    assert again.tracking_ids == {"m1": "a", "m2": None}


def test_the_report_sums_cost_and_bill_per_currency():
    tracker = DeliveryTracker([("m1", "a"), ("m2", "b"), ("m3", "c")])
    tracker.record(
        "m1",
        {"deliverystatus": "delivered", "cost": 0.2, "billAmount": 0.25, "billCurrency": "UAH"},
    )
    tracker.record(
        "m2",
        {"deliverystatus": "delivered", "cost": "0.3", "billAmount": 0.35, "billCurrency": "UAH"},
    )
    tracker.record("m3", {"deliverystatus": "undeliverable", "cost": 0.01})
    report = delivery_report(tracker, 10, None)
    assert report["cost"] == {
        "UAH": {"cost": 0.5, "bill_amount": 0.6},
        "unspecified": {"cost": 0.01, "bill_amount": 0.0},
    }
