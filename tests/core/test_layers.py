"""The import structure: core depends on no domain, and no package imports itself back."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app"


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in APP.rglob("*.py"):
        parts = path.relative_to(APP.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> Iterator[str]:
    """Every `app.*` module `path` imports, wherever the import statement sits."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("app"):
            yield node.module
            for alias in node.names:
                if f"{node.module}.{alias.name}" in MODULES:
                    yield f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("app."))


def _package(module: str) -> str:
    """`app.auth.service` -> `auth`; a top-level module (`app.main`) is its own node."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "app"


def _package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        source = _package(name)
        for target in map(_package, _imports(path)):
            if target not in (source, "app"):
                graph.setdefault(source, set()).add(target)
    return graph


def test_core_imports_no_domain() -> None:
    offenders = {
        f"{name} -> {target}"
        for name, path in MODULES.items()
        if name.startswith("app.core")
        for target in _imports(path)
        if not target.startswith("app.core") and target != "app"
    }
    assert not offenders


def test_no_import_cycle_between_packages() -> None:
    graph = _package_graph()
    done: set[str] = set()
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt in trail:  # a back edge: `nxt` imports itself through `trail`
                cycles.append([*trail[trail.index(nxt) :], nxt])
            elif nxt not in done:
                visit(nxt, [*trail, nxt])
        done.add(node)

    for start in sorted(graph):
        if start not in done:
            visit(start, [start])
    assert not cycles, cycles[:5]


def test_identity_is_a_leaf_above_core() -> None:
    assert _package_graph().get("identity", set()) <= {"core"}


def test_the_graph_is_read() -> None:
    # Guards the checks above against reading nothing.
    graph = _package_graph()
    assert "identity" in graph["proxy"] and "auth" in graph["admin"]
