"""Running the operator as a worker does, with a state store that survives its 'retries'."""

from __future__ import annotations

from typing import Any

from airflow_provider_cascade.exceptions import CascadeError
from airflow_provider_cascade.operators.cascade import CascadeSendOperator
from airflow_provider_cascade.send.options import CascadeRequests
from tests.fakes import MemoryStore

FAST = {"retry_wait": 0.01, "max_retry_wait": 0.05, "timeout": 2.0}


class TI:
    def xcom_push(self, key: str, value: Any) -> None:
        pass


def send_with_retries(store: MemoryStore, tries: int = 10, **kwargs: Any) -> dict[str, Any]:
    """Execute like Airflow with ``retries=tries-1``: the same state store on every try."""
    kwargs.setdefault("requests", CascadeRequests(**FAST))
    for attempt in range(1, tries + 1):
        operator = CascadeSendOperator(task_id="send", **kwargs)
        try:
            return operator.execute({"ti": TI(), "task_state_store": store})  # type: ignore[arg-type]
        except CascadeError:
            if attempt == tries:
                raise
    raise AssertionError("unreachable")


def messages(count: int, prefix: str = "m") -> list[dict[str, object]]:
    return [
        {"tracking_id": f"{prefix}-{n}", "to_phone": f"+38050{n:07d}", "text": "Your code is 4242"}
        for n in range(count)
    ]
