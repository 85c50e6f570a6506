"""The shape of the code itself (issue 19, item 5): who may import whom.

Both checks read the source as text (ast and tokenize); nothing is imported or run, so a module
that would fail to import is still checked, and a function-level or TYPE_CHECKING import counts
like a top-level one: it is a dependency all the same, only a hidden one.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("contest", "leaderboard", "question_bank")
# the only packages allowed to import the web layer: itself and the command line that starts it
WEB = "contest.web"
MAY_IMPORT_WEB = ("contest.web", "contest.cli")
# the domain packages that stay free of the HTTP framework
NO_AIOHTTP = ("leaderboard", "question_bank")


def _modules() -> dict[str, Path]:
    """Every module of the three packages by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def _imports(name: str, path: Path, modules: dict[str, Path]) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import statement anywhere in the module.

    ``from pkg import name`` names the submodule ``pkg.name`` when there is one, else ``pkg``;
    a relative import is resolved against the module's package. Names outside the three packages
    (aiohttp, redis...) are yielded as written.
    """
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                yield (submodule if submodule in modules else source), node.lineno


def _graph() -> tuple[dict[str, Path], dict[str, dict[str, int]]]:
    """The modules and, for each, what it imports (first line of each import)."""
    modules = _modules()
    edges: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        targets: dict[str, int] = {}
        for target, line in _imports(name, path, modules):
            targets.setdefault(target, line)
        edges[name] = targets
    return modules, edges


def _cycles(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (or a module importing itself),
    by Tarjan's algorithm over the edges between our own modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in edges[node]:
            if target not in edges:
                continue
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in edges[node]:
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def test_import_walker_sees_function_level_and_type_checking_imports(tmp_path: Path) -> None:
    """The walker itself: an import inside a function, under TYPE_CHECKING and a relative one."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "from . import sibling\n"
        "if TYPE_CHECKING:\n"
        "    from contest.web.app import create_app\n"
        "def later():\n"
        "    import aiohttp\n"
    )
    path = tmp_path / "mod.py"
    path.write_text(source, encoding="utf-8")
    modules = {"pkg.mod": path, "pkg.sibling": path, "contest.web.app": path}
    found = {target for target, _ in _imports("pkg.mod", path, modules)}
    assert {"pkg.sibling", "contest.web.app", "aiohttp", "typing"} <= found
    assert _cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}) == [["a", "b", "c"]]


def test_layers_and_no_import_cycles() -> None:
    modules, edges = _graph()
    assert WEB in modules and "contest.cli.main" in modules, "the walker found no web layer: paths changed?"
    wrong: list[str] = []
    for name, targets in sorted(edges.items()):
        where = modules[name].relative_to(ROOT)
        for target, line in targets.items():
            if _within(target, WEB) and not any(_within(name, allowed) for allowed in MAY_IMPORT_WEB):
                wrong.append(f"{where}:{line}: {name} imports {target} (only contest.web and contest.cli may)")
            if _within(target, "aiohttp") and any(_within(name, pure) for pure in NO_AIOHTTP):
                wrong.append(f"{where}:{line}: {name} imports aiohttp (the domain packages stay free of it)")
    for component in _cycles(edges):
        members = set(component)
        links = [
            f"{modules[name].relative_to(ROOT)}:{line} {name} -> {target}"
            for name in component
            for target, line in edges[name].items()
            if target in members
        ]
        wrong.append("import cycle among " + ", ".join(component) + ":\n    " + "\n    ".join(links))
    assert not wrong, "\n".join(wrong)
