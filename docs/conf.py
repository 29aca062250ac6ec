"""Sphinx configuration of the provider's docs (``make docs``: HTML in docs/_build/html).

Pages are Markdown (MyST). Tables that tests check live as data (``docs/data/*.yaml``) and
are rendered here into ``docs/_generated/`` before the build; benchmark figures are
included from ``benchmarks/RESULTS.md`` as ``make bench`` wrote them; examples from files
the tests run (``example_dags/``, ``docs/snippets/``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS.parent))

from airflow_provider_cascade import __version__  # noqa: E402

project = "airflow-provider-cascade"
author = "airflow-provider-cascade contributors"
copyright = "2026, " + author
version = release = __version__

extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.viewcode"]
source_suffix = {".md": "markdown"}
exclude_patterns = ["_build", "snippets", "data", "_generated"]
myst_heading_anchors = 3
autodoc_member_order = "bysource"
autodoc_typehints = "description"
html_theme = "alabaster"
html_title = f"{project} {release}"
html_static_path: list[str] = []
html_copy_source = False  # no "Show source" pages: the Markdown is in the repository
html_show_sourcelink = False


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_compatibility() -> str:
    """The compatibility matrix (``docs/data/compatibility.yaml``) as a Markdown table."""
    data = yaml.safe_load((DOCS / "data" / "compatibility.yaml").read_text(encoding="utf-8"))
    columns = data["versions"]
    lines = [
        "| Feature | " + " | ".join(column["label"] for column in columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    for feature in data["features"]:
        cells = [f"{feature['title']} (`{feature['name']}`)"]
        cells += [feature[column["airflow"]] for column in columns]
        lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
    return "\n".join(lines) + "\n"


def render_metrics() -> str:
    """The provider's metrics (``airflow_provider_cascade.metrics.METRICS``) as a table."""
    from airflow_provider_cascade.metrics import METRICS

    lines = ["| metric | type | what it counts | tags |", "|---|---|---|---|"]
    for name, (kind, what, tags) in METRICS.items():
        lines.append(f"| `{name}` | {kind} | {_cell(what)} | {_cell(tags)} |")
    return "\n".join(lines) + "\n"


def render_fault_kinds() -> str:
    """The sandbox's fault kinds (``sandbox.state.FAULT_DESCRIPTIONS``, which ``--help``
    prints too) as a table."""
    from airflow_provider_cascade.sandbox.state import FAULT_DESCRIPTIONS

    lines = ["| fault kind | what the send request gets |", "|---|---|"]
    lines += [f"| `{kind}` | {_cell(what)} |" for kind, what in FAULT_DESCRIPTIONS.items()]
    return "\n".join(lines) + "\n"


generated = DOCS / "_generated"
generated.mkdir(exist_ok=True)
(generated / "compatibility_table.md").write_text(render_compatibility(), encoding="utf-8")
(generated / "metrics_table.md").write_text(render_metrics(), encoding="utf-8")
(generated / "fault_kinds.md").write_text(render_fault_kinds(), encoding="utf-8")
