"""The shape of the package: no import cycle, no private imports, honest `__all__` lists.

The import graph is read from the source with `ast`, without importing anything. An
edge goes from a module to each `keras_recae` module it names in an `import` or
`from ... import` statement, wherever the statement is: at the top, inside a function
(run later, but the two modules still depend on each other) or under `TYPE_CHECKING`.
A `from package import name` where `package.name` is a module is an edge to that
module; otherwise to the package. The parent packages that Python runs before a
module are not edges: `keras_recae/__init__.py` imports the subpackages, so every
module would otherwise be in a cycle with it.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import keras_recae

PACKAGE = Path(keras_recae.__file__).parent
ROOT = PACKAGE.parent
# Scripts that use the package as a library, and so only its public names.
CLIENTS = sorted((ROOT / "benchmarks").glob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def absolute(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    """The module a `from` import names, relative imports resolved."""
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    # A package's own name is its first level; a module's is its parent package.
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def imports(path: Path) -> list[tuple[str, str | None, int]]:
    """`(module, name, line)` for every import in the file: `name` is the name taken
    from `module` by `from module import name`, else None."""
    importer = module_name(path) if path.is_relative_to(PACKAGE) else path.stem
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = absolute(node, importer, path.name == "__init__.py")
            found += [(module, alias.name, node.lineno) for alias in node.names]
    return [entry for entry in found if entry[0].split(".")[0] == "keras_recae"]


def import_graph() -> dict[str, dict[str, int]]:
    """Module -> {imported package module: line of the first such import}."""
    graph = {}
    for importer, path in MODULES.items():
        edges = graph.setdefault(importer, {})
        for module, name, line in imports(path):
            target = f"{module}.{name}" if f"{module}.{name}" in MODULES else module
            while target not in MODULES:
                target = target.rpartition(".")[0]
            if target != importer:
                edges.setdefault(target, line)
    return graph


def find_cycle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    """One cycle of the graph as a list of modules (the first repeated at the end)."""
    state = {}
    stack = []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in sorted(graph.get(node, {})):
            if state.get(target) == "open":
                return stack[stack.index(target) :] + [target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def describe(cycle: list[str], graph: dict[str, dict[str, int]]) -> str:
    steps = [
        f"{MODULES[a].relative_to(ROOT)}:{graph[a][b]} imports {b}"
        for a, b in zip(cycle, cycle[1:])
    ]
    return "Import cycle:\n  " + "\n  ".join(steps)


def test_the_import_graph_sees_the_package():
    graph = import_graph()
    assert "keras_recae.models" in graph["keras_recae"]
    assert "keras_recae.models.recommender" in graph["keras_recae.models"]


def test_find_cycle_names_a_cycle():
    graph = {"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3, "d": 4}, "d": {}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b": 1}, "b": {}, "c": {"b": 5}}) is None


def test_no_import_cycle():
    graph = import_graph()
    cycle = find_cycle(graph)
    assert cycle is None, describe(cycle, graph)


def private_uses(path: Path, root: Path = ROOT) -> list[str]:
    """Where the file imports a private module or name of another package module, or
    reads a private attribute of a package module it imported (`path:line` from `root`)."""
    offenders = []
    importer = module_name(path) if path.is_relative_to(PACKAGE) else None
    modules = {}
    for module, name, line in imports(path):
        where = f"{path.relative_to(root)}:{line}"
        if module == importer:
            continue
        if any(is_private(part) for part in module.split(".")):
            offenders.append(f"{where} imports the private module {module}")
        elif name is not None and is_private(name):
            offenders.append(f"{where} imports the private name {module}.{name}")
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "keras_recae":
                    modules[alias.asname or alias.name.split(".")[0]] = alias.name
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("keras_recae"):
            for alias in node.names:
                if f"{node.module}.{alias.name}" in MODULES:
                    modules[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and is_private(node.attr)
            and modules[node.value.id] != importer
        ):
            offenders.append(
                f"{path.relative_to(root)}:{node.lineno} reads the private name "
                f"{modules[node.value.id]}.{node.attr}"
            )
    return list(dict.fromkeys(offenders))


@pytest.mark.parametrize(
    "paths",
    [
        pytest.param(list(MODULES.values()), id="keras_recae"),
        pytest.param(CLIENTS, id="benchmarks"),
    ],
)
def test_no_private_imports(paths):
    offenders = [offender for path in paths for offender in private_uses(path)]
    assert not offenders, "Private names used across modules:\n  " + "\n  ".join(offenders)


def test_private_uses_are_found(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(
        "from keras_recae.models._common import check\n"
        "from keras_recae.cli import _train\n"
        "from keras_recae import cli\n"
        "cli._fit()\n"
        "from keras_recae.cli import __doc__, main\n"
    )
    assert private_uses(script, root=tmp_path) == [
        "script.py:1 imports the private module keras_recae.models._common",
        "script.py:2 imports the private name keras_recae.cli._train",
        "script.py:4 reads the private name keras_recae.cli._fit",
    ]


PACKAGES = sorted(name for name, path in MODULES.items() if path.name == "__init__.py")


@pytest.mark.parametrize("package", PACKAGES)
def test_all_lists_names_that_exist(package):
    module = importlib.import_module(package)
    assert hasattr(module, "__all__"), f"{package} has no `__all__`"
    names = list(module.__all__)
    assert len(names) == len(set(names)), f"{package}.__all__ repeats names"
    missing = [name for name in names if not hasattr(module, name)]
    assert not missing, f"{package}.__all__ lists names it does not have: {missing}"
