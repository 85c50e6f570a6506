"""The shape of the code itself (issue 19, item 5): who may import whom, and no copied blocks.

Both checks read the source as text (ast and tokenize); nothing is imported or run, so a module
that would fail to import is still checked, and a function-level or TYPE_CHECKING import counts
like a top-level one: it is a dependency all the same, only a hidden one.
"""

from __future__ import annotations

import ast
import hashlib
import io
import keyword
import token
import tokenize
from collections import defaultdict
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


# --- repeated blocks ----------------------------------------------------------------------------

WINDOW = 6
# a window must carry this many tokens after normalisation: six lines of `x = y` or of closing
# brackets share a shape by accident, not by copy-paste
MIN_TOKENS = 30
# and this many lines that are not declarations: a dataclass's fields, a dict's entries, a call's
# keyword arguments or a signature's parameters have the same shape wherever they are
# (`name: type`, `"key": value,`, `name=value,`), so six of them in a row, under a decorator and
# a class line, are two records that happen to have fields of the same types, not copied logic
MIN_STATEMENTS = 3


def _is_declaration(shape: tuple[str, ...]) -> bool:
    if shape[0] in ("@", "class") or all(part in ")]}:,->" for part in shape):
        return True
    if len(shape) > 1 and shape[0] in ("N", "C") and shape[1] == ":":
        return True  # a field or parameter `name: type [= default]`, a dict entry `"key": value`
    if len(shape) > 2 and shape[:2] == ("N", "=") and shape[-1] == ",":
        return True  # a keyword argument on its own line
    if shape == ("self", ".", "N", "=", "N"):
        return True  # a constructor keeping an argument: every __init__ is a run of these
    return len(shape) <= 2 and shape[-1] == ","  # a lone element of a list or tuple


def _code_lines(path: Path) -> list[tuple[int, tuple[str, ...]]]:
    """(line number, normalised tokens) of each physical line of code worth comparing.

    Physical lines, not logical ones: a row builder or a query call spans a dozen lines but is one
    logical line, and copying it is what this test is for. Names become N, strings and numbers C;
    keywords, operators and brackets stay. Comments, blank lines, docstrings (a statement that is
    only a string) and import statements are dropped.
    """
    text = path.read_text(encoding="utf-8")
    lines: list[tuple[int, tuple[str, ...]]] = []
    statement: dict[int, list[str]] = {}
    kinds: list[int] = []
    skip = (tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING)
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type in skip:
            continue
        if tok.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
            shapes = [shape for _, shape in sorted(statement.items())]
            first = shapes[0][0] if shapes else ""
            docstring = bool(kinds) and all(kind in _STRING_TOKENS for kind in kinds)
            if shapes and first not in ("import", "from") and not docstring:
                lines.extend((number, tuple(shape)) for number, shape in sorted(statement.items()))
            statement, kinds = {}, []
            continue
        kinds.append(tok.type)
        shape = statement.setdefault(tok.start[0], [])
        if tok.type == token.NAME:
            shape.append(tok.string if tok.string in _KEYWORDS else "N")
        elif tok.type in _STRING_TOKENS or tok.type == token.NUMBER:
            # an f-string arrives as several tokens, and "a" "b" is one string: one constant
            if not (shape and shape[-1] == "C" and tok.type in _STRING_TOKENS):
                shape.append("C")
        else:
            shape.append(tok.string)
    return lines


_KEYWORDS = frozenset([*keyword.kwlist, "self", "cls"])
_STRING_TOKENS = {token.STRING} | {
    getattr(token, name) for name in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END") if hasattr(token, name)
}


def _windows(path: Path) -> Iterator[tuple[str, int, int]]:
    """(hash, first line, last line) of every window of WINDOW lines of code worth comparing."""
    lines = _code_lines(path)
    for first in range(len(lines) - WINDOW + 1):
        window = lines[first : first + WINDOW]
        shapes = [shape for _, shape in window]
        if sum(len(shape) for shape in shapes) < MIN_TOKENS:
            continue
        if sum(not _is_declaration(shape) for shape in shapes) < MIN_STATEMENTS:
            continue
        digest = hashlib.blake2b(repr(shapes).encode(), digest_size=12).hexdigest()
        yield digest, window[0][0], window[-1][0]


def _repeats(paths: list[Path]) -> list[str]:
    """file:line pairs of windows that stand in two different modules; overlapping windows of the
    same pair of places are merged into one run."""
    places: dict[str, list[tuple[Path, int, int]]] = defaultdict(list)
    for path in paths:
        for digest, first, last in _windows(path):
            places[digest].append((path, first, last))
    runs: dict[tuple[Path, Path], list[list[int]]] = defaultdict(list)
    for found in places.values():
        for i, (path_a, first_a, last_a) in enumerate(found):
            for path_b, first_b, last_b in found[i + 1 :]:
                if path_a == path_b:
                    continue
                (path_a2, a1, a2), (path_b2, b1, b2) = sorted(
                    [(path_a, first_a, last_a), (path_b, first_b, last_b)]
                )
                merged = runs[(path_a2, path_b2)]
                for run in merged:
                    if run[0] <= a1 <= run[1] + 1 and run[2] <= b1 <= run[3] + 1:
                        run[1], run[3] = max(run[1], a2), max(run[3], b2)
                        break
                else:
                    merged.append([a1, a2, b1, b2])
    report = []
    for (path_a, path_b), merged in sorted(runs.items()):
        for a1, a2, b1, b2 in sorted(merged):
            report.append(f"{_shown(path_a)}:{a1}-{a2} ~ {_shown(path_b)}:{b1}-{b2}")
    return report


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def test_repeat_finder_catches_a_renamed_copy(tmp_path: Path) -> None:
    """The finder itself: a block copied into another module with other names is found, once; a
    block repeated inside one module, and records whose fields happen to match, are not."""
    block = (
        "def {f}(rows, {x}):\n"
        "    total = 0\n"
        "    for row in rows:\n"
        "        if row['{k}'] > {x}:\n"
        "            total += row['{k}'] * 2\n"
        "        else:\n"
        "            total -= len(row) + {n}\n"
        "    return total\n"
    )
    inside = (
        "def {f}(path):\n"
        "    with open(path) as handle:\n"
        "        lines = [line.strip() for line in handle if line.strip()]\n"
        "    if not lines:\n"
        "        raise ValueError(f'{{path}} is empty')\n"
        "    return {{line.split('=')[0]: line.split('=')[1] for line in lines}}\n"
    )
    record = (
        "@dataclass(frozen=True, slots=True)\n"
        "class {name}:\n" + "".join(f"    {{p}}{i}: int = {i}\n" for i in range(8))
    )
    files = {
        "a.py": block.format(f="score", x="limit", k="points", n=1),
        "b.py": "import os\n\n" + block.format(f="weigh", x="cap", k="grams", n=7),
        "c.py": inside.format(f="read_one") + "\n\n" + inside.format(f="read_two"),
        "d.py": record.format(name="Box", p="side"),
        "e.py": record.format(name="Crate", p="slot"),
    }
    for name, source in files.items():
        (tmp_path / name).write_text(source, encoding="utf-8")
    found = _repeats([tmp_path / name for name in files])
    assert len(found) == 1 and "a.py:1-" in found[0] and "b.py:3-" in found[0], found


def test_no_block_repeated_between_modules() -> None:
    paths = sorted(_modules().values())
    found = _repeats(paths)
    assert not found, f"{len(found)} blocks of {WINDOW}+ lines repeated between modules:\n" + "\n".join(found)
