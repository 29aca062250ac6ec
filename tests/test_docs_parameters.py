"""Every public argument of every public class is in its docs page's table (docs/*.md,
marked ``<!-- parameters: Class -->``), and every row names an argument."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from airflow_provider_cascade.hooks.cascade import CascadeAsyncHook, CascadeHook
from airflow_provider_cascade.notifications.cascade import CascadeNotifier
from airflow_provider_cascade.operators.cascade import CascadeSendOperator
from airflow_provider_cascade.send import (
    CascadeGuardrails,
    CascadeRequests,
    CascadeResults,
    QuietHours,
    Suppression,
)
from airflow_provider_cascade.sensors.cascade import CascadeDeliverySensor
from airflow_provider_cascade.triggers.cascade import CascadeDeliveryTrigger

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = "\n".join(page.read_text() for page in sorted(DOCS.glob("*.md")))
CLASSES = [
    CascadeSendOperator,
    CascadeGuardrails,
    Suppression,
    QuietHours,
    CascadeRequests,
    CascadeResults,
    CascadeDeliverySensor,
    CascadeDeliveryTrigger,
    CascadeNotifier,
    CascadeHook,
    CascadeAsyncHook,
]
#: Arguments of Airflow's base classes that a table explains because they matter here.
INHERITED = {CascadeDeliverySensor: {"poke_interval", "timeout", "mode"}}


def table_of(name: str) -> set[str]:
    marker = f"<!-- parameters: {name} -->\n"
    assert marker in PAGES, f"no docs page has a parameter table for {name}"
    table = PAGES.split(marker, 1)[1].split("\n\n", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`(\w+)`", row.split(" | ")[0])}


def arguments_of(cls: type) -> set[str]:
    parameters = inspect.signature(cls.__init__).parameters.values()
    return {
        p.name
        for p in parameters
        if p.name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    }


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: cls.__name__)
def test_every_argument_is_in_its_docs_table(cls):
    documented = table_of(cls.__name__)
    assert arguments_of(cls) | INHERITED.get(cls, set()) == documented
