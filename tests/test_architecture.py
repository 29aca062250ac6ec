"""The package's lines, kept true: no import cycle, and one module that speaks the wire."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "airflow_provider_cascade"
NAME = PACKAGE.name

#: The API's own names: request and reply fields, and the auth headers.
WIRE_NAMES = (
    "fromName",
    "toPhone",
    "messageType",
    "scheduledSent",
    "surveyOptions",
    "trackinId",
    "messageId",
    "deliverystatus",
    "extendedStatuses",
    "billAmount",
    "billCurrency",
    "X-Authorization-Key",
    "X-Viber-Auth-Token",
    "X-Tg-Bot-Key",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """Every package module ``path`` imports, anywhere in it (TYPE_CHECKING blocks and
    imports inside functions included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        found.update(name for name in names if name in modules)
    return found


def graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    modules = set(paths)
    return {name: imports_of(path, modules) - {name} for name, path in paths.items()}


def test_no_import_cycle():
    edges = graph()
    state: dict[str, str] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = "open"
        for target in sorted(edges[module]):
            if state.get(target) == "open":
                cycle = [*trail[trail.index(target) :], target] if target in trail else [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target, [*trail, target])
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])


@pytest.mark.parametrize("wire_name", WIRE_NAMES)
def test_a_wire_name_lives_in_one_module_outside_the_sandbox(wire_name):
    pattern = re.compile(rf"\b{re.escape(wire_name)}\b")
    holders = sorted(
        module_name(path)
        for path in PACKAGE.rglob("*.py")
        if "sandbox" not in path.parts and pattern.search(path.read_text())
    )
    assert holders == [f"{NAME}.wire"]


def test_the_sandbox_does_not_borrow_the_clients_contract():
    edges = graph()
    borrowed = {
        f"{module} imports {target}"
        for module, targets in edges.items()
        if module.startswith(f"{NAME}.sandbox")
        for target in targets
        if not target.startswith(f"{NAME}.sandbox")
    }
    assert borrowed == set()


def test_fakes_need_no_type_ignore():
    for path in Path(__file__).parent.rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"Fake\w*\(.*# type: ignore", text), path


def test_the_hooks_only_talk_http():
    """``hooks/`` sits below the send pipeline: it imports nothing of ``send/`` (sending many
    messages from plain Python is ``send.campaign.send_messages``, which builds a hook)."""
    reached = {
        f"{module} imports {target}"
        for module, targets in graph().items()
        if module.startswith(f"{NAME}.hooks")
        for target in targets
        if target.startswith(f"{NAME}.send")
    }
    assert reached == set()


def test_nothing_imports_an_airflow_face():
    """Operators, decorators, sensors, triggers, notifiers, plugins and assets are what
    Airflow loads: the packages below them never import them back (a face may build on
    another: ``@task.cascade`` is the send operator's)."""
    faces = (
        "operators",
        "decorators",
        "sensors",
        "triggers",
        "notifications",
        "plugins",
        "assets",
    )
    reached = {
        f"{module} imports {target}"
        for module, targets in graph().items()
        if not module.startswith(tuple(f"{NAME}.{face}" for face in faces))
        and module != f"{NAME}.get_provider_info"
        for target in targets
        if target.startswith(tuple(f"{NAME}.{face}" for face in faces))
    }
    assert reached == set()


#: The most lines a module holds without saying at its top why it is longer.
MODULE_LINES = 300


def test_no_module_is_long_without_a_reason_at_its_top():
    """A module over ``MODULE_LINES`` says why in its docstring ("Longer than ..."), so
    that a reader knows the length was chosen, not grown into."""
    long = sorted(
        f"{module_name(path)}: {lines} lines"
        for path in PACKAGE.rglob("*.py")
        if (lines := len(path.read_text().splitlines())) > MODULE_LINES
        and "Longer than" not in (ast.get_docstring(ast.parse(path.read_text())) or "")
    )
    assert long == []
