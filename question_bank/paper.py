"""Drawing a paper (the questions of one attempt) from the bank: seeded, reproducible, uniform.

Rules are served most specific first (category and difficulty, then one of them, then
neither) and no question appears twice. Feasibility is decided exactly, as a small flow
problem over (category, difficulty) cells, so a rule set that passes ``check_rules`` can
never fail in ``draw_paper`` whatever the seed.
"""

from __future__ import annotations

import hashlib
import random
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, replace

from .bank import Cell, QuestionBank
from .errors import PaperError
from .model import OPTION_KEYS, Question

__all__ = [
    "DrawRule",
    "PaperItem",
    "check_rules",
    "draw_paper",
    "original_keys",
    "render_question",
    "shown_answer",
]

# Rejection sampling keeps a constrained draw uniform; after this many misses take a feasible split.
_MAX_RETRIES = 32


@dataclass(frozen=True)
class DrawRule:
    category: str | None
    difficulty: int | None
    count: int

    def describe(self) -> str:
        category = "any category" if self.category is None else f"category {self.category!r}"
        difficulty = "any difficulty" if self.difficulty is None else f"difficulty {self.difficulty}"
        return f"{category}, {difficulty}"


@dataclass(frozen=True, slots=True)
class PaperItem:
    question_id: str
    # perm[i] is the original option index shown at display position i.
    perm: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class _Step:
    position: int  # index in the caller's rule list
    rule: DrawRule
    cells: tuple[Cell, ...]
    pool: tuple[str, ...]
    pool_set: frozenset[str]
    overlaps_earlier: bool  # earlier steps may have taken some of this pool
    lookahead: bool  # how this draw splits over cells can starve a later step


@dataclass(frozen=True, slots=True)
class _Plan:
    steps: tuple[_Step, ...]
    problems: tuple[str, ...]


def check_rules(bank: QuestionBank, rules: Sequence[DrawRule]) -> list[str]:
    """Human-readable reasons the bank cannot fill these rules; empty when it can."""
    return list(_plan(bank, rules).problems)


def draw_paper(
    bank: QuestionBank,
    rules: Sequence[DrawRule],
    seed: int | str | bytes,
    *,
    shuffle_questions: bool,
    shuffle_options: bool,
) -> list[PaperItem]:
    """The paper for ``seed``: same seed and same bank contents give the same paper."""
    plan = _plan(bank, rules)
    if plan.problems:
        raise PaperError("; ".join(plan.problems))
    rng = random.Random(_seed_int(seed))
    used: set[str] = set()
    drawn: list[tuple[int, list[str]]] = []
    for index, step in enumerate(plan.steps):
        if step.lookahead:
            picks = _draw_checked(bank, plan.steps, index, used, rng)
        else:
            picks = _draw(rng, step, used)
        used.update(picks)
        drawn.append((step.position, picks))
    # Unshuffled papers follow the caller's rule order, and id order within a rule.
    drawn.sort(key=lambda entry: entry[0])
    ids = [qid for _, picks in drawn for qid in sorted(picks)]
    if shuffle_questions:
        rng.shuffle(ids)
    return [PaperItem(qid, _perm(bank[qid], rng, shuffle_options)) for qid in ids]


def shown_answer(question: Question, perm: Sequence[int]) -> str:
    """The correct keys as the participant sees them under ``perm``, sorted ('A' with (2,0,1) -> 'B')."""
    return "".join(
        OPTION_KEYS[i] for i, original in enumerate(perm) if OPTION_KEYS[original] in question.answer
    )


def original_keys(perm: Sequence[int], shown: str) -> str:
    """Map displayed keys back to original keys, sorted; unknown keys raise PaperError."""
    try:
        return "".join(sorted(OPTION_KEYS[perm[OPTION_KEYS.index(key)]] for key in shown))
    except (ValueError, IndexError):
        raise PaperError(f"option key(s) {shown!r} not on this question") from None


