"""The house: every module imports only from its own layer or lower, and no import circle.

The imports are read from the source (ast), counting imports inside functions and
leaving out ``if TYPE_CHECKING:`` blocks, so a lazy import cannot hide a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "commissaire_tasks"

#: Module (or package prefix) -> layer, from the ground up. The longest prefix wins.
LAYERS: dict[str, int] = {
    "commissaire_tasks": 0,  # the package root holds only __version__
    "commissaire_tasks.errors": 0,
    "commissaire_tasks.message": 0,
    "commissaire_tasks.redact": 0,
    "commissaire_tasks.models": 0,
    "commissaire_tasks.config": 1,
    "commissaire_tasks.routing": 1,
    "commissaire_tasks.runtime": 2,
    "commissaire_tasks.app": 2,  # the runtime's app under its first public name
    "commissaire_tasks.bus": 3,
    "commissaire_tasks.worker": 3,
    "commissaire_tasks.service": 3,
    "commissaire_tasks.guide": 3,  # the guide's forms, adapters over bus and worker
    "commissaire_tasks.storage": 4,
    # services built on the framework, beside storage (they use its client)
    "commissaire_tasks.bridge": 4,
    "commissaire_tasks.hosts": 4,
    "commissaire_tasks.containers": 4,  # container managers and the container service
    "commissaire_tasks.clusters": 4,  # cluster-wide operations (clusterexec)
    "commissaire_tasks.ops": 5,
    "commissaire_tasks.http": 5,  # the REST front: calls every service over the bus
    "commissaire_tasks.testing": 6,
    "commissaire_tasks.cli": 7,
    "commissaire_tasks.cli_inspect": 7,
    "commissaire_tasks._cli_common": 7,
    "commissaire_tasks.celery": 7,
    # old paths of moved modules: each shim sits in the layer of what it forwards to
    "commissaire_tasks._moved": 0,
    "commissaire_tasks._registry": 2,
    "commissaire_tasks._startup": 2,
    "commissaire_tasks._tasks": 2,
    "commissaire_tasks._results": 2,
    "commissaire_tasks._transport": 2,
    "commissaire_tasks._consumer": 2,
    "commissaire_tasks.deadletters": 2,
    "commissaire_tasks.ops.logs": 2,
    "commissaire_tasks.ops.introspect": 2,
    "commissaire_tasks.ops.services": 2,
    "commissaire_tasks.storage.notifications": 4,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


ROOT = "commissaire_tasks"


def layer_of(module: str) -> int:
    """The layer of ``module``'s longest listed prefix (the root names its ``__init__`` only)."""
    listed = [p for p in LAYERS if module == p or (p != ROOT and module.startswith(p + "."))]
    if not listed:
        raise LookupError(f"{module} has no layer: add it (or its package) to LAYERS")
    return LAYERS[max(listed, key=len)]


class _Imports(ast.NodeVisitor):
    """Collects the package modules a module imports, wherever in it (TYPE_CHECKING aside)."""

    def __init__(self, module: str, is_package: bool, known: set[str]) -> None:
        self.package = module if is_package else module.rpartition(".")[0]
        self.known = known
        self.found: set[str] = set()

    def visit_If(self, node: ast.If) -> None:  # noqa: N802 - ast's name
        if "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:  # noqa: N802
        for alias in node.names:
            self._add(alias.name)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:  # noqa: N802
        if node.level:
            base = self.package.split(".")[: len(self.package.split(".")) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        self._add(target)
        for alias in node.names:
            self._add(f"{target}.{alias.name}")

    def _add(self, name: str) -> None:
        while name and name not in self.known:
            name = name.rpartition(".")[0]
        if name:
            self.found.add(name)


def import_graph() -> dict[str, set[str]]:
    found = modules()
    graph = {}
    for name, path in found.items():
        visitor = _Imports(name, path.name == "__init__.py", set(found))
        visitor.visit(ast.parse(path.read_text(), str(path)))
        graph[name] = visitor.found - {name}
    return graph


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` (as a path that returns to its start), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (circle := visit(nxt)):
                return circle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (circle := visit(start)):
            return circle
    return None


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Each ``a -> b`` where ``b`` sits in a higher layer than ``a``."""
    return [
        f"{a} (layer {layer_of(a)}) -> {b} (layer {layer_of(b)})"
        for a, targets in sorted(graph.items())
        for b in sorted(targets)
        if layer_of(b) > layer_of(a)
    ]


def test_every_module_of_the_package_has_a_layer() -> None:
    for name in modules():
        assert isinstance(layer_of(name), int), name


def test_a_new_top_level_module_without_a_layer_is_reported() -> None:
    with pytest.raises(LookupError, match="commissaire_tasks.newcomer has no layer"):
        layer_of("commissaire_tasks.newcomer")


def test_no_module_imports_from_a_higher_layer() -> None:
    assert upward_imports(import_graph()) == []


def test_no_two_modules_import_each_other_through_any_chain() -> None:
    assert find_circle(import_graph()) is None


@pytest.mark.parametrize(
    ("graph", "expected"),
    [
        ({"a": {"b"}, "b": {"a"}}, ["a", "b", "a"]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, ["a", "b", "c", "a"]),
        ({"a": {"b"}, "b": set()}, None),
    ],
)
def test_the_circle_finder_finds_circles_and_only_circles(
    graph: dict[str, set[str]], expected: list[str] | None
) -> None:
    assert find_circle(graph) == expected


def test_an_upward_import_is_reported_with_both_layers() -> None:
    graph = {"commissaire_tasks.errors": {"commissaire_tasks.bus"}}
    assert upward_imports(graph) == [
        "commissaire_tasks.errors (layer 0) -> commissaire_tasks.bus (layer 3)"
    ]


def test_a_lazy_import_inside_a_function_counts_and_a_type_checking_one_does_not(
    tmp_path: Path,
) -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from .service import X\n"
        "def f():\n    from .bus import Bus\n"
    )
    visitor = _Imports("commissaire_tasks.worker", False, set(modules()))
    visitor.visit(ast.parse(source))
    assert visitor.found == {"commissaire_tasks.bus"}


def test_no_module_of_the_package_its_tests_bench_or_workers_is_over_400_lines() -> None:
    root = PACKAGE.parent
    folders = (PACKAGE, root / "tests", root / "bench", root / "workers")
    files = [p for folder in folders for p in folder.rglob("*.py")]
    long = {str(p): n for p in files if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}
