"""The compatibility matrix (docs/data/compatibility.yaml) is well formed, covers the CI
lanes, and every row is proven by at least one test (tests/compat.py runs them per version)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.compat import read_table, running_version

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


def test_every_row_is_proven_by_a_marked_test():
    table = read_table()
    marked = set()
    for path in TESTS.rglob("test_*.py"):
        marked |= set(re.findall(r'compat\("([a-z_]+)"', path.read_text()))
    assert set(table.cells) - marked == set(), "rows no test proves"
    assert marked - set(table.cells) == set(), "markers for rows the matrix lacks"


def test_the_table_has_a_column_for_each_ci_lane_and_the_latest():
    lanes = re.search(
        r'LANES=\$\{AIRFLOW_LANES-"([^"]+)"\}', (REPO / "scripts/test-all.sh").read_text()
    )
    assert lanes, "scripts/test-all.sh names its lanes"
    expected = {tuple(map(int, lane.split("."))) for lane in lanes.group(1).split()}
    table = read_table()
    assert expected <= set(table.versions)
    assert max(table.versions) > max(expected)  # the latest, which the main venv runs
    for lane in lanes.group(1).split():
        assert (REPO / f".ci/airflow/constraints-{lane}.txt").is_file(), lane


def test_the_running_airflow_has_a_column():
    table = read_table()
    column = table.column(running_version())
    assert table.versions[column] <= running_version()


def test_a_cell_reads_as_supported_only_with_a_tick():
    table = read_table()
    assert table.supported("send", (2, 11)) and table.supported("task_state_store", (3, 3))
    assert not table.supported("task_state_store", (2, 11))
    assert not table.supported("task_state_store", (3, 2))  # between columns: the older one
    assert table.supported("task_state_store", (3, 4))  # newer than tested: the latest
