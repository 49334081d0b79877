"""Import layers, checked over the source tree with ast (nothing is imported, so it takes well under a second).

- libs/: the shared logic; imports libs only.
- training/: trains, evaluates and exports models; imports libs and training.
- services/<name>/: one package per service; imports libs and its own package. Services talk over gRPC only.
- tools/, loadtest/, deploy/: operations, the top layer. They import libs, training and each other; a service
  only through its entry point (services.<name>.__main__): they start services as processes (libs.stack).
Nothing below the top layer imports it. Third-party imports are not checked. A dotted path in a string (the ranker
registry's PyTorch module class, resolved in training) is not an import.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("libs", "training", "services", "tools", "loadtest", "deploy")
TOP = ("tools", "loadtest", "deploy")


def imported_modules(source: str, package: tuple[str, ...]) -> Iterator[tuple[int, str]]:
    """(line, module) for every import in `source`; `from a import b` yields a and a.b (b may be a module);
    relative imports are resolved against `package`."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(
                [*package[: len(package) - node.level + 1], node.module or ""] if node.level else [node.module or ""]
            ).strip(".")
            yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def violation(source_parts: tuple[str, ...], module: str) -> str | None:
    """Why a file at `source_parts` (path parts from the repository root) must not import `module`, or None."""
    layer, target = source_parts[0], module.split(".")
    if target[0] not in LAYERS:
        return None
    if layer == "libs" and target[0] != "libs":
        return "libs imports only libs"
    if layer == "training" and target[0] not in ("libs", "training"):
        return "training imports only libs and training"
    if layer == "services" and target[0] != "libs":
        own = len(source_parts) > 2 and len(target) > 1 and target[1] == source_parts[1]
        if target[0] != "services" or (len(target) > 1 and not own):
            return "a service imports only libs and its own package"
    if layer in TOP and target[0] == "services" and len(target) > 2 and target[2] != "__main__":
        return "operations import a service only through its entry point (services.<name>.__main__)"
    return None


def source_files() -> list[Path]:
    return sorted(
        p for layer in LAYERS for p in (ROOT / layer).rglob("*.py") if "gen" not in p.relative_to(ROOT).parts[:2]
    )


def test_the_source_tree_keeps_its_layers():
    files = source_files()
    assert len(files) > 100  # the tree was found
    found = []
    for path in files:
        parts = path.relative_to(ROOT).parts
        for line, module in imported_modules(path.read_text(encoding="utf-8"), parts[:-1]):
            if why := violation(parts, module):
                found.append(f"{Path(*parts)}:{line} imports {module}: {why}")
    assert not found, "\n".join(sorted(set(found)))


@pytest.mark.parametrize(
    ("source", "module", "allowed"),
    [
        ("libs/ranking.py", "libs.features", True),
        ("libs/ranking.py", "numpy", True),
        ("libs/rankers/gnn_ranker.py", "training.models.rankers", False),
        ("libs/x.py", "services.gateway.servicer", False),
        ("libs/x.py", "tools.stack", False),
        ("libs/x.py", "loadtest.floor", False),
        ("training/loop_eval.py", "libs.stack", True),
        ("training/loop_eval.py", "tools.stack", False),
        ("training/x.py", "services.gateway.servicer", False),
        ("services/gateway/__main__.py", "services.gateway.servicer", True),
        ("services/gateway/__main__.py", "services", True),
        ("services/gateway/__main__.py", "services.ranking.servicer", False),
        ("services/gateway/__main__.py", "training.models", False),
        ("services/gateway/__main__.py", "tools.stack", False),
        ("loadtest/floor.py", "libs.gateway", True),
        ("loadtest/chaos.py", "tools.stack", True),
        ("loadtest/scale.py", "training.models.rankers", True),
        ("loadtest/floor.py", "services.gateway.servicer", False),
        ("tools/stack.py", "services.gateway.__main__", True),
    ],
)
def test_the_rules(source: str, module: str, allowed: bool):
    assert (violation(Path(source).parts, module) is None) == allowed


def test_relative_and_from_imports_are_resolved():
    source = "from . import core\nfrom ..ranking import servicer\nimport services.gateway.clients as c\n"
    got = [m for _, m in imported_modules(source, ("services", "gateway"))]
    assert got == [
        "services.gateway",
        "services.gateway.core",
        "services.ranking",
        "services.ranking.servicer",
        "services.gateway.clients",
    ]
    assert [violation(("services", "gateway", "x.py"), m) is None for m in got] == [True, True, False, False, True]