def render_question(question: Question, perm: Sequence[int], index: int) -> dict[str, object]:
    """Participant-facing form. Deliberately built field by field: no answer, no explanation."""
    if sorted(perm) != list(range(len(question.options))):
        raise PaperError(f"perm {tuple(perm)} does not fit question {question.id!r}")
    return {
        "index": index,
        "type": question.type,
        "stem": question.stem,
        "options": [{"key": OPTION_KEYS[i], "text": question.options[o]} for i, o in enumerate(perm)],
        "points": question.points,
    }


def _seed_int(seed: int | str | bytes) -> int:
    if isinstance(seed, bytes):
        raw = seed
    elif isinstance(seed, str):
        raw = seed.encode("utf-8")
    elif isinstance(seed, int) and not isinstance(seed, bool):
        raw = str(seed).encode("ascii")
    else:
        raise TypeError(f"seed must be int, str or bytes, not {type(seed).__name__}")
    # Hashing spreads related seeds (attempt ids differing in one digit) over the whole state.
    return int.from_bytes(hashlib.sha256(raw).digest(), "big")


def _perm(question: Question, rng: random.Random, shuffle: bool) -> tuple[int, ...]:
    n = len(question.options)
    # Judge options keep their 正确/错误 order: shuffling them only confuses.
    if not shuffle or question.type == "judge":
        return tuple(range(n))
    order = list(range(n))
    rng.shuffle(order)
    return tuple(order)


def _draw(rng: random.Random, step: _Step, used: set[str]) -> list[str]:
    count = step.rule.count
    if not step.overlaps_earlier or not used:
        return rng.sample(step.pool, count)
    # Sampling count + (used ids in the pool) and dropping the used ones is a uniform
    # sample of the remaining pool, without copying a pool of thousands.
    taken = sum(1 for qid in used if qid in step.pool_set)
    sample = rng.sample(step.pool, min(len(step.pool), count + taken))
    return [qid for qid in sample if qid not in used][:count]


def _draw_checked(
    bank: QuestionBank, steps: Sequence[_Step], index: int, used: set[str], rng: random.Random
) -> list[str]:
    supply = bank.cells()
    for qid in used:
        supply[_cell(bank[qid])] -= 1
    later = steps[index + 1 :]
    demand = sum(s.rule.count for s in later)
    for _ in range(_MAX_RETRIES):
        picks = _draw(rng, steps[index], used)
        left = dict(supply)
        for qid in picks:
            left[_cell(bank[qid])] -= 1
        if sum(_max_flow(later, left)[0]) == demand:
            return picks
    # Rare: the feasible splits are a small fraction. Take the flow's split, uniform within cells.
    _, flows = _max_flow(steps[index:], supply)
    picks = []
    for cell, amount in sorted(flows[0].items(), key=lambda item: _cell_sort_key(item[0])):
        available = [qid for qid in bank.cell_ids(*cell) if qid not in used]
        picks.extend(rng.sample(available, amount))
    return picks


def _cell(question: Question) -> Cell:
    return (question.category, question.difficulty)


def _cell_sort_key(cell: Cell) -> tuple[str, int]:
    return (cell[0] or "", cell[1] or 0)


def _plan(bank: QuestionBank, rules: Sequence[DrawRule]) -> _Plan:
    rules = tuple(rules)
    return bank.memo(("paper-plan", rules), lambda: _build_plan(bank, rules))


def _specificity(rule: DrawRule) -> int:
    return (rule.category is not None) + (rule.difficulty is not None)


