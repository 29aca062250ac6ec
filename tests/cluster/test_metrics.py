"""The provider's metrics as a deployment receives them: statsd on for every process of
the harness (tests/cluster/conftest.py), a send, a deferred wait and replies, and what
arrives on the statsd port, read by a UDP listener of the test's own."""

from __future__ import annotations

import re
import socket
import threading
import time

import pytest
import requests

from airflow_provider_cascade.metrics import METRICS
from airflow_provider_cascade.sandbox.callbacks import callback_body
from tests.airflow_runs import PHONE_SHAPED
from tests.cluster.conftest import REPLIES_TOKEN, STATSD_PORT

pytestmark = [pytest.mark.integration, pytest.mark.compat("cluster")]

RECEIVER = "http://127.0.0.1:28080/cascade/replies/cascade_replies"
#: statsd lines as Airflow's client writes them with [metrics] statsd_influxdb_enabled:
#: name,tag=value,...:value|type.
LINE = re.compile(
    r"^(?P<name>[\w.\-]+)(?P<tags>(?:,[^,:=]+=[^,:]*)*):(?P<value>[\d.\-]+)\|(?P<type>\w+)"
)


class Listener:
    """Every statsd line sent to ``STATSD_PORT`` while it listens."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", STATSD_PORT))
        self._socket.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                packet = self._socket.recv(65_535)
            except TimeoutError:
                continue
            self.lines += packet.decode(errors="replace").splitlines()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()

    def ours(self) -> list[dict[str, str]]:
        """The provider's lines, parsed: name (without Airflow's prefix), value, tags."""
        found = []
        for line in self.lines:
            match = LINE.match(line)
            if match and ".cascade." in f".{match['name']}":
                name = match["name"].split(".", 1)[1]  # airflow.cascade.x -> cascade.x
                tags = dict(t.split("=", 1) for t in match["tags"].split(",") if "=" in t)
                found.append({"name": name, "value": match["value"], **tags})
        return found


def test_a_send_a_wait_and_replies_emit_their_metrics_without_a_phone(cluster):
    listener = Listener()
    try:
        cluster.sandbox.clear()
        cluster.sandbox.set_faults(error_rate=0.0, latency_ms=0, script=[], rate_limit=None)
        run_id = cluster.trigger("cluster_deferred_delivery")
        assert cluster.wait("cluster_deferred_delivery", run_id) == "success"
        stored = requests.post(
            RECEIVER,
            params={"token": REPLIES_TOKEN},
            json=callback_body("380935550077", "metrics test reply"),
            timeout=30,
        )
        assert stored.status_code == 200, stored.text
        refused = requests.post(RECEIVER, params={"token": "wrong"}, json={}, timeout=30)
        assert refused.status_code == 404
        time.sleep(3)  # statsd is fire-and-forget: the last packets in flight
    finally:
        listener.close()
    ours = listener.ours()
    names = {m["name"] for m in ours}
    assert names <= set(METRICS), names - set(METRICS)

    def total(name: str, **tags: str) -> float:
        return sum(
            float(m["value"])
            for m in ours
            if m["name"] == name and all(m.get(k) == v for k, v in tags.items())
        )

    sent = {"dag_id": "cluster_deferred_delivery", "task_id": "send"}
    assert total("cascade.send.sent", **sent) == 20
    assert total("cascade.status.lookups", conn_id="cascade_default") >= 20
    waited = {"dag_id": "cluster_deferred_delivery", "task_id": "wait_for_delivery"}
    assert total("cascade.delivery.final", **waited) == 20
    shares = [m for m in ours if m["name"] == "cascade.delivery.share"]
    assert shares and abs(sum(float(m["value"]) for m in shares) - 1.0) < 1e-6
    assert total("cascade.replies.received", conn_id="cascade_replies") == 1
    assert total("cascade.replies.refused", http_status="404") == 1
    # No phone, no text, no tracking id in any line of the provider's.
    provider_lines = [line for line in listener.lines if "cascade." in line]
    assert not [line for line in provider_lines if PHONE_SHAPED.search(line)]
    assert not [line for line in provider_lines if "metrics test reply" in line]
