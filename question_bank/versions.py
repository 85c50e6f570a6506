"""Question versions: a question drawn into an attempt is never changed or deleted.

Editing a drawn question ``X`` adds a new version ``X~2`` (then ``X~3``...) and retires the one
that was served: it stays in the bank, so running attempts, answer reviews and exports keep
showing the text that was served, but it is never drawn again.  A question nobody has drawn
is changed in place (or deleted).  Imports follow the same rule, comparing a row with the
latest version of its id.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Collection, Iterable

from .bank import QuestionBank
from .model import Question

__all__ = ["base_id", "latest_version", "plan_delete", "plan_upsert", "retire_superseded", "version_of"]

_VERSION_RE = re.compile(r"^(.*)~(\d+)$")


def base_id(qid: str) -> str:
    """'q1~3' -> 'q1'; an id without a version suffix is its own base."""
    match = _VERSION_RE.match(qid)
    return match.group(1) if match else qid


def version_of(qid: str) -> int:
    match = _VERSION_RE.match(qid)
    return int(match.group(2)) if match else 1


def _with_version(base: str, version: int) -> str:
    return base if version == 1 else f"{base}~{version}"


def latest_version(bank: QuestionBank, qid: str) -> Question | None:
    """The newest version in ``bank`` of the question ``qid`` belongs to (any version's id)."""
    base = base_id(qid)
    best: Question | None = bank.get(base)
    n = 2
    while (q := bank.get(_with_version(base, n))) is not None:  # versions are consecutive
        best, n = q, n + 1
    return best


def _same(incoming: Question, current: Question) -> bool:
    """The same question but for its id and retired flag."""
    return dataclasses.replace(incoming, id=current.id, retired=current.retired) == current


def plan_upsert(bank: QuestionBank, incoming: Iterable[Question], drawn: Collection[str]) -> list[Question]:
    """What to install for ``incoming``: unchanged rows are dropped, rows for undrawn questions
    replace them in place, rows for drawn ones become a new version plus the old one retired."""
    out: dict[str, Question] = {}
    for q in incoming:
        current = latest_version(bank, q.id)
        if current is None:
            out[q.id] = q
            continue
        if _same(q, current) and not current.retired:
            continue
        if current.id in drawn or current.retired:
            new_id = _with_version(base_id(current.id), version_of(current.id) + 1)
            out[new_id] = dataclasses.replace(q, id=new_id, retired=False)
            if not current.retired:
                out[current.id] = dataclasses.replace(current, retired=True)
        else:
            out[current.id] = dataclasses.replace(q, id=current.id, retired=False)
    return list(out.values())


def plan_delete(bank: QuestionBank, qid: str, drawn: Collection[str]) -> tuple[list[Question], list[str]]:
    """(questions to install as retired, ids to remove) for deleting ``qid``: a drawn version is
    retired, an undrawn one removed."""
    q = bank.get(qid)
    if q is None:
        return [], []
    if qid in drawn:
        return ([] if q.retired else [dataclasses.replace(q, retired=True)]), []
    return [], [qid]


def retire_superseded(questions: Iterable[Question]) -> list[Question]:
    """Questions as loaded from the database (which keeps no retired flag): every version but
    the newest of each question is retired, so a bank rebuilt after a Redis loss draws the same."""
    items = list(questions)
    newest: dict[str, int] = {}
    for q in items:
        base = base_id(q.id)
        newest[base] = max(newest.get(base, 0), version_of(q.id))
    return [dataclasses.replace(q, retired=True) if version_of(q.id) < newest[base_id(q.id)] else q for q in items]
