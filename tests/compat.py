"""The README's compatibility table, read by the tests so CI keeps it true.

Each row ends its first cell with its feature's name in backticks; each version column
says ``✓ ...`` (works) or anything else (does not). A test marked
``@pytest.mark.compat("feature")`` runs only where the row says ✓, and one marked
``compat("feature", supported=False)`` (it checks how the provider degrades) only where it
does not. Every lane runs the suite, so a ✓ that stops being true fails that lane, and so
does a ✗ that has started to work.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
TABLE_START = "<!-- compatibility table: read by tests/compat.py -->"
_FEATURE = re.compile(r"`([a-z_]+)`")


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
            raise KeyError(f"README compatibility table has no row for `{feature}`")
        return self.cells[feature][self.column(running)]

    def supported(self, feature: str, running: tuple[int, int]) -> bool:
        return self.cell(feature, running).startswith("✓")


def read_table(readme: Path = README) -> CompatTable:
    lines = readme.read_text(encoding="utf-8").splitlines()
    start = lines.index(TABLE_START) + 1
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    header, _rule, *body = rows
    versions = [_version(title) for title in header[1:]]
    cells = {}
    for row in body:
        names = _FEATURE.findall(row[0])  # the feature is the row's last `name`
        if not names or len(row) != len(header):
            raise ValueError(f"README compatibility row without a `feature` or cells: {row}")
        cells[names[-1]] = row[1:]
    return CompatTable(versions, cells)


def running_version() -> tuple[int, int]:
    from airflow_provider_cascade.version_compat import get_base_airflow_version_tuple

    major, minor, _ = get_base_airflow_version_tuple()
    return major, minor


def _version(title: str) -> tuple[int, int]:
    match = re.search(r"(\d+)\.(\d+)", title)
    if not match:
        raise ValueError(f"README compatibility column {title!r} names no Airflow version")
    return int(match.group(1)), int(match.group(2))