def _build_plan(bank: QuestionBank, rules: tuple[DrawRule, ...]) -> _Plan:
    problems = [f"rule {i + 1}: count must not be negative" for i, r in enumerate(rules) if r.count < 0]
    order = sorted(
        (i for i, r in enumerate(rules) if r.count > 0), key=lambda i: (-_specificity(rules[i]), i)
    )
    cells = sorted(bank.cells(), key=_cell_sort_key)
    steps: list[_Step] = []
    seen_cells: set[Cell] = set()
    for i in order:
        rule = rules[i]
        matching = tuple(c for c in cells if _matches(rule, c))
        pool = bank.candidates(rule.category, rule.difficulty)
        overlaps = not seen_cells.isdisjoint(matching)
        seen_cells.update(matching)
        steps.append(_Step(i, rule, matching, pool, frozenset(pool), overlaps, False))
    steps = [_with_lookahead(step, steps[n + 1 :]) for n, step in enumerate(steps)]
    achieved, _ = _max_flow(steps, bank.cells())
    for step, got in zip(steps, achieved, strict=True):
        if got < step.rule.count:
            after = " after more specific rules take theirs" if got < len(step.pool) else ""
            problems.append(
                f"rule {step.position + 1} ({step.rule.describe()}) needs {step.rule.count} questions, "
                f"only {got} available{after}"
            )
    return _Plan(tuple(steps), tuple(problems))


def _matches(rule: DrawRule, cell: Cell) -> bool:
    return (rule.category is None or rule.category == cell[0]) and (
        rule.difficulty is None or rule.difficulty == cell[1]
    )


def _with_lookahead(step: _Step, later: Sequence[_Step]) -> _Step:
    # The split of this draw over its cells only matters to a later step that shares some,
    # but not all, of its cells (Hall's condition sees only whole unions of cells).
    mine = set(step.cells)
    if len(mine) < 2 or not any(not mine.isdisjoint(s.cells) and not mine <= set(s.cells) for s in later):
        return step
    return replace(step, lookahead=True)


def _max_flow(steps: Sequence[_Step], supply: dict[Cell, int]) -> tuple[list[int], list[dict[Cell, int]]]:
    """Serve steps in order by augmenting paths over the step->cell graph.

    Returns how many questions each step gets and from which cells. An augmenting path never
    lowers what an earlier step already has, so earlier (more specific) steps keep priority.
    """
    flows: list[dict[Cell, int]] = [{} for _ in steps]
    spare = dict(supply)
    achieved = [0] * len(steps)
    for start, step in enumerate(steps):
        while achieved[start] < step.rule.count:
            path = _augmenting_path(steps, flows, spare, start)
            if path is None:
                break
            amount = min(step.rule.count - achieved[start], spare[path[-1][1]])
            for s, cell, forward in path:
                if not forward:
                    amount = min(amount, flows[s][cell])
            for s, cell, forward in path:
                flows[s][cell] = flows[s].get(cell, 0) + (amount if forward else -amount)
            spare[path[-1][1]] -= amount
            achieved[start] += amount
    return achieved, flows


def _augmenting_path(
    steps: Sequence[_Step], flows: list[dict[Cell, int]], spare: dict[Cell, int], start: int
) -> list[tuple[int, Cell, bool]] | None:
    """Edges (step, cell, forward?) from ``start`` to a cell with spare questions, by BFS."""
    came_from: dict[object, tuple[object, tuple[int, Cell, bool]] | None] = {("s", start): None}
    queue: deque[int] = deque([start])
    while queue:
        s = queue.popleft()
        for cell in steps[s].cells:
            if ("c", cell) in came_from:
                continue
            came_from[("c", cell)] = (("s", s), (s, cell, True))
            if spare.get(cell, 0) > 0:
                return _unwind(came_from, ("c", cell))
            # The cell is full: try moving another step's questions out of it.
            for other, flow in enumerate(flows):
                if flow.get(cell, 0) > 0 and ("s", other) not in came_from:
                    came_from[("s", other)] = (("c", cell), (other, cell, False))
                    queue.append(other)
    return None


def _unwind(
    came_from: dict[object, tuple[object, tuple[int, Cell, bool]] | None], node: object
) -> list[tuple[int, Cell, bool]]:
    path = []
    link = came_from[node]
    while link is not None:
        node, edge = link
        path.append(edge)
        link = came_from[node]
    path.reverse()
    return path
