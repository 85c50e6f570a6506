"""mypy --strict covers the four packages (.ci/run runs it), and each ``# type: ignore`` it
still needs names its error code and says why on the same line (issue 19)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {"contest", "leaderboard", "question_bank", "loadtest"}
# the code in brackets, then what follows it on the line
_IGNORE = re.compile(r"#\s*type:\s*ignore(\[[^\]]*\])?(.*)$")
_REASON = re.compile(r"\s*#\s*\S")


def _mypy_config() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as fh:
        config: dict[str, Any] = tomllib.load(fh)["tool"]["mypy"]
    return config


def test_mypy_is_strict_over_the_four_packages() -> None:
    config = _mypy_config()
    assert config["strict"] is True
    assert set(config["files"]) == PACKAGES
    # per-module overrides only relax imports of named third-party modules, never errors
    for override in config.get("overrides", []):
        assert set(override) <= {"module", "ignore_missing_imports"}, override


def test_every_type_ignore_has_a_code_and_a_reason() -> None:
    bare = []
    for package in sorted(PACKAGES):
        for path in sorted((ROOT / package).rglob("*.py")):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                found = _IGNORE.search(line)
                if found and (not found.group(1) or not _REASON.match(found.group(2))):
                    bare.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert not bare, "a type: ignore needs its [code] and '  # why' after it:\n" + "\n".join(bare)
