"""DAG-parse cost: what importing the provider adds to a DAG file over ``airflow.sdk``.

    python benchmarks/parse_cost.py [--runs 7]

Each figure is measured in a fresh interpreter, as the DAG processor parses: the time to
import what a DAG file imports. No FastAPI, uvicorn or pandas may load with the provider
(the sandbox is imported only when it runs).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

from _common import machine, median

BASELINE = "from airflow.sdk import DAG, task"
PROVIDER = (
    "from airflow_provider_cascade.operators.cascade import CascadeSendOperator\n"
    "from airflow_provider_cascade.sensors.cascade import CascadeDeliverySensor\n"
    "from airflow_provider_cascade.notifications.cascade import CascadeNotifier"
)
PROBE = """
import json, sys, time
started = time.perf_counter()
{baseline}
middle = time.perf_counter()
{provider}
done = time.perf_counter()
heavy = [
    m for m in ("fastapi", "uvicorn", "pandas", "airflow_provider_cascade.sandbox")
    if m in sys.modules
]
figures = {{"sdk_ms": (middle - started) * 1000, "provider_ms": (done - middle) * 1000}}
print(json.dumps({{**figures, "heavy": heavy}}))
"""


def probe() -> dict[str, object]:
    code = PROBE.format(baseline=BASELINE, provider=PROVIDER)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    probe()  # warm the file system cache
    runs = [probe() for _ in range(args.runs)]
    sdk = median(float(r["sdk_ms"]) for r in runs)
    provider = median(float(r["provider_ms"]) for r in runs)
    heavy = sorted({m for r in runs for m in r["heavy"]})  # type: ignore[attr-defined]
    print(f"DAG-parse cost, {args.runs} fresh interpreters (medians); {machine()}")
    print(f"  airflow.sdk (DAG, task):           {sdk:6.0f} ms")
    print(
        f"  + operator, sensor, notifier:      {provider:6.0f} ms"
        f"  ({provider / sdk:.1%} more); target <= 50 ms"
    )
    print(f"  heavy modules loaded by the provider: {', '.join(heavy) or 'none'}")


if __name__ == "__main__":
    main()
