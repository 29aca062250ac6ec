"""Memory of a 10,000,000-number suppression set (issue 17: well under 200 MB).

    python benchmarks/suppression_memory.py [--numbers 10000000] [--source list|sqlite]

Each measurement runs in a fresh child process, whose own peak RSS (getrusage) is read,
against a baseline child that imports the same modules and builds nothing; the ratio
compares the provider's set with a plain Python ``set`` of the same numbers as integers
(the obvious way, itself far smaller than a set of strings). ``--source sqlite`` reads the
numbers through ``suppress_sql`` from a SQLite table, as a task does.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from _common import machine


def numbers(count: int) -> Iterator[str]:
    """Distinct Ukrainian, Polish and US mobiles (up to 30,000,000), written as people
    write them, in no particular order (7,919 is prime to 10,000,000)."""
    for n in range(count):
        country = ("+380 67", "+48 50", "+1 415")[n % 3]
        yield f"{country} {n // 3 * 7_919 % 10_000_000:07d}"


def child(kind: str, count: int, database: str | None) -> None:
    # Every child imports the same modules, so the baseline holds what they cost.
    from airflow_provider_cascade.send.guardrails.suppression import e164_digits, load_suppression

    if database:
        os.environ["AIRFLOW_CONN_BENCH_SUPPRESS"] = json.dumps(
            {"conn_type": "sqlite", "host": database}
        )
    started = time.perf_counter()
    held, lookup_us = 0, 0.0
    if kind == "phoneset":
        if database:
            phone_set = load_suppression(sql="SELECT phone FROM opt_outs", conn_id="bench_suppress")
        else:
            phone_set = load_suppression(numbers(count))
        held = len(phone_set)
        probe = range(380670000000, 380670100000)
        lookup_started = time.perf_counter()
        found = sum(1 for number in probe if number in phone_set)
        lookup_us = (time.perf_counter() - lookup_started) / len(probe) * 1e6
        assert found > 0  # the probe range holds some of the numbers
    elif kind == "set":
        plain = {e164_digits(text) for text in numbers(count)}
        held = len(plain)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"peak_mb": peak_mb, "held": held, "s": seconds, "lookup_us": lookup_us}))


def measure(kind: str, count: int, database: str | None) -> dict[str, float]:
    args = [sys.executable, __file__, "--child", kind, "--numbers", str(count)]
    if database:
        args += ["--database", database]
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--numbers", type=int, default=10_000_000)
    parser.add_argument("--source", choices=["list", "sqlite"], default="list")
    parser.add_argument("--child")
    parser.add_argument("--database")
    args = parser.parse_args()
    if args.child:
        child(args.child, args.numbers, args.database)
        return
    database = None
    with tempfile.TemporaryDirectory() as folder:
        if args.source == "sqlite":
            database = str(Path(folder) / "opt_outs.db")
            with sqlite3.connect(database) as db:
                db.execute("CREATE TABLE opt_outs (phone TEXT)")
                db.executemany(
                    "INSERT INTO opt_outs VALUES (?)", ((p,) for p in numbers(args.numbers))
                )
        print(f"machine: {machine()}")
        base = measure("baseline", args.numbers, None)
        ours = measure("phoneset", args.numbers, database)
        plain = measure("set", args.numbers, None) if args.source == "list" else None
    used = ours["peak_mb"] - base["peak_mb"]
    print(
        f"numbers: {args.numbers:,} written ({ours['held']:,.0f} distinct), source: {args.source}"
    )
    print(f"baseline child (imports only): peak RSS {base['peak_mb']:.0f} MB")
    print(
        f"PhoneSet: +{used:.0f} MB over the baseline, built in {ours['s']:.1f} s "
        f"({ours['s'] / args.numbers * 1e6:.2f} us a number); look-up {ours['lookup_us']:.2f} us"
    )
    if plain is not None:
        plain_used = plain["peak_mb"] - base["peak_mb"]
        print(
            f"a Python set of the same numbers as int: +{plain_used:.0f} MB "
            f"(PhoneSet uses {used / plain_used:.2f}x of it)"
        )
    print(f"under 200 MB: {'yes' if used < 200 else 'NO'}")


if __name__ == "__main__":
    main()
