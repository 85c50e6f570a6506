"""docs/api.md is the contract: its routes are the OpenAPI document's (and the served pages'), and it names
every ``quiz`` subcommand with its options and every QUIZ_* variable the settings read."""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from contest.cli.main import build_parser
from contest.settings import Settings, SettingsError

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "api.md"
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
# a route is declared by a list item that opens with one code span: "- `GET /api/v1/contests/{cid}` ..."
_DECLARATION = re.compile(rf"^- `({'|'.join(METHODS)}) (/[^`\s]*)`", re.MULTILINE)

Route = tuple[str, str]


def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def declared_routes(text: str) -> list[Route]:
    return [(method, path) for method, path in _DECLARATION.findall(text)]


def route_diff(declared: Iterable[Route], expected: set[Route], expected_name: str) -> list[str]:
    """What is wrong between the routes docs/api.md declares and ``expected``, one line each; [] when they agree."""
    problems: list[str] = []
    seen: set[Route] = set()
    for route in declared:
        if route in seen:
            problems.append(f"declared twice in docs/api.md: {route[0]} {route[1]}")
        seen.add(route)
    problems += [f"in {expected_name}, not declared in docs/api.md: {m} {p}" for m, p in sorted(expected - seen)]
    problems += [f"declared in docs/api.md, not in {expected_name}: {m} {p}" for m, p in sorted(seen - expected)]
    return problems


async def served_routes(client: TestClient[web.Request, web.Application]) -> tuple[set[Route], set[Route]]:
    """(routes of the served OpenAPI document, the other routes the app serves: its pages)."""
    resp = await client.get("/api/openapi.json")
    assert resp.status == 200, await resp.text()
    spec = await resp.json()
    in_spec = {(method.upper(), path) for path, ops in spec["paths"].items() for method in ops
               if method.upper() in METHODS}
    pages: set[Route] = set()
    assert client.app is not None
    for route in client.app.router.routes():
        if route.method == "HEAD" or route.resource is None or isinstance(route.resource, web.StaticResource):
            continue
        path = route.resource.canonical
        if path.startswith("/static/") or (route.method, path) in in_spec:
            continue
        pages.add((route.method, path))
    return in_spec, pages


def test_the_route_diff_names_what_is_missing_on_either_side() -> None:
    text = "- `GET /a` first\n- `POST /b/{cid}` second\nprose: `GET /c` is not a declaration\n- `GET /a` again\n"
    declared = declared_routes(text)
    assert declared == [("GET", "/a"), ("POST", "/b/{cid}"), ("GET", "/a")]
    assert route_diff(declared, {("GET", "/a"), ("GET", "/c")}, "the spec") == [
        "declared twice in docs/api.md: GET /a",
        "in the spec, not declared in docs/api.md: GET /c",
        "declared in docs/api.md, not in the spec: POST /b/{cid}",
    ]
    assert route_diff([("GET", "/a")], {("GET", "/a")}, "the spec") == []


async def test_docs_declare_exactly_the_openapi_routes_and_the_pages(
        client: TestClient[web.Request, web.Application]) -> None:
    in_spec, pages = await served_routes(client)
    assert len(in_spec) >= 50 and ("GET", "/") in pages
    problems = route_diff(declared_routes(doc_text()), in_spec | pages, "the OpenAPI document or the app's pages")
    assert not problems, "docs/api.md and the served routes differ:\n  " + "\n  ".join(problems)


Parser = argparse.ArgumentParser


