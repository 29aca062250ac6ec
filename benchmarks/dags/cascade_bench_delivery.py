"""The delivery benchmark's DAG (``benchmarks/delivery_wait.py`` runs it with ``airflow dags
test``): a send of 3,000 messages, then a deferrable wait on them at the pace the
environment names, which appends its wall and CPU time to :data:`FIGURES`."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from airflow.providers.common.compat.sdk import DAG

from airflow_provider_cascade.operators.cascade import CascadeSendOperator
from airflow_provider_cascade.send import CascadeResults
from airflow_provider_cascade.sensors.cascade import CascadeDeliverySensor

MESSAGES = 3_000
RATE_ENV = "CASCADE_BENCH_STATUS_RATE"
FIGURES = Path(tempfile.gettempdir()) / "cascade-bench" / "delivery-figures.jsonl"


class TimedWait(CascadeDeliverySensor):
    """The sensor, timed from its first execute() to execute_complete() (the deferral in
    between runs the trigger, in the same process under ``airflow dags test``)."""

    def execute(self, context: Any) -> Any:
        Path(FIGURES.parent).mkdir(parents=True, exist_ok=True)
        (FIGURES.parent / "delivery-start.json").write_text(
            json.dumps({"wall": time.time(), "cpu": time.process_time()})
        )
        return super().execute(context)

    def execute_complete(self, context: Any, event: dict[str, Any], **kwargs: Any) -> Any:
        report = super().execute_complete(context, event, **kwargs)
        start = json.loads((FIGURES.parent / "delivery-start.json").read_text())
        with FIGURES.open("a") as out:
            out.write(
                json.dumps(
                    {
                        "seconds": time.time() - start["wall"],
                        "cpu_s": time.process_time() - start["cpu"],
                        "total": report["total"],
                    }
                )
                + "\n"
            )
        return report


with DAG("cascade_bench_delivery", schedule=None) as delivery:
    send = CascadeSendOperator(
        task_id="send",
        messages=[
            {"tracking_id": f"d-{n}", "to_phone": f"+38050{n:07d}", "text": "Your code: 1234"}
            for n in range(MESSAGES)
        ],
        from_name="Bench",
        message_type="transaction",
    )
    TimedWait(
        task_id="wait",
        send_result=send.output,
        deferrable=True,
        max_requests_per_second=float(os.environ.get(RATE_ENV, "300")),
        poke_interval=1,
        timeout=600,
        results=CascadeResults(path=f"file://{FIGURES.parent}/delivery-{{{{ run_id }}}}.jsonl"),
    )
