"""Attempts: start, get, answer, finish, submit; one Lua call each (submit: one coalesced batch)."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from contest.auth import Claims
from contest.catalog import Catalog
from contest.contests import Contest
from contest.errors import Conflict, DeadlinePassed, DomainError, Forbidden, Invalid, NotFound, Unavailable
from contest.ratelimit import answer_rate_args, rate_limited
from contest.redis_client import ScriptRunner
from contest.settings import Settings
from leaderboard import keys
from leaderboard.boards import count_above
from leaderboard.scripts import (
    ANSWER,
    ANSWER_CHALLENGE,
    FINISH,
    START,
    AnswerReply,
    FinishReply,
    Script,
    StartReply,
    text,
)
from question_bank import PaperError, Question, draw_paper, render_question, shown_answer

__all__ = ["Play", "evidence_token", "normalize_choice", "parse_attempt_id", "question_field"]

_TYPE_CODES = {"single": "s", "multiple": "m", "judge": "j"}
_KEEP_AFTER_DEADLINE_S = 86_400
_CLOCK_SKEW_MS = 300_000  # how far a worker's own clock may be off before its early refusal matters
_LETTERS = "ABCDEFGH"
_SINGLE = frozenset(_LETTERS)


def question_field(question: Question, perm: tuple[int, ...]) -> str:
    """The attempt hash's ``q<i>`` field the ANSWER script scores against:
    ``type code|shown answer key|points|question id|option count`` (start and rebuild alike)."""
    return (f"{_TYPE_CODES[question.type]}|{shown_answer(question, perm)}|{question.points}|{question.id}|"
            f"{len(question.options)}")


def parse_attempt_id(attempt_id: str) -> tuple[str, int]:
    """(contest id, shard) from ``<cid>.<token>`` or ``<cid>.<shard>.<token>``; 404 otherwise."""
    parts = attempt_id.split(".")
    if len(parts) == 2 and parts[0] and parts[1]:
        return parts[0], 0
    if len(parts) == 3 and parts[0] and parts[1].isdigit() and parts[2]:
        return parts[0], int(parts[1])
    raise NotFound("no such attempt")


def normalize_choice(value: Any) -> tuple[str, bool]:
    """'b' / ['C','a'] -> ('B', False) / ('AC', True); 400 on anything else."""
    if type(value) is str and value in _SINGLE:  # the common case: one upper-case key
        return value, False
    if isinstance(value, str):
        letters = [value]
        as_list = False
    elif isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        letters = value
        as_list = True
    else:
        raise Invalid("choice must be an option key or a list of keys",
                      {"fields": {"choice": "must be an option key like \"B\" or a list like [\"A\",\"C\"]"}})
    keys_ = {v.strip().upper() for v in letters}
    if not keys_ or any(len(k) != 1 or k not in _LETTERS for k in keys_) or len(keys_) != len(letters):
        raise Invalid("choice must use distinct option keys A-H",
                      {"fields": {"choice": "option keys are single letters A-H, each at most once"}})
    return "".join(sorted(keys_)), as_list




def evidence_token(secret: str, kind: str, value: str) -> str:
    """The fixed-width token START notes for a client IP (kind ``ip``) or User-Agent (``ua``): 24
    bits of an HMAC, enough to tell a member's few clients apart (keys.EVIDENCE_TOKEN_CHARS), and
    no address is kept (contest/evidence.py)."""
    digest = hmac.new(secret.encode(), f"{kind}:{value}".encode("utf-8", "replace"), hashlib.sha256)
    return digest.hexdigest()[:keys.EVIDENCE_TOKEN_CHARS]


@dataclass(slots=True)
class Play:
    """The participant's side of a contest, bound to one process's Redis runner and caches."""

    runner: ScriptRunner
    redis: Any
    catalog: Catalog
    settings: Settings
    # question ids this process has marked drawn (keys.bank_drawn), for the bank it holds
    drawn: set[str] = field(default_factory=set)
    drawn_bank: Any = None
    # ids waiting for the SADD in flight to finish before theirs goes out, and that SADD's task
    unmarked: set[str] = field(default_factory=set)
    marking: asyncio.Task[None] | None = None

    async def _note_drawn(self, paper: list[list[str]]) -> None:
        """Mark a paper's questions drawn before any attempt holds them, so an edit makes a new
        version instead of changing them (question_bank.versions).  Each process remembers what
        it has marked for the bank it holds: after warm-up a start costs no extra round trip.

        At 8 pm thousands of starts reach a cold process at once, each with ids not marked yet:
        one SADD each would take one pooled connection each and run the pool dry
        (MaxConnectionsError). They share one SADD at a time instead: a start adds its ids and
        waits for the marking task, which sends whatever has gathered until nothing is left."""
        bank = self.catalog.bank
        if bank is not self.drawn_bank:
            self.drawn_bank = bank
            self.drawn.clear()
        new = [qid for qid, _ in paper if qid not in self.drawn]
        if not new:
            return
        self.unmarked.update(new)
        if self.marking is None or self.marking.done():
            self.marking = asyncio.ensure_future(self._mark_drawn())
        # shielded: a start whose client went away must not cancel the others' marking
        await asyncio.shield(self.marking)
        if not self.drawn.issuperset(new):  # the task failed on an earlier batch than ours
            raise Unavailable("could not mark the questions drawn; try again")

    async def _mark_drawn(self) -> None:
        while self.unmarked:
            batch, self.unmarked = self.unmarked, set()
            try:
                await self.redis.sadd(keys.bank_drawn(), *batch)
            except BaseException:
                # the starts waiting on it fail (Redis is away) and try again with their own ids
                self.unmarked.clear()
                raise
            self.drawn.update(batch)

    # ---- helpers ------------------------------------------------------------------------
    def contest(self, contest_id: str, *, published: bool = True) -> Contest:
        contest = self.catalog.contests.get(contest_id)
        if contest is None or (published and contest.status != "published"):
            raise NotFound(f"no contest {contest_id!r}")
        return contest

    @staticmethod
    def shard_of(contest: Contest, user_id: str) -> int:
        return zlib.crc32(user_id.encode()) % contest.shards if contest.shards > 1 else 0

    def _render(self, paper: list[list[str]], contest: Contest) -> list[dict[str, Any]]:
        bank = self.catalog.bank
        out = []
        for index, (qid, perm) in enumerate(paper):
            question = bank.get(qid)
            if question is None:
                raise Unavailable("the question bank is being reloaded; try again")
            out.append(render_question(question, tuple(int(c) for c in perm), index))
        return out

    # ---- start --------------------------------------------------------------------------
    async def start(self, claims: Claims, contest_id: str, *, ip: str = "", user_agent: str = "") -> tuple[
            int, dict[str, Any]]:
        """Start an attempt, or hand back the unfinished one (200).  ``ip`` and ``user_agent`` are
        noted for the review of flagged attempts by the START script itself, in the same call."""
        contest = self.contest(contest_id)
        now_ms = int(time.time() * 1000)
        # A cheap early refusal far outside the window only: near its edges the START script
        # decides by Redis TIME, so a worker whose clock is off never refuses anyone wrongly.
        if not contest.starts_at - _CLOCK_SKEW_MS <= now_ms < contest.ends_at + _CLOCK_SKEW_MS:
            raise Forbidden("the contest is not open now",
                            {"starts_at": contest.starts_at, "ends_at": contest.ends_at}, code="contest_closed")
        shard = self.shard_of(contest, claims.user_id)
        token = secrets.token_urlsafe(12)
        attempt_id = f"{contest_id}.{shard}.{token}" if contest.shards > 1 else f"{contest_id}.{token}"
        try:
            items = draw_paper(self.catalog.bank, contest.rules, attempt_id,
                               shuffle_questions=contest.shuffle_questions,
                               shuffle_options=contest.shuffle_options)
        except PaperError as exc:
            raise Conflict(f"the question bank cannot fill this contest's paper: {exc}", code="paper_unavailable") \
                from None
        if contest.mode == "challenge" and contest.max_questions:
            # the run's sequence, drawn here with the attempt's seed like a paper, stays in Redis
            # and the database: the ANSWER script reveals one question at a time (issue 15)
            items = items[:contest.max_questions]
        bank = self.catalog.bank
        paper = [[item.question_id, "".join(str(i) for i in item.perm)] for item in items]
        fields = [question_field(bank[item.question_id], item.perm) for item in items]
        orgs = self.catalog.orgs
        org_id = claims.org_id or ""
        path = orgs.path(org_id) if org_id in orgs else ((org_id,) if org_id else ())
        members = ",".join(str(orgs.members_total(o)) if o in orgs else "0" for o in path)
        prefix = keys.contest_prefix(contest_id, shard)
        await self._note_drawn(paper)
        # the IP and device of this start, for the review of flagged attempts: noted by START itself
        secret = self.settings.secret
        evidence_args = (evidence_token(secret, "ip", ip or "?"), evidence_token(secret, "ua", user_agent))
        lone_root = "1" if path and path[0] == orgs.lone_root() else ""
        reply = StartReply.from_reply(await self.runner.run(
            START,
            (keys.user_contest(contest_id, claims.user_id, shard), keys.attempt(contest_id, attempt_id, shard),
             keys.deadlines(contest_id, shard), keys.events(contest_id, shard), keys.stats(contest_id, shard),
             keys.names(contest_id, shard)),
            (claims.user_id, attempt_id, contest.starts_at, contest.ends_at, contest.time_limit_ms,
             contest.attempts_per_day, contest.attempts_total, contest.tz_offset_ms(), prefix + keys.SUFFIX_ATTEMPT,
             _KEEP_AFTER_DEADLINE_S, contest_id, org_id, ",".join(path), members,
             f"{claims.name}\t{org_id}", orjson.dumps(paper), len(fields), *fields,
             "c" if contest.mode == "challenge" else "", *evidence_args,
             self.settings.daily_board_keep_s * 1000, lone_root),
        ))
        if reply.status == "closed":
            raise Forbidden("the contest is not open now",
                            {"starts_at": contest.starts_at, "ends_at": contest.ends_at}, code="contest_closed")
        if reply.status == "limit":
            message = "no attempts left today" if reply.limit == "day" else "no attempts left in this contest"
            raise Conflict(message, {"limit": reply.limit}, code="attempt_limit_reached")
        if reply.status == "resume":
            return 200, self._attempt_view(contest, reply.attempt_id, reply.state or {})
        started_at, deadline_at = reply.started_at, reply.deadline_at
        challenge = contest.mode == "challenge"
        return 201, {
            "attempt_id": attempt_id, "contest_id": contest_id, "started_at": started_at,
            "deadline_at": deadline_at, "time_limit_s": contest.time_limit_ms // 1000,
            "question_time_limit_s": contest.question_limit_ms // 1000, "feedback": contest.feedback,
            "questions": self._render(paper[:1] if challenge else paper, contest), "answered": [], "score": 0,
            "finished": False, "mode": contest.mode, **({"max_questions": len(paper)} if challenge else {}),
        }

    # ---- get ----------------------------------------------------------------------------
    async def get(self, claims: Claims, attempt_id: str) -> dict[str, Any]:
        contest_id, shard = parse_attempt_id(attempt_id)
        contest = self.contest(contest_id, published=False)
        raw = await self.redis.hgetall(keys.attempt(contest_id, attempt_id, shard))
        state = {text(k): v for k, v in raw.items()}
        if not state or text(state.get(keys.ATTEMPT_USER, b"")) != claims.user_id:
            raise NotFound("no such attempt")
        return self._attempt_view(contest, attempt_id, state)

    def _attempt_view(self, contest: Contest, attempt_id: str, state: dict[str, Any]) -> dict[str, Any]:
        paper = orjson.loads(state[keys.ATTEMPT_PAPER])
        finished = text(state.get(keys.ATTEMPT_FINISHED, b"0")) == "1"
        reveal = contest.feedback == "immediate" or (finished and contest.feedback == "end")
        answered = []
        for index in range(len(paper)):
            raw = state.get(f"{keys.ATTEMPT_ANSWER}{index}")
            if raw is None:
                continue
            choice, ok, pts, at, flagged = text(raw).split("|")[:5]  # a 6th field: the score after it
            item: dict[str, Any] = {"index": index, "choice": self._choice_out(state, index, choice),
                                    "answered_at": int(at)}
            if reveal:
                item["correct"] = ok == "1"
                item["points_awarded"] = int(pts)
            answered.append(item)
        show_score = contest.feedback == "immediate" or finished
        served = paper
        extra: dict[str, Any] = {"mode": "paper"}
        if keys.ATTEMPT_CURRENT in state:
            # a challenge shows the questions served so far, never the rest of its sequence
            current = int(state[keys.ATTEMPT_CURRENT])
            served = paper[:current + 1]
            extra = {"mode": "challenge", "current": None if finished else current, "max_questions": len(paper)}
        view = {
            "attempt_id": attempt_id, "contest_id": contest.contest_id, "started_at": int(state[keys.ATTEMPT_STARTED]),
            "deadline_at": int(state[keys.ATTEMPT_DEADLINE]), "time_limit_s": contest.time_limit_ms // 1000,
            "question_time_limit_s": contest.question_limit_ms // 1000, "feedback": contest.feedback,
            "questions": self._render(served, contest), "answered": answered,
            "score": int(state.get(keys.ATTEMPT_SCORE, 0)) if show_score else None, "finished": finished, **extra,
        }
        if finished:
            view["finished_at"] = int(state.get(keys.ATTEMPT_FINISHED_AT, 0))
            view["duration_ms"] = int(state.get(keys.ATTEMPT_DURATION, 0))
            view["correct_count"] = int(state.get(keys.ATTEMPT_CORRECT, 0)) if contest.feedback != "none" else None
        return view

    @staticmethod
    def _choice_out(state: dict[str, Any], index: int, choice: str) -> str | list[str] | None:
        if not choice:
            return None
        qtype = text(state.get(f"{keys.ATTEMPT_QUESTION}{index}", b"s"))[:1]
        return list(choice) if qtype == "m" else choice

    # ---- answer -------------------------------------------------------------------------
    def answer_call(self, contest: Contest, claims: Claims, attempt_id: str, shard: int, index: int,
                    choice: str, limited: bool = True) -> tuple[Script, tuple[str, ...], tuple[Any, ...]]:
        """The ANSWER script's keys and arguments for one answer (the coroutine path and the lane)."""
        cid = contest.contest_id
        # the per-user answer rate limit is checked inside ANSWER (contest/ratelimit.py says why)
        rate = answer_rate_args(self.settings) if limited else ("0", 0)
        args: tuple[Any, ...] = (
            claims.user_id, index, choice, *contest.answer_args, self.settings.deadline_grace_ms,
            contest.config.get("min_answer_ms", self.settings.min_answer_ms), cid, attempt_id, *rate)
        script = ANSWER
        if contest.mode == "challenge":
            # its own script (the paper's runs unchanged); the last answer finishes the attempt in
            # the same call, with FINISH's arguments
            script = ANSWER_CHALLENGE
            args += (keys.contest_prefix(cid, shard), contest.ranking, contest.counted_per_day)
        return (
            script,
            (keys.attempt(cid, attempt_id, shard), keys.stats(cid, shard), keys.qstats(cid, shard),
             keys.events(cid, shard), keys.timeline(cid, "", shard)),
            args,
        )

    def _answer_call(self, contest: Contest, claims: Claims, attempt_id: str, shard: int, index: int,
                     choice: str, limited: bool = True) -> Any:
        return self.runner.run(*self.answer_call(contest, claims, attempt_id, shard, index, choice, limited))

    def prepare_answer(self, claims: Claims, attempt_id: str, index: int, choice_value: Any) -> tuple[
            Contest, Script, tuple[str, ...], tuple[Any, ...]]:
        """Everything an answer checks before Redis (404 attempt/contest, 400 choice), and its call."""
        contest_id, shard = parse_attempt_id(attempt_id)
        contest = self.contest(contest_id, published=False)
        choice, _ = normalize_choice(choice_value)
        return (contest, *self.answer_call(contest, claims, attempt_id, shard, index, choice))

    def answer_result(self, contest: Contest, index: int, raw: Any) -> dict[str, Any]:
        """The response body of an ANSWER reply (as Redis sent it); the contract's refusals as domain errors."""
        reply = AnswerReply.from_reply(raw)
        code = reply.error
        if code:
            if code == "not_found":
                raise NotFound("no such attempt")
            if code == "bad_index":
                raise Invalid(f"the attempt has no question {index}",
                              {"fields": {"index": "no such question in this attempt"}})
            if code == "invalid_choice":
                raise Invalid("that choice does not fit this question",
                              {"fields": {"choice": "not a valid choice for this question's options and type"}})
            if code == "already_answered":
                raise Conflict("this question was already answered with another choice", code="already_answered")
            if code == "finished":
                raise Conflict("this attempt is finished", code="already_finished")
            if code == "rate_limited":
                raise rate_limited(reply.retry_after_ms, "answer_user")
            if code == "not_current":
                raise Conflict("请先回答当前题目：挑战赛一次只出一题"
                               " (a challenge takes one question at a time: answer the current one)", {"index": index},
                               code="not_current")
            if reply.finish is not None:
                # a challenge run ended at its question's time limit: finished in the same call
                raise DeadlinePassed("本题作答时间已到，挑战结束 (time ran out: the run is over)",
                                     {"finished": True, "result": self._challenge_result(contest, reply.finish)})
            raise DeadlinePassed("the time for this answer has run out")
        if contest.feedback == "immediate":
            shown = reply.shown
            result: dict[str, Any] = {
                "index": index, "correct": reply.correct == 1, "points_awarded": reply.points, "score": reply.score,
                "correct_choice": list(shown) if reply.qtype == "m" else shown}
        else:
            # The key stays secret until the end: the answer is accepted, its worth is not told.
            result = {"index": index, "correct": None, "points_awarded": None, "score": None}
        result["accepted"] = True
        if reply.next_question is not None:
            self._challenge_next(contest, index, reply, result)
        return result

    def _challenge_next(self, contest: Contest, index: int, reply: AnswerReply, result: dict[str, Any]) -> None:
        """``next`` of a challenge answer: the next question, or null with the run's finish result."""
        spec = reply.next_question
        if spec:
            qid, _, perm = spec.partition("|")
            question = self.catalog.bank.get(qid)
            if question is None:
                raise Unavailable("the question bank is being reloaded; try again")
            result["next"] = render_question(question, tuple(int(c) for c in perm), index + 1)
            result["finished"] = False
            return
        result["next"] = None
        result["finished"] = True
        if reply.finish is not None:
            result["result"] = self._challenge_result(contest, reply.finish)

    def _challenge_result(self, contest: Contest, fin: FinishReply) -> dict[str, Any]:
        """The finish shape of a run finished inside its ANSWER call (which names its attempt)."""
        try:
            result = self._finish_result(fin.attempt_id, fin)
        except DeadlinePassed as exc:  # finished at the attempt's deadline: still the run's result
            if exc.code != "deadline_passed":
                raise
            result = exc.details["result"]
        if contest.shards > 1:
            result["rank"] = None  # ranked within its shard only; POST .../finish (idempotent) ranks it
        return result

    async def answer(self, claims: Claims, attempt_id: str, index: int, choice_value: Any) -> dict[str, Any]:
        contest, script, keys_, args = self.prepare_answer(claims, attempt_id, index, choice_value)
        return self.answer_result(contest, index, await self.runner.run(script, keys_, args))

    # ---- finish -------------------------------------------------------------------------
    async def _finish_call(self, contest: Contest, user_id: str, attempt_id: str, shard: int,
                           auto: bool) -> FinishReply:
        cid = contest.contest_id
        return FinishReply.from_reply(await self.runner.run(
            FINISH,
            (keys.attempt(cid, attempt_id, shard), keys.user_contest(cid, user_id or "-", shard),
             keys.stats(cid, shard), keys.events(cid, shard), keys.deadlines(cid, shard),
             keys.timeline(cid, "", shard), keys.board(cid, shard=shard), keys.names(cid, shard)),
            (user_id, keys.contest_prefix(cid, shard), contest.ranking, contest.counted_per_day,
             1 if auto else 0, cid, attempt_id, "", self.settings.deadline_grace_ms),
        ))

    async def _global_rank(self, contest: Contest, shard: int, reply: FinishReply) -> FinishReply:
        """FINISH ranks within the attempt's shard; a sharded contest adds the members of the other
        shards scored above (one more pipelined round trip, for sharded contests only)."""
        if contest.shards <= 1 or reply.error or reply.encoded is None or reply.rank <= 0:
            return reply
        others = [keys.board(contest.contest_id, shard=s) for s in range(contest.shards) if s != shard]
        return reply._replace(rank=reply.rank + await count_above(self.redis, others, reply.encoded))

    @staticmethod
    def _finish_result(attempt_id: str, reply: FinishReply) -> dict[str, Any]:
        """The finish shape; 410 deadline_passed (result in details) when the service finished it at the deadline."""
        if reply.error:
            raise NotFound("no such attempt")
        rank = reply.rank
        result = {"attempt_id": attempt_id, "score": reply.score, "correct_count": reply.correct_count,
                  "question_count": reply.question_count, "duration_ms": reply.duration_ms,
                  "rank": rank if rank > 0 else None, "best_score": reply.best if rank > 0 else None,
                  "counted": reply.counted, "started_at": reply.started_at, "finished_at": reply.finished_at}
        if reply.auto:
            # API.md: finish after the deadline is 410; the attempt was closed at its deadline with
            # the answers it had, and that result travels in the details so the page can show it.
            raise DeadlinePassed("the attempt's time ran out; it was finished at its deadline",
                                 {"result": result})
        return result

    async def finish(self, claims: Claims, attempt_id: str) -> dict[str, Any]:
        contest_id, shard = parse_attempt_id(attempt_id)
        contest = self.contest(contest_id, published=False)
        reply = await self._finish_call(contest, claims.user_id, attempt_id, shard, auto=False)
        return self._finish_result(attempt_id, await self._global_rank(contest, shard, reply))

    async def submit(self, claims: Claims, attempt_id: str, answers: list[tuple[int, str]]) -> dict[str, Any]:
        """All answers and the finish go out in the same event-loop turn: one write, one round trip."""
        contest_id, shard = parse_attempt_id(attempt_id)
        contest = self.contest(contest_id, published=False)
        # one submit is one request: its answers are not counted against the per-answer limit
        calls = [self._answer_call(contest, claims, attempt_id, shard, i, c, limited=False) for i, c in answers]
        calls.append(self._finish_call(contest, claims.user_id, attempt_id, shard, auto=False))
        replies: list[Any] = []
        for reply in await asyncio.gather(*calls, return_exceptions=True):
            if isinstance(reply, BaseException):
                raise reply
            replies.append(reply)
        *answer_replies, finished = replies
        result = self._finish_result(attempt_id, await self._global_rank(contest, shard, finished))
        results = []
        for (index, _), reply in zip(answers, answer_replies, strict=True):
            try:
                item = self.answer_result(contest, index, reply)
                results.append({"index": index, "correct": item["correct"], "points_awarded": item["points_awarded"]})
            except DomainError as exc:
                if exc.code == "not_found":
                    raise
                results.append({"index": index, "correct": None, "points_awarded": None,
                                "error": {"code": exc.code, "message": exc.message}})
        if contest.feedback == "end":
            state = await self.get(claims, attempt_id)
            by_index = {a["index"]: a for a in state["answered"]}
            for item in results:
                done = by_index.get(item["index"])
                if done and "error" not in item:
                    item["correct"], item["points_awarded"] = done.get("correct"), done.get("points_awarded")
        result["results"] = results
        return result

    async def auto_finish(self, contest: Contest, attempt_id: str, shard: int) -> bool | None:
        """Finish an abandoned attempt at its deadline: True when this call finished it, False when
        there is nothing to finish (already finished, or gone), None when Redis' clock says it is
        not due yet (the caller's clock runs ahead: keep it scheduled)."""
        reply = await self._finish_call(contest, "", attempt_id, shard, auto=True)
        if reply.error:
            return None if reply.error == "not_due" else False
        return not reply.again
