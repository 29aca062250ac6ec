"""Memory: peak RSS of a send of 10,000 rows against one of 1,000,000 (streamed from SQL,
or yielded by a ``@task.cascade`` generator with ``--source generator``; ids offloaded to
a file), and against a retry of that 1,000,000-row send that finds every
message accepted by the first try (its task state store read back from disk, as a retry
on another worker reads it): the ledger then holds a million accepted ids. Each difference
must stay under 100 MB. The same fresh send with text tracking ids (``order-1``...) is
measured too and stated: numbered ids are remembered as numbers, text ids as text.

    python benchmarks/memory.py [--small 10000] [--large 1000000] [--runs 3]

Each send runs in a fresh child process, whose own peak RSS (getrusage) is read.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import _common  # noqa: F401  (sets up the Airflow home before Airflow is imported)
from _common import (
    BENCH_DB_CONN,
    BENCH_DIR,
    DiscardingStateStore,
    FileStateStore,
    RecordingTI,
    audience_db,
    audience_postgres,
    machine,
    median,
    run_operator,
    select_for,
)

from airflow_provider_cascade.sandbox.client import Sandbox
from airflow_provider_cascade.send import CascadeResults


def prepare(rows: int, source: str) -> None:
    if source == "generator":
        return
    if source == "postgres":
        audience_postgres(rows)
    else:
        audience_db(rows)


#: The same rows with text tracking ids (``order-1``...): kept as text, not as numbers.
TEXT_IDS = ("SELECT id,", "SELECT 'order-' || id AS id,")


def child(
    rows: int, source: str, results: str, store: str | None = None, *, text_ids: bool = False
) -> None:
    if source == "generator":
        result = run_generator(rows, results, store, text_ids=text_ids)
        assert result["sent"] == rows, result
        peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({"peak_mb": peak_kb / 1024}))
        return
    sql = select_for(rows, source)
    result = run_operator(
        store=FileStateStore(Path(store)) if store else None,
        sql=sql.replace(*TEXT_IDS) if text_ids else sql,
        sql_conn_id=BENCH_DB_CONN,
        from_name="Bench",
        message_type="promo",
        results=CascadeResults(path=results),
    )
    assert result["sent"] == rows, result
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"peak_mb": peak_kb / 1024}))


def run_generator(
    rows: int, results: str, store: str | None, *, text_ids: bool
) -> dict[str, object]:
    """A ``@task.cascade`` task whose function yields ``rows`` messages, executed as a
    worker runs it (its generator read by the send loop, a batch at a time)."""
    from collections.abc import Iterator

    from airflow_provider_cascade.decorators.cascade import _CascadeDecoratedOperator

    def audience(count: int) -> Iterator[dict[str, object]]:
        for n in range(1, count + 1):
            yield {
                "tracking_id": f"order-{n}" if text_ids else n,
                "to_phone": f"+38067{n % 10_000_000:07d}",
                "text": f"Winter sale: -30% until Sunday, customer #{n}",
            }

    operator = _CascadeDecoratedOperator(
        task_id="bench",
        python_callable=audience,
        op_args=[rows],
        from_name="Bench",
        message_type="promo",
        results=CascadeResults(path=results),
    )
    context = {"ti": RecordingTI(), "task_state_store": _store(store)}
    return operator.execute(context)  # type: ignore[arg-type]


def _store(path: str | None) -> object:
    return FileStateStore(Path(path)) if path else DiscardingStateStore()


def peak_mb(
    rows: int, source: str, sandbox: Sandbox, *, resumed: bool = False, text_ids: bool = False
) -> float:
    """The peak RSS of one send of ``rows``; ``resumed``: of its retry, once a first try
    (another process) had every message accepted; ``text_ids``: ids ``order-1``..."""
    prepare(rows, source)
    sandbox.clear()
    results = f"file://{BENCH_DIR}/memory.jsonl"
    command = [sys.executable, __file__, "--child", str(rows), "--source", source, results]
    if text_ids:
        command.append("--text-ids")
    if resumed:
        store = BENCH_DIR / "memory-state-store"
        shutil.rmtree(store, ignore_errors=True)
        command += ["--store", str(store)]
        subprocess.run(command, capture_output=True, text=True, check=True)  # the first try
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    if resumed:
        assert sandbox.stats()["accepted"] == rows  # the retry sent nothing again
    return float(json.loads(out.stdout.strip().splitlines()[-1])["peak_mb"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--source", choices=["sqlite", "postgres", "generator"], default="sqlite")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    parser.add_argument("--text-ids", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("results", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        prepare(args.child, args.source)  # the connection to what the parent made
        child(args.child, args.source, args.results, args.store, text_ids=args.text_ids)
        return
    print(
        f"Memory, peak RSS of the sending process, messages from {args.source},"
        f" {args.runs} runs (medians); {machine()}"
    )
    with Sandbox.start() as sandbox:
        sandbox.set_env()
        small = median(peak_mb(args.small, args.source, sandbox) for _ in range(args.runs))
        large = median(peak_mb(args.large, args.source, sandbox) for _ in range(args.runs))
        resumed = median(
            peak_mb(args.large, args.source, sandbox, resumed=True) for _ in range(args.runs)
        )
        text = median(
            peak_mb(args.large, args.source, sandbox, text_ids=True) for _ in range(args.runs)
        )
    print(f"  {args.small:>9,} rows: {small:6.0f} MB")
    print(f"  {args.large:>9,} rows: {large:6.0f} MB")
    print(f"  {args.large:>9,} rows, resumed after a retry: {resumed:6.0f} MB")
    print(f"  difference: {large - small:.0f} MB ({large / small:.2f}x); target < 100 MB")
    print(f"  difference, resumed: {resumed - small:.0f} MB; target < 100 MB")
    print(
        f"  {args.large:>9,} rows with text ids ('order-1'...): {text:6.0f} MB,"
        f" {text - small:.0f} MB more (numbered ids are kept as 8-byte numbers, text ids"
        " as text: stated, no target)"
    )


if __name__ == "__main__":
    main()
