"""The package's imports point one way, down the data flow, and form no cycle.

Every import statement of every module counts, function-local and ``TYPE_CHECKING`` ones
included. A module may import modules of its own top-level package and of packages in a lower
layer; anything else is an upward (or sideways) import and fails here, naming the line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import tfrecs_llm

PACKAGE_DIR = Path(tfrecs_llm.__file__).parent

LAYERS: dict[str, int] = {
    "config": 0, "types": 0,
    "data": 1,
    "text": 2,
    "towers": 3, "losses": 3, "metrics": 3, "index": 3,
    "models": 4,
    "ranking": 5,
    "training": 6,
    "evaluation": 7, "export": 7,
    "recommender": 8,
    "serving": 9,
    "cli": 10,
    "__main__": 11,
}  # fmt: skip
"""Layer of each top-level module or package: config -> data, text -> towers, losses, metrics,
index -> models -> ranking -> training -> evaluation, export -> recommender -> serving -> cli."""

MAX_LINES = 400


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE_DIR.rglob("*.py"):
        parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[int, str]]:
    """(line, imported tfrecs_llm module) for every import statement of the module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
            if node.level:
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            targets = [f"{prefix}.{alias.name}" for alias in node.names] + [prefix]
        else:
            continue
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != "tfrecs_llm" and target != name and not name.startswith(target + "."):
                found.append((node.lineno, target))
    return found


GRAPH = {name: sorted({target for _, target in _imports(name, path)}) for name, path in MODULES.items()}


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return None if len(parts) < 2 else LAYERS.get(parts[1])


def test_every_top_level_module_and_package_has_a_layer() -> None:
    tops = {name.split(".")[1] for name in MODULES if name != "tfrecs_llm"}
    assert sorted(tops - set(LAYERS)) == []
    loose = sorted(
        name for name, path in MODULES.items() if name.count(".") == 1 and path.name != "__init__.py"
    )
    assert loose == [
        "tfrecs_llm.__main__", "tfrecs_llm.config", "tfrecs_llm.recommender", "tfrecs_llm.types"
    ]


def test_imports_point_down_the_layers() -> None:
    upward = []
    for name, path in MODULES.items():
        if name == "tfrecs_llm":
            continue
        for line, target in _imports(name, path):
            same_package = target.split(".")[1] == name.split(".")[1]
            if not same_package and not _layer(target) < _layer(name):
                upward.append(f"{path.relative_to(PACKAGE_DIR.parent)}:{line} imports {target}")
    assert upward == []


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph.get(node, []):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_import_graph_has_no_cycle() -> None:
    assert _cycles(GRAPH) == []


def test_the_cycle_finder_finds_cycles() -> None:
    graph = {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"], "e": ["e"]}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_modules_stay_small() -> None:
    lengths = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    assert {name: n for name, n in lengths.items() if n > MAX_LINES} == {}, "split these by concept"
