"""Every Python example the docs include (docs/snippets/*.py) runs, against the sandbox
where it sends."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO

SNIPPETS = sorted((REPO / "docs" / "snippets").glob("*.py"))


def test_the_docs_have_snippets():
    assert len(SNIPPETS) >= 6


def test_every_snippet_is_included_by_a_page():
    pages = "\n".join(page.read_text() for page in (REPO / "docs").glob("*.md"))
    assert [path.name for path in SNIPPETS if f"snippets/{path.name}" not in pages] == []


@pytest.mark.integration
@pytest.mark.parametrize("path", SNIPPETS, ids=lambda path: Path(path).stem)
def test_snippet_runs(path, sandbox):
    namespace: dict[str, object] = {"__name__": "docs_snippet"}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    if "send_one" in namespace:  # the hook example: send through the sandbox
        status = namespace["send_one"]()
        assert status["deliverystatus"] in ("processing", "delivered")
        assert sandbox.stats()["accepted"] == 1
