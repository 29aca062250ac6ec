"""Every Python snippet in the README runs (against the sandbox where it sends)."""

from __future__ import annotations

import re

import pytest

from tests.conftest import REPO

SNIPPETS = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.DOTALL)


def test_the_readme_has_snippets():
    assert len(SNIPPETS) >= 6


@pytest.mark.integration
@pytest.mark.parametrize("code", SNIPPETS, ids=[f"snippet-{n}" for n in range(len(SNIPPETS))])
def test_snippet_runs(code, sandbox):
    namespace: dict[str, object] = {"__name__": "readme"}
    exec(compile(code, "README.md", "exec"), namespace)
    if "send_one" in namespace:  # the hook example: send through the sandbox
        status = namespace["send_one"]()
        assert status["deliverystatus"] in ("processing", "delivered")
        assert sandbox.stats()["accepted"] == 1
