"""The CHANGELOG and the package agree: the newest release is the package's version, and
the migration table lists every argument that moved, where the operator says it went."""

from __future__ import annotations

import re

from airflow_provider_cascade import __version__
from airflow_provider_cascade.send.options import MOVED_ARGUMENTS
from tests.conftest import REPO

CHANGELOG = (REPO / "CHANGELOG.md").read_text()


def test_the_newest_release_is_the_packages_version():
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\]", CHANGELOG, re.MULTILINE)
    assert releases[0] == __version__
    assert releases[-1] == "0.1.0"


def test_the_migration_table_lists_every_moved_argument():
    rows = dict(re.findall(r"^  \| `(\w+)=` \| `(.+)` \|$", CHANGELOG, re.MULTILINE))
    assert rows == MOVED_ARGUMENTS
