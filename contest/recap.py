"""错题回顾: a participant's review of a finished attempt, wrong answers first (issue 15 item 2).

Read from the attempt's Redis hash while it lives (a day after its deadline), else from the
durable store (the attempt row's paper and its answers), so a review after the contest ends still
works.  The shown option order is the attempt's own (its perm), so the keys match what was seen.

When it is allowed: the owner, a finished attempt; with ``feedback: immediate|end`` at once;
with ``none`` only after the contest ends and only if ``review_after_end`` (default true).
Nothing is ever revealed of an unfinished attempt.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from contest.auth import Claims
from contest.catalog import Catalog
from contest.contests import Contest
from contest.errors import Conflict, Forbidden, NotFound
from contest.play import parse_attempt_id
from contest.storage.base import Storage
from leaderboard import keys
from leaderboard.scripts import text
from question_bank import render_question, shown_answer

__all__ = ["AttemptRecord", "Recap", "review_allowed"]


def review_allowed(contest: Contest, now_ms: int) -> bool:
    """Whether a finished attempt's answers may be shown now (see the module doc)."""
    if contest.feedback in ("immediate", "end"):
        return True
    return bool(contest.config.get("review_after_end", True)) and now_ms >= contest.ends_at


@dataclass(slots=True)
class AttemptRecord:
    """What a review or a certificate needs of one attempt, wherever it was read from."""

    attempt_id: str
    user_id: str
    org_id: str
    finished: bool
    finished_at: int | None
    score: int
    correct_count: int
    served: list[list[str]]  # [question id, perm] of each question shown, by index
    answers: dict[int, tuple[str, bool, int]]  # index -> (choice, correct, points awarded)


@dataclass(slots=True)
class Recap:
    redis: Any
    storage: Storage
    catalog: Catalog

    async def record(self, contest: Contest, attempt_id: str) -> AttemptRecord | None:
        """The attempt from Redis, else from the durable store; None when neither has it."""
        cid, shard = parse_attempt_id(attempt_id)
        raw = await self.redis.hgetall(keys.attempt(cid, attempt_id, shard))
        if raw:
            state = {text(k): v for k, v in raw.items()}
            paper = orjson.loads(state[keys.ATTEMPT_PAPER])
            if keys.ATTEMPT_CURRENT in state:  # a challenge: the questions it served, never the rest of its sequence
                paper = paper[:int(state[keys.ATTEMPT_CURRENT]) + 1]
            answers = {}
            for index in range(len(paper)):
                value = state.get(f"{keys.ATTEMPT_ANSWER}{index}")
                if value is not None:
                    choice, ok, pts = text(value).split("|")[:3]
                    answers[index] = (choice, ok == "1", int(pts))
            finished = text(state.get(keys.ATTEMPT_FINISHED, b"0")) == "1"
            return AttemptRecord(attempt_id, text(state[keys.ATTEMPT_USER]), text(state.get(keys.ATTEMPT_ORG, b"")),
                                 finished, int(state[keys.ATTEMPT_FINISHED_AT]) if finished else None,
                                 int(state.get(keys.ATTEMPT_SCORE, 0)), int(state.get(keys.ATTEMPT_CORRECT, 0)), paper,
                                 answers)
        row = await self.storage.load_attempt(attempt_id)
        if row is None or row.get("contest_id") != cid or row.get("user_id") is None:
            return None
        rows = await self.storage.load_attempt_answers(attempt_id)
        answers = {int(a["idx"]): (a["choice"] or "", bool(a["correct"]), int(a["points_awarded"] or 0))
                   for a in rows}
        paper = orjson.loads(row["paper"]) if row.get("paper") else []
        if contest.mode == "challenge":
            paper = paper[:int(row.get("question_count") or len(answers) or 1)]
        finished = row.get("finished_at") is not None
        return AttemptRecord(attempt_id, str(row["user_id"]), row.get("org_id") or "", finished,
                             int(row["finished_at"]) if finished else None, int(row.get("score") or 0),
                             int(row.get("correct_count") or 0), paper, answers)

    async def owned_finished(self, claims: Claims, contest: Contest, attempt_id: str) -> AttemptRecord:
        """The caller's own finished attempt: 404 for anyone else's, 409 while it runs."""
        record = await self.record(contest, attempt_id)
        if record is None or record.user_id != claims.user_id:
            raise NotFound("没有这次答题 (no such attempt)")
        if not record.finished:
            raise Conflict("答题尚未结束，交卷后才能查看 (finish the attempt first)", code="attempt_not_finished")
        return record

    async def review(self, claims: Claims, contest: Contest, attempt_id: str) -> dict[str, Any]:
        now_ms = int(time.time() * 1000)
        record = await self.owned_finished(claims, contest, attempt_id)
        if not review_allowed(contest, now_ms):
            opens = contest.ends_at if contest.config.get("review_after_end", True) else None
            raise Forbidden("本竞赛结束后才能查看答案解析 (answers are shown after the contest ends)"
                            if opens else "本竞赛不公布答案 (this contest does not show its answers)",
                            {"opens_at": opens}, code="review_closed")
        items = []
        bank = self.catalog.bank
        for index, (qid, perm_text) in enumerate(record.served):
            question = bank.get(qid)
            if question is None:
                continue  # deleted from the bank since: nothing true can be shown of it
            perm = tuple(int(c) for c in perm_text)
            shown = render_question(question, perm, index)
            key = shown_answer(question, perm)
            choice, ok, pts = record.answers.get(index, ("", False, 0))
            multiple = question.type == "multiple"
            items.append({
                **shown, "question_id": qid,
                "choice": (list(choice) if multiple else choice) if choice else None,
                "correct_choice": list(key) if multiple else key,
                "correct": ok, "points_awarded": pts, "explanation": question.explanation or "",
            })
        # wrong (and unanswered) first, as a learning campaign reads them; by index within each
        items.sort(key=lambda item: (item["correct"], item["index"]))
        wrong = sum(1 for item in items if not item["correct"])
        return {"attempt_id": attempt_id, "contest_id": contest.contest_id, "mode": contest.mode,
                "score": record.score, "correct_count": record.correct_count, "question_count": len(items),
                "wrong_count": wrong, "items": items}
