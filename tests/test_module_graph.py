"""Module structure inside a package: no import cycle, and imports inside functions only of allow-listed
optional or heavy dependencies (docs/design.md, section 1).

The graph is read from the source with `ast`, so an import inside a function or under ``if TYPE_CHECKING:``
counts like any other: hiding an import in a function does not hide a cycle. Importing ``a.b.c`` runs the
``__init__`` of ``a.b`` first, so an import also depends on every package above its target that is not above
the importing module too (those are already being imported); a package's ``__init__`` importing a module that
imports the package back is a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Top-level modules a function may import, each with why it is not imported at module level.
FUNCTION_IMPORTS_ALLOWED = {
    "flopstudy": {
        # ~3 s to import (it pulls pandas) and needed only for the verdicts' Holm adjustment
        "statsmodels": "import weight",
    },
    "segtransfer": {
        # optional: only .safetensors checkpoints need it, and the error without it names the package
        "safetensors": "optional dependency",
    },
}
CHECKED = tuple(FUNCTION_IMPORTS_ALLOWED)


def _modules(package: str) -> dict[str, tuple[Path, bool]]:
    """Dotted module name -> (file, is a package ``__init__``) for every module of ``package``."""
    src = ROOT / "packages" / package / "src"
    out = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        is_init = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_init else parts)] = (path, is_init)
    return out


def _imports(module: str, path: Path, is_init: bool) -> list[tuple[str, list[str], bool, int]]:
    """(absolute module, imported names, inside a function, line) of every import statement in the file."""
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend((alias.name, [], in_function, child.lineno) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = module.split(".") if is_init else module.split(".")[:-1]
                if child.level:
                    base = base[: len(base) - child.level + 1]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                found.append((target, [alias.name for alias in child.names], in_function, child.lineno))
            visit(child, in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda))

    visit(ast.parse(path.read_text(), filename=str(path)), False)
    return found


def module_graph(modules: dict[str, tuple[Path, bool]]) -> dict[str, set[str]]:
    """Module -> the modules of the same package that importing it imports first."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, (path, is_init) in modules.items():
        own_ancestors = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        if is_init:
            own_ancestors.add(name)
        for target, names, _, _ in _imports(name, path, is_init):
            targets = [f"{target}.{n}" for n in names if f"{target}.{n}" in modules] or [target]
            for full in targets:
                parts = full.split(".")
                for i in range(1, len(parts) + 1):
                    step = ".".join(parts[:i])
                    if step in modules and step not in own_ancestors and step != name:
                        graph[name].add(step)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that returns to its start, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := dfs(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := dfs(start)):
            return cycle
    return None


def test_find_cycle_sees_direct_hidden_and_package_init_cycles(tmp_path):
    # a known truth: a cycle through a function-level import, and one through a package __init__
    pkg = tmp_path / "pkg"
    (pkg / "room").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from .b import g\n")
    (pkg / "b.py").write_text("from pkg.a import f\n")
    (pkg / "room" / "__init__.py").write_text("from .inner import x\n")
    (pkg / "room" / "inner.py").write_text("x = 1\n")
    (pkg / "c.py").write_text("from .room.inner import x\n")
    modules = {name: (pkg.parent / (name.replace(".", "/") + ("/__init__.py" if is_init else ".py")), is_init)
               for name, is_init in [("pkg", True), ("pkg.a", False), ("pkg.b", False), ("pkg.room", True),
                                     ("pkg.room.inner", False), ("pkg.c", False)]}
    graph = module_graph(modules)
    assert graph["pkg.a"] == {"pkg.b"} and graph["pkg.b"] == {"pkg.a"}
    assert graph["pkg.c"] == {"pkg.room", "pkg.room.inner"}  # the package __init__ runs first
    assert graph["pkg.room.inner"] == set()  # its own package is already being imported
    assert find_cycle(graph) == ["pkg.a", "pkg.b", "pkg.a"]
    (pkg / "b.py").write_text("")
    (pkg / "room" / "inner.py").write_text("from ..c import y\n")  # room -> inner -> c -> room
    cycle = find_cycle(module_graph(modules))
    assert cycle is not None and cycle[0] == cycle[-1] and {"pkg.c", "pkg.room", "pkg.room.inner"} <= set(cycle)
    (pkg / "room" / "inner.py").write_text("x = 1\n")
    assert find_cycle(module_graph(modules)) is None


@pytest.mark.parametrize("package", CHECKED)
def test_no_import_cycle(package):
    cycle = find_cycle(module_graph(_modules(package)))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("package", CHECKED)
def test_function_level_imports_only_of_allowed_dependencies(package):
    allowed = FUNCTION_IMPORTS_ALLOWED[package]
    bad = [f"{path.relative_to(ROOT)}:{line}: {target}"
           for name, (path, is_init) in _modules(package).items()
           for target, _, in_function, line in _imports(name, path, is_init)
           if in_function and target.split(".")[0] not in allowed]
    assert not bad, "imports inside functions (move them to the top of the module):\n" + "\n".join(bad)