def _subcommands(parser: Parser, prefix: str = "quiz") -> Iterator[tuple[str, Parser]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _subcommands(sub, f"{prefix} {name}")
            return
    yield prefix, parser


def _long_options(parser: argparse.ArgumentParser) -> list[str]:
    return [opt for action in parser._actions for opt in action.option_strings
            if opt.startswith("--") and opt != "--help"]


def _cli_items(text: str) -> dict[str, str]:
    """Each list item of the "Command line" section, keyed by the command its code span opens with."""
    section = text.split("\n## Command line", 1)[1].split("\n## ", 1)[0]
    items: dict[str, str] = {}
    for item in re.split(r"\n(?=- )", section):
        found = re.match(r"- `(quiz(?: [a-z][a-z-]*)+)", item)
        if found:
            items[found.group(1)] = item
    return items


def test_every_cli_subcommand_and_option_is_in_the_docs() -> None:
    text = doc_text()
    items = _cli_items(text)
    parser = build_parser()
    missing = [f"global option {opt}" for opt in _long_options(parser) if f"`{opt}`" not in text]
    commands = list(_subcommands(parser))
    assert len(commands) >= 12
    for command, sub in commands:
        item = items.get(command)
        if item is None:
            missing.append(f"'{command}' (a list item opening with `{command}` under '## Command line')")
            continue
        missing += [f"'{command} {opt}'" for opt in _long_options(sub) if not re.search(rf"{opt}\b", item)]
    assert not missing, "docs/api.md does not document:\n  " + "\n  ".join(missing)


class _RecordingEnv(dict[str, str]):
    """An environment that notes every variable the settings look up."""

    def __init__(self, values: dict[str, str] | None = None) -> None:
        super().__init__(values or {})
        self.asked: set[str] = set()

    def get(self, key: str, default: str | None = None) -> str | None:  # type: ignore[override]  # dict.get's overloads
        self.asked.add(key)
        return super().get(key, default)


def settings_variables() -> set[str]:
    """Every QUIZ_* name the settings read: looked up while building them, named in their source, and
    each SMS vendor's required variables (named by the error a vendor without them gets)."""
    env = _RecordingEnv()
    Settings.from_env(env)
    names = {name for name in env.asked if name.startswith("QUIZ_")}
    source = (ROOT / "contest" / "settings.py").read_text(encoding="utf-8")
    names |= {name for name in re.findall(r"QUIZ_[A-Z0-9_]*[A-Z0-9]\b", source)}
    for vendor in ("aliyun", "tencent"):
        with pytest.raises(SettingsError) as refused:
            Settings.from_env({"QUIZ_SMS_PROVIDER": vendor})
        vendor_names = re.findall(r"QUIZ_SMS_[A-Z0-9_]+", str(refused.value))
        assert vendor_names, refused.value
        names |= set(vendor_names)
    return names


def test_every_setting_is_in_the_docs() -> None:
    text = doc_text()
    names = settings_variables()
    assert {"QUIZ_REDIS_URL", "QUIZ_RL_ANSWER_USER", "QUIZ_SMS_ALIYUN_SIGN_NAME"} <= names
    missing = sorted(name for name in names if not re.search(rf"`{name}[`=]|\b{name}\b", text))
    assert not missing, f"QUIZ_* variables read by contest/settings.py but not in docs/api.md: {missing}"


def test_every_variable_in_the_docs_is_read_somewhere() -> None:
    """The reverse: a variable the code no longer reads is taken out of docs/api.md too."""
    sources = "\n".join(path.read_text(encoding="utf-8") for package in ("contest", "loadtest")
                        for path in (ROOT / package).rglob("*.py"))
    known = settings_variables() | set(re.findall(r"QUIZ_[A-Z0-9_]*[A-Z0-9]\b", sources))
    prefixes = set(re.findall(r"\b(QUIZ_[A-Z0-9_]+_)\"", sources))

    def read(name: str) -> bool:  # literally, or as a prefix constant plus a literal suffix (``_PREFIX + "REGION"``)
        return name in known or any(name.startswith(p) and f'"{name[len(p):]}"' in sources for p in prefixes)

    named = set(re.findall(r"\bQUIZ_[A-Z0-9_]*[A-Z0-9]\b", doc_text()))
    assert len(named) >= 60
    stale = sorted(name for name in named if not read(name))
    assert not stale, f"docs/api.md names QUIZ_* variables nothing reads: {stale}"
