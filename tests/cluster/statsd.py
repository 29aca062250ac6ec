"""A statsd listener of the tests' own on ``STATSD_PORT``, where every process of the
harness sends its metrics (tests/cluster/conftest.py)."""

from __future__ import annotations

import re
import socket
import threading

from tests.cluster.conftest import STATSD_PORT

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


def provider_metrics(lines: list[str]) -> list[dict[str, str]]:
    """The provider's lines, parsed: name (without Airflow's prefix), value, tags."""
    found = []
    for line in lines:
        match = LINE.match(line)
        if match and ".cascade." in f".{match['name']}":
            name = match["name"].split(".", 1)[1]  # airflow.cascade.x -> cascade.x
            tags = dict(t.split("=", 1) for t in match["tags"].split(",") if "=" in t)
            found.append({"name": name, "value": match["value"], **tags})
    return found
