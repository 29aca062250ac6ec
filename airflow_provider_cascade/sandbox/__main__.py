"""``cascade-sandbox``: run the local Cascade API."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence

from airflow_provider_cascade.sandbox import API_KEY_ENV
from airflow_provider_cascade.sandbox.state import (
    FAULT_DESCRIPTIONS,
    FAULT_KINDS,
    Faults,
    SandboxState,
)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="cascade-sandbox",
        description="A local SMSBAT Cascade API on loopback, for demos and tests.",
        epilog="fault kinds:\n"
        + "\n".join(f"  {kind:<16} {FAULT_DESCRIPTIONS[kind]}" for kind in FAULT_KINDS),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--port", type=int, default=8765, help="port; 0 picks a free one")
    parser.add_argument(
        "--api-key",
        default=os.environ.get(API_KEY_ENV) or None,
        help=f"accept only this X-Authorization-Key (default: ${API_KEY_ENV}, else any "
        f"credential); prefer ${API_KEY_ENV}: arguments are visible in `ps`",
    )
    parser.add_argument(
        "--delivery-seconds",
        type=float,
        default=2.0,
        help="how long a message is 'processing' before its final status (default 2)",
    )
    parser.add_argument("--rate-limit", type=float, help="send requests per second before 429")
    parser.add_argument(
        "--burst", type=float, help="requests allowed in a burst (default 1.5 x --rate-limit)"
    )
    parser.add_argument(
        "--error-rate", type=float, default=0.0, help="share of send requests given a fault"
    )
    parser.add_argument(
        "--fault-kinds",
        default="500",
        help="comma-separated fault kinds to draw from (listed below; default 500)",
    )
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before answering")
    parser.add_argument(
        "--status-latency-ms",
        type=float,
        default=0.0,
        help="delay before answering a status look-up (status look-ups only)",
    )
    parser.add_argument(
        "--status-rate-limit",
        type=float,
        help="status look-ups per second before 429 (the data group's published limit is 50)",
    )
    parser.add_argument("--seed", type=int, help="seed for the fault draws (repeatable runs)")
    parser.add_argument(
        "--replies-url",
        help="where recipients' replies (POST /sandbox/replies) are forwarded, as SMSBAT's "
        "callbacks; retried after 1, 2 and 4 s unless answered 200",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    faults = Faults(
        error_rate=args.error_rate,
        kinds=[kind.strip() for kind in args.fault_kinds.split(",") if kind.strip()],
        latency_ms=args.latency_ms,
        rate_limit=args.rate_limit,
        burst=args.burst,
        status_latency_ms=args.status_latency_ms,
        status_rate_limit=args.status_rate_limit,
        seed=args.seed,
    )
    try:
        state = SandboxState(
            api_key=args.api_key, delivery_seconds=args.delivery_seconds, faults=faults
        )
    except ValueError as error:
        raise SystemExit(f"cascade-sandbox: {error}") from None
    # Imported here: FastAPI and uvicorn are only needed once a server really runs. Airflow
    # 3 ships both; on Airflow 2 they come with the ``sandbox`` extra.
    try:
        from airflow_provider_cascade.sandbox.server import serve
    except ImportError as error:
        raise SystemExit(
            f"cascade-sandbox: {error.name} is not installed; "
            "pip install 'airflow-provider-cascade[sandbox]'"
        ) from None

    print(f"faults: {json.dumps(faults.to_json())}", flush=True)
    serve(state, host=args.host, port=args.port, replies_url=args.replies_url)


if __name__ == "__main__":
    main()
