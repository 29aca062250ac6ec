"""How a send runs: every limit and mode, checked once when the operator is made.

Light on purpose (no HTTP, no threads): the operator builds its settings in ``__init__``,
which runs at every DAG parse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from airflow_provider_cascade.constants import (
    DEFAULT_MAX_IN_FLIGHT,
    DEFAULT_XCOM_INLINE_LIMIT,
    MAX_BATCH_SIZE,
    MAX_IN_FLIGHT,
)
from airflow_provider_cascade.wire import Route

OnInvalid = Literal["fail", "skip"]
OnUncertain = Literal["resend", "skip"]


@dataclass(frozen=True)
class CampaignSettings:
    """How to send (the guardrails apart), checked once when made; see
    :class:`~airflow_provider_cascade.operators.cascade.CascadeSendOperator` for each.

    ``xcom_inline_limit=None`` keeps every id in memory (``send_messages``).

    :raises ValueError: a limit out of range or an unknown mode.
    """

    route: Route = Route.STANDARD
    defaults: Mapping[str, Any] = field(default_factory=dict)
    #: A message still without ``ttl`` gets the service's recommendation for its type.
    recommended_ttl: bool = True
    batch_size: int = MAX_BATCH_SIZE
    dry_run: bool = False
    on_invalid: OnInvalid = "fail"
    on_uncertain: OnUncertain = "resend"
    xcom_inline_limit: int | None = DEFAULT_XCOM_INLINE_LIMIT
    results_path: str | None = None
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    progress_interval: float = 5.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "route", Route(self.route))
        if not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be 1 to {MAX_BATCH_SIZE}, not {self.batch_size}")
        if not 1 <= self.max_in_flight <= MAX_IN_FLIGHT:
            raise ValueError(
                f"max_in_flight must be 1 to {MAX_IN_FLIGHT}, not {self.max_in_flight}"
            )
        if self.on_invalid not in ("fail", "skip"):
            raise ValueError(f"on_invalid must be 'fail' or 'skip', not {self.on_invalid!r}")
        if self.on_uncertain not in ("resend", "skip"):
            raise ValueError(f"on_uncertain must be 'resend' or 'skip', not {self.on_uncertain!r}")
        if self.xcom_inline_limit is not None and self.xcom_inline_limit < 0:
            raise ValueError("xcom_inline_limit must be 0 or more")

    @property
    def resend_uncertain(self) -> bool:
        """At-least-once: a batch in doubt is sent again (the hook's retries, the task's)."""
        return self.on_uncertain == "resend"
