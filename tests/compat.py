"""The compatibility matrix (``docs/data/compatibility.yaml``, rendered by the docs), read
by the tests so CI keeps it true.

Each feature has a cell per Airflow version: ``✓ ...`` (works) or anything else (does
not). A test marked ``@pytest.mark.compat("feature")`` runs only where the cell says ✓,
and one marked ``compat("feature", supported=False)`` (it checks how the provider
degrades) only where it does not. Every lane runs the suite, so a ✓ that stops being true
fails that lane, and so does a ✗ that has started to work.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

MATRIX = Path(__file__).resolve().parent.parent / "docs" / "data" / "compatibility.yaml"


@dataclass(frozen=True)
class CompatTable:
    versions: list[tuple[int, int]]
    cells: dict[str, list[str]]  # feature -> one cell per version

    def column(self, running: tuple[int, int]) -> int:
        """The column of the running Airflow: its own, else the newest older one."""
        older = [i for i, version in enumerate(self.versions) if version <= running]
        return older[-1] if older else 0

    def cell(self, feature: str, running: tuple[int, int]) -> str:
        if feature not in self.cells:
            raise KeyError(f"docs/data/compatibility.yaml has no feature `{feature}`")
        return self.cells[feature][self.column(running)]

    def supported(self, feature: str, running: tuple[int, int]) -> bool:
        return self.cell(feature, running).startswith("✓")


def read_table(path: Path = MATRIX) -> CompatTable:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    columns = [column["airflow"] for column in data["versions"]]
    versions = [_version(column) for column in columns]
    cells = {}
    for feature in data["features"]:
        if set(columns) - set(feature):
            raise ValueError(f"compatibility feature {feature['name']} lacks a cell: {feature}")
        cells[feature["name"]] = [str(feature[column]) for column in columns]
    return CompatTable(versions, cells)


def running_version() -> tuple[int, int]:
    from airflow_provider_cascade.version_compat import get_base_airflow_version_tuple

    major, minor, _ = get_base_airflow_version_tuple()
    return major, minor


def _version(column: str) -> tuple[int, int]:
    major, minor = column.split(".")
    return int(major), int(minor)
