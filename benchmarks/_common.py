"""Shared pieces of the benchmarks: an isolated Airflow home, the audience table, figures."""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import statistics
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

# Before Airflow is imported anywhere: a private, quiet home.
os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="cascade-bench-home-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")

SELECT = "SELECT id, to_phone, text FROM audience ORDER BY id"
TEXT = "Black Friday starts now: up to -50% on everything in the app."
BENCH_DB_CONN = "cascade_bench_db"


#: Where the benchmarks keep their audience files, reused across runs.
BENCH_DIR = Path(tempfile.gettempdir()) / "cascade-bench"


def audience_db(rows: int) -> Path:
    """A SQLite file with ``rows`` audience rows, pointed to by ``cascade_bench_db``."""
    BENCH_DIR.mkdir(exist_ok=True)
    path = BENCH_DIR / f"audience-{rows}.db"
    if not path.exists():
        with sqlite3.connect(path) as db:
            db.execute(
                "CREATE TABLE audience (id INTEGER PRIMARY KEY, to_phone TEXT NOT NULL,"
                " text TEXT NOT NULL, message_id TEXT, sent_at TEXT)"
            )
            db.executemany(
                "INSERT INTO audience (id, to_phone, text) VALUES (?, ?, ?)",
                ((n, f"+38099{n % 10_000_000:07d}", TEXT) for n in range(1, rows + 1)),
            )
    os.environ[f"AIRFLOW_CONN_{BENCH_DB_CONN.upper()}"] = json.dumps(
        {"conn_type": "sqlite", "host": str(path)}
    )
    return path


def audience_postgres(rows: int) -> None:
    """The same audience in PostgreSQL (127.0.0.1:5432, database ``test``), for
    ``cascade_bench_db``; made with generate_series, reused when it already has ``rows``."""
    import psycopg2

    os.environ[f"AIRFLOW_CONN_{BENCH_DB_CONN.upper()}"] = json.dumps(
        {
            "conn_type": "postgres",
            "host": "127.0.0.1",
            "port": 5432,
            "login": "postgres",
            "schema": "test",
        }
    )
    table = f"audience_{rows}"
    with (
        psycopg2.connect(host="127.0.0.1", user="postgres", dbname="test") as db,
        db.cursor() as cur,
    ):
        cur.execute("SELECT to_regclass(%s)", (table,))
        if cur.fetchone()[0] is None:
            cur.execute(
                f"CREATE TABLE {table} AS SELECT n AS id,"
                f" '+38099' || lpad(mod(n, 10000000)::text, 7, '0') AS to_phone, %s AS text,"
                f" NULL::text AS message_id, NULL::text AS sent_at"
                f" FROM generate_series(1, %s) AS n",
                (TEXT, rows),
            )


def select_for(rows: int, source: str) -> str:
    return SELECT if source == "sqlite" else SELECT.replace("audience", f"audience_{rows}")


def hand_built_message(row_id: int, phone: str, text: str) -> dict[str, Any]:
    """One message in the API's wire shape, as a user without this provider builds it."""
    return {
        "id": str(row_id),
        "fromName": "Bench",
        "toPhone": phone,
        "messageType": "promo",
        "text": text,
        "ttl": 259_200,
    }


class DiscardingStateStore:
    """A task state store that keeps nothing: the ledger's own work is measured, not a DB's."""

    def __init__(self) -> None:
        self.writes = 0

    def get(self, key: str, default: Any = None) -> Any:
        return default

    def set(self, key: str, value: Any) -> None:
        json.dumps(value)  # what a real store must do at least
        self.writes += 1


class FileStateStore:
    """A task state store in a folder, one JSON file a key: what a retry in another process
    finds, as Airflow's store over the API server holds it (nothing kept in memory)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def get(self, key: str, default: Any = None) -> Any:
        path = self.folder / f"{key}.json"
        return json.loads(path.read_text()) if path.exists() else default

    def set(self, key: str, value: Any) -> None:
        (self.folder / f"{key}.json").write_text(json.dumps(value))


class RecordingTI:
    def __init__(self) -> None:
        self.xcom: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcom[key] = value


def run_operator(store: Any = None, **kwargs: Any) -> dict[str, Any]:
    """``CascadeSendOperator.execute`` as a worker runs it, with a state store (by default
    one that keeps nothing)."""
    from airflow_provider_cascade.operators.cascade import CascadeSendOperator

    operator = CascadeSendOperator(task_id="bench", **kwargs)
    context = {"ti": RecordingTI(), "task_state_store": store or DiscardingStateStore()}
    return operator.execute(context)  # type: ignore[arg-type]


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def repeat(runs: int, measure: Callable[[], float]) -> list[float]:
    return [measure() for _ in range(runs)]


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    from importlib.metadata import version

    return (
        f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, "
        f"Airflow {version('apache-airflow')}, {platform.system()} {platform.machine()}"
    )
