"""What scripts/cluster.sh needs from Python: each worker's own hostname, and whether the
deployment is ready (the DAGs parsed, the workers registered).

    python scripts/cluster_helpers.py dags-parsed <dags folder>
    python scripts/cluster_helpers.py workers-ready <name> [<name>...]
    python scripts/cluster_helpers.py proxy <listen port> <target port>

``proxy`` forwards a loopback port to another until it is killed (the metadata database's
proxy: killing it cuts this deployment's connections to the database, and only those).
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path


def worker_hostname() -> str:
    """``[core] hostname_callable`` of a cluster worker: its own name (``worker-1``...),
    so that task instances say which of two workers on one machine ran them."""
    return os.environ.get("CASCADE_WORKER_NAME") or os.uname().nodename


def dags_parsed(folder: str) -> bool:
    """Every DAG file of ``folder`` parsed by the DAG processor: a DAG or an import error."""
    from airflow.models.dag import DagModel
    from airflow.models.errors import ParseImportError
    from airflow.utils.session import create_session

    files = {
        path.name
        for path in Path(folder).rglob("*.py")
        if not path.name.startswith("_") and "__pycache__" not in path.parts
    }
    with create_session() as session:
        seen = {Path(fileloc).name for (fileloc,) in session.query(DagModel.fileloc)}
        seen |= {Path(name).name for (name,) in session.query(ParseImportError.filename)}
    missing = files - seen
    if missing:
        print(f"not parsed yet: {sorted(missing)}", file=sys.stderr)
    return not missing


def workers_ready(names: list[str]) -> bool:
    """Each named Celery worker answers a ping through the broker."""
    from airflow.providers.celery.executors.celery_executor_utils import app

    replies = app.control.ping(timeout=2.0) or []
    answered = {name.split("@")[0] for reply in replies for name in reply}
    missing = set(names) - answered
    if missing:
        print(f"workers not registered yet: {sorted(missing)}", file=sys.stderr)
    return not missing


def proxy(listen_port: int, target_port: int) -> None:
    """Forward ``listen_port`` to ``target_port`` on loopback until killed."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.tcp_proxy import TcpProxy

    with TcpProxy(listen_port, "127.0.0.1", target_port):
        print(f"forwarding 127.0.0.1:{listen_port} to 127.0.0.1:{target_port}", flush=True)
        threading.Event().wait()


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "dags-parsed":
        sys.exit(0 if dags_parsed(args[0]) else 1)
    if command == "workers-ready":
        sys.exit(0 if workers_ready(args) else 1)
    if command == "proxy":
        proxy(int(args[0]), int(args[1]))
    sys.exit(f"unknown command {command!r}")
