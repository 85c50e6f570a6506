"""The bank and paper drawing: snapshots, reproducibility, rules, uniformity, rendering."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from question_bank import (
    DrawRule,
    PaperError,
    Question,
    QuestionBank,
    SnapshotError,
    check_rules,
    draw_paper,
    original_keys,
    render_question,
    shown_answer,
)

CATEGORIES = ("history", "law", "science")


def make_question(
    i: int, category: str | None = None, difficulty: int | None = None, **kw: object
) -> Question:
    fields: dict[str, object] = {
        "id": f"q{i:05d}",
        "type": "single",
        "stem": f"stem {i}",
        "options": ("w", "x", "y", "z"),
        "answer": "B",
        "category": category,
        "difficulty": difficulty,
        "points": 10,
        "explanation": f"secret explanation {i}",
    }
    fields.update(kw)
    return Question(**fields)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def bank() -> QuestionBank:
    # 3 categories x 5 difficulties x 20 questions, plus 20 without category or difficulty.
    questions = [make_question(i, CATEGORIES[i % 3], i // 3 % 5 + 1) for i in range(300)]
    questions += [make_question(300 + i) for i in range(20)]
    return QuestionBank.from_questions(questions, version=7)


def draw(bank: QuestionBank, rules: list[DrawRule], seed: object, **kw: bool) -> list[str]:
    options = {"shuffle_questions": True, "shuffle_options": True, **kw}
    return [item.question_id for item in draw_paper(bank, rules, seed, **options)]  # type: ignore[arg-type]


# --- the bank --------------------------------------------------------------------------------


def test_bank_lookups(bank: QuestionBank) -> None:
    assert len(bank) == 320 and bank.version == 7
    assert bank.get("q00000") == make_question(0, "history", 1) and bank.get("nope") is None
    assert bank.categories() == list(CATEGORIES)
    assert bank.count() == 320
    assert bank.count("law") == 100 and bank.count(None, 2) == 60 and bank.count("law", 2) == 20


def test_snapshot_round_trip(bank: QuestionBank) -> None:
    blob = bank.to_snapshot()
    again = QuestionBank.from_snapshot(blob)
    assert again == bank and again.version == 7
    assert again.questions() == bank.questions()
    assert isinstance(again.get("q00001").options, tuple)  # type: ignore[union-attr]
    assert again.to_snapshot() == blob


def test_snapshot_rejects_garbage() -> None:
    with pytest.raises(SnapshotError):
        QuestionBank.from_snapshot(b"\x93\x01\x02")
    with pytest.raises(SnapshotError):
        QuestionBank.from_snapshot(b"not msgpack at all")


def test_merged_counts_new_and_updated(bank: QuestionBank) -> None:
    changed = make_question(0, "history", 1, stem="changed")
    merged, imported, updated = bank.merged([changed, make_question(999)])
    assert (imported, updated, len(merged), merged.version) == (1, 1, 321, 8)
    assert merged.get("q00000").stem == "changed"  # type: ignore[union-attr]
    assert bank.get("q00000").stem == "stem 0"  # type: ignore[union-attr]  # the old bank is untouched


# --- drawing ---------------------------------------------------------------------------------


def test_same_seed_same_paper_regardless_of_insertion_order(bank: QuestionBank) -> None:
    rules = [DrawRule("law", None, 5), DrawRule(None, 3, 4), DrawRule(None, None, 6)]
    reversed_bank = QuestionBank.from_questions(reversed(bank.questions()), version=7)
    for seed in ["attempt-1", b"\x00\x01", 12345]:
        first = draw_paper(bank, rules, seed, shuffle_questions=True, shuffle_options=True)
        assert draw_paper(reversed_bank, rules, seed, shuffle_questions=True, shuffle_options=True) == first


def test_different_seeds_differ(bank: QuestionBank) -> None:
    rules = [DrawRule(None, None, 10)]
    papers = {tuple(draw(bank, rules, f"seed-{i}")) for i in range(50)}
    assert len(papers) == 50


def test_rules_respected_and_no_duplicates(bank: QuestionBank) -> None:
    rules = [
        DrawRule("law", 2, 5),
        DrawRule("law", None, 10),
        DrawRule(None, 2, 10),
        DrawRule(None, None, 15),
    ]
    for seed in range(200):
        ids = draw(bank, rules, seed)
        assert len(ids) == 40 and len(set(ids)) == 40
        cells = Counter((bank[i].category, bank[i].difficulty) for i in ids)
        assert cells[("law", 2)] >= 5
        assert sum(n for (cat, _), n in cells.items() if cat == "law") >= 15
        assert sum(n for (_, diff), n in cells.items() if diff == 2) >= 15


def test_unshuffled_paper_follows_rule_order_then_id(bank: QuestionBank) -> None:
    rules = [DrawRule(None, None, 3), DrawRule("science", 5, 3)]
    items = draw_paper(bank, rules, "s", shuffle_questions=False, shuffle_options=False)
    ids = [item.question_id for item in items]
    assert ids[:3] == sorted(ids[:3]) and ids[3:] == sorted(ids[3:])
    assert all((bank[i].category, bank[i].difficulty) == ("science", 5) for i in ids[3:])
    assert all(item.perm == (0, 1, 2, 3) for item in items)


def test_check_rules_accounts_for_overlap(bank: QuestionBank) -> None:
    assert check_rules(bank, [DrawRule("law", 1, 20), DrawRule("law", None, 80)]) == []
    problems = check_rules(bank, [DrawRule("law", None, 81), DrawRule("law", 1, 20)])
    # The specific rule is served first; the broad one then misses one question.
    assert len(problems) == 1 and problems[0].startswith("rule 1") and "only 80" in problems[0]
    assert check_rules(bank, [DrawRule("art", None, 1)])[0].startswith("rule 1")
    assert check_rules(bank, [DrawRule(None, None, 321)]) != []
    assert check_rules(bank, [DrawRule(None, None, 0)]) == []
    assert check_rules(bank, [DrawRule(None, None, -1)]) != []


def test_draw_raises_when_rules_cannot_be_filled(bank: QuestionBank) -> None:
    with pytest.raises(PaperError, match="rule 2"):
        draw_paper(
            bank,
            [DrawRule("law", 1, 20), DrawRule("law", 1, 1)],
            1,
            shuffle_questions=True,
            shuffle_options=True,
        )


def test_crossing_rules_never_fail_when_feasible() -> None:
    # Each cell has one question; a careless greedy draw for ("A", any) can take (A,1) and
    # leave (any, 1) with nothing. check_rules says feasible, so every seed must succeed.
    questions = [make_question(i, cat, diff) for i, (cat, diff) in enumerate([("A", 1), ("A", 2), ("B", 2)])]
    small = QuestionBank.from_questions(questions)
    rules = [DrawRule("A", None, 1), DrawRule(None, 1, 1), DrawRule(None, 2, 1)]
    assert check_rules(small, rules) == []
    for seed in range(300):
        assert sorted(draw(small, rules, seed)) == ["q00000", "q00001", "q00002"]


def test_crossing_rules_stay_random() -> None:
    questions = [
        make_question(i, cat, diff) for i, (cat, diff) in enumerate([("A", 1), ("A", 2), ("B", 1), ("B", 2)])
    ]
    small = QuestionBank.from_questions(questions)
    rules = [DrawRule("A", None, 1), DrawRule(None, 1, 1)]
    papers = Counter(frozenset(draw(small, rules, seed)) for seed in range(400))
    # Feasible papers: {A1,B1}, {A2,A1}, {A2,B1}; all must show up.
    assert len(papers) == 3 and min(papers.values()) > 50


def test_draw_is_uniform() -> None:
    small = QuestionBank.from_questions([make_question(i) for i in range(10)])
    counts = Counter(draw(small, [DrawRule(None, None, 1)], seed)[0] for seed in range(20_000))
    assert len(counts) == 10
    assert all(abs(n - 2000) < 300 for n in counts.values()), counts


def test_option_shuffle_is_uniform() -> None:
    small = QuestionBank.from_questions([make_question(0)])
    first = Counter()
    last = Counter()
    for seed in range(8_000):
        perm = draw_paper(
            small, [DrawRule(None, None, 1)], seed, shuffle_questions=False, shuffle_options=True
        )[0].perm
        assert sorted(perm) == [0, 1, 2, 3]
        first[perm[0]] += 1
        last[perm[3]] += 1
    for counter in (first, last):
        assert sorted(counter) == [0, 1, 2, 3]
        assert all(abs(n - 2000) < 300 for n in counter.values()), counter


def test_judge_options_never_shuffled() -> None:
    judge = make_question(1, type="judge", options=("正确", "错误"), answer="A")
    small = QuestionBank.from_questions([judge, make_question(2)])
    for seed in range(50):
        items = draw_paper(
            small, [DrawRule(None, None, 2)], seed, shuffle_questions=True, shuffle_options=True
        )
        assert next(i.perm for i in items if i.question_id == judge.id) == (0, 1)


def test_shown_answer() -> None:
    single = make_question(1, options=("a", "b", "c"), answer="A")
    assert shown_answer(single, (2, 0, 1)) == "B"
    assert shown_answer(single, (0, 1, 2)) == "A"
    multiple = make_question(2, type="multiple", options=("a", "b", "c"), answer="AC")
    assert shown_answer(multiple, (2, 1, 0)) == "AC"
    assert shown_answer(multiple, (1, 2, 0)) == "BC"
    assert original_keys((1, 2, 0), "BC") == "AC"
    with pytest.raises(PaperError):
        original_keys((1, 2, 0), "D")


def test_shown_answer_points_at_the_right_texts(bank: QuestionBank) -> None:
    question = make_question(5, type="multiple", options=("p", "q", "r", "s", "t"), answer="BD")
    small = QuestionBank.from_questions([question])
    for seed in range(100):
        perm = draw_paper(
            small, [DrawRule(None, None, 1)], seed, shuffle_questions=False, shuffle_options=True
        )[0].perm
        shown = render_question(question, perm, 0)
        texts = {o["key"]: o["text"] for o in shown["options"]}  # type: ignore[attr-defined]
        assert {texts[k] for k in shown_answer(question, perm)} == {"q", "s"}


def test_render_question_hides_answer_and_explanation(bank: QuestionBank) -> None:
    question = make_question(3, options=("alpha", "beta", "gamma"), answer="C", explanation="ANSWER-IS-GAMMA")
    rendered = render_question(question, (2, 0, 1), 4)
    assert rendered == {
        "index": 4,
        "type": "single",
        "stem": "stem 3",
        "options": [
            {"key": "A", "text": "gamma"},
            {"key": "B", "text": "alpha"},
            {"key": "C", "text": "beta"},
        ],
        "points": 10,
    }
    dumped = json.dumps(rendered)
    assert "ANSWER-IS-GAMMA" not in dumped and "answer" not in dumped and "explanation" not in dumped
    with pytest.raises(PaperError):
        render_question(question, (0, 1), 0)


def test_large_bank_draw(bank: QuestionBank) -> None:
    big = QuestionBank.from_questions([make_question(i, CATEGORIES[i % 3], i % 5 + 1) for i in range(10_000)])
    rules = [DrawRule(None, None, 20)]
    papers = [draw(big, rules, seed) for seed in range(200)]
    assert all(len(set(p)) == 20 for p in papers)


def test_crossing_rules_with_rare_feasible_draws() -> None:
    # Only 1 of 501 choices for the first rule leaves enough for the second: rejection sampling
    # gives up and the draw falls back to a feasible split, still without failing.
    questions = [make_question(i, "A", 1) for i in range(500)] + [make_question(999, "A", 2)]
    small = QuestionBank.from_questions(questions)
    rules = [DrawRule("A", None, 1), DrawRule(None, 1, 500)]
    assert check_rules(small, rules) == []
    for seed in range(5):
        assert len(set(draw(small, rules, seed))) == 501
