"""Contest settings: validation of create/patch bodies and the typed, cached form."""

from __future__ import annotations

import datetime as dt
import secrets
import time
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from contest.campaign import campaign_fields
from contest.validation import ID_RE, Fields
from question_bank import DrawRule, QuestionBank, check_rules

__all__ = ["PUBLIC_FIELDS", "Contest", "validate_contest"]

PUBLIC_FIELDS = (
    "contest_id", "title", "description", "starts_at", "ends_at", "questions_per_attempt", "time_limit_s",
    "question_time_limit_s", "attempts_per_day", "attempts_total", "ranking", "feedback", "timezone",
    "status", "counted_per_day", "mode", "max_questions", "review_after_end", "certificate",
)
_MS_MIN = 946684800000  # 2000-01-01: anything earlier is a unit mistake (seconds for ms)
_MS_MAX = 4102444800000  # 2100-01-01


def _time_ms(fields: Fields, body: dict[str, Any], name: str, tz: ZoneInfo) -> int | None:
    """Integer ms, or an ISO-8601 string (naive strings are in the contest's timezone)."""
    value = body.get(name)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            fields.fail(name, "must be ms since the epoch or an ISO-8601 date-time", "not_a_date_time")
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=tz)
        return int(parsed.timestamp() * 1000)
    result = fields.integer(name, minimum=_MS_MIN, maximum=_MS_MAX)
    return result


def _bonus(fields: Fields, body: dict[str, Any], name: str, first_name: str,
           second_name: str) -> dict[str, int] | None:
    """A bonus object of two whole-number fields (``time_bonus``: max_points, over_s; ``streak_bonus``:
    step, cap), or None when the contest has none."""
    value = body.get(name)
    if value is None or value is False:
        return None
    if not isinstance(value, dict):
        fields.fail(f"scoring.{name}", f"must be null or an object {{{first_name}, {second_name}}}", "not_an_object")
        return None
    sub = Fields(value, prefix=f"scoring.{name}.")
    first = sub.integer(first_name, minimum=0, maximum=10_000)
    second = sub.integer(second_name, minimum=0, maximum=86_400)
    fields.merge(sub)
    if first is None or second is None:
        return None
    return {first_name: first, second_name: second}


def _draw(fields: Fields, paper: dict[str, Any]) -> list[dict[str, Any]]:
    raw = paper.get("draw")
    if not isinstance(raw, list) or not raw:
        fields.fail("paper.draw", "must be a non-empty list of {category, difficulty, count}", "draw_empty")
        return []
    rules: list[dict[str, Any]] = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            fields.fail(f"paper.draw[{i}]", "must be an object", "not_an_object")
            continue
        sub = Fields(item, prefix=f"paper.draw[{i}].")
        category = sub.text("category", required=False, max_len=100)
        difficulty = sub.integer("difficulty", required=False, minimum=1, maximum=5)
        count = sub.integer("count", minimum=1, maximum=200)
        fields.merge(sub)
        rules.append({"category": category or None, "difficulty": difficulty, "count": count or 0})
    if sum(r["count"] for r in rules) > 200:
        fields.fail("paper.draw", "at most 200 questions per attempt", "too_many_questions", max=200)
    return rules


def validate_contest(body: dict[str, Any], bank: QuestionBank, *, existing: dict[str, Any] | None = None,
                     default_min_answer_ms: int = 800) -> dict[str, Any]:
    """A normalized contest config from a create body, or from ``existing`` patched with ``body``."""
    merged: dict[str, Any] = dict(existing or {})
    for key, value in body.items():
        if key in ("paper", "scoring") and isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    f = Fields(merged)
    if existing is None:
        contest_id = f.text("contest_id", required=False, pattern=ID_RE) or f"c{secrets.token_hex(5)}"
    else:
        contest_id = existing["contest_id"]
        if body.get("contest_id") not in (None, contest_id):
            f.fail("contest_id", "cannot be changed", "not_changeable")
    tz_name = f.text("timezone", required=False, max_len=64, default="Asia/Shanghai") or "Asia/Shanghai"
    try:
        tz = ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        f.fail("timezone", "is not a known IANA timezone (e.g. Asia/Shanghai)", "unknown_timezone")
        tz = ZoneInfo("Asia/Shanghai")
    starts_at = _time_ms(f, merged, "starts_at", tz)
    ends_at = _time_ms(f, merged, "ends_at", tz)
    if starts_at is not None and ends_at is not None and ends_at <= starts_at:
        # a range error names both fields, so the form marks both inputs
        for name in ("starts_at", "ends_at"):
            f.fail(name, "ends_at must be after starts_at", "date_range", **{"from": "starts_at", "to": "ends_at"})
    paper = merged.get("paper")
    if not isinstance(paper, dict):
        f.fail("paper", "is required: {draw: [{category, difficulty, count}], shuffle_questions, shuffle_options}",
               "required")
        paper = {}
    rules = _draw(f, paper)
    pf = Fields(paper, prefix="paper.")
    shuffle_q = pf.boolean("shuffle_questions", default=True)
    shuffle_o = pf.boolean("shuffle_options", default=True)
    f.merge(pf)
    scoring = merged.get("scoring") or {}
    if not isinstance(scoring, dict):
        f.fail("scoring", "must be an object", "not_an_object")
        scoring = {}
    sf = Fields(scoring, prefix="scoring.")
    partial = sf.boolean("partial_credit", default=False)
    f.merge(sf)
    config: dict[str, Any] = {
        "contest_id": contest_id,
        "title": f.text("title", max_len=200),
        "description": f.text("description", required=False, min_len=0, max_len=10_000, default="") or "",
        "starts_at": starts_at,
        "ends_at": ends_at,
        "timezone": tz_name,
        "time_limit_s": f.integer("time_limit_s", required=False, minimum=0, maximum=86_400, default=600),
        "question_time_limit_s": f.integer("question_time_limit_s", required=False, minimum=0,
                                           maximum=3_600, default=0),
        "attempts_per_day": f.integer("attempts_per_day", required=False, minimum=0, maximum=10_000, default=0),
        "attempts_total": f.integer("attempts_total", required=False, minimum=0, maximum=100_000, default=0),
        "counted_per_day": f.integer("counted_per_day", required=False, minimum=0, maximum=10_000, default=0),
        "ranking": f.choice("ranking", ("best", "sum"), default="best"),
        "feedback": f.choice("feedback", ("immediate", "end", "none"), default="immediate"),
        "paper": {"draw": rules, "shuffle_questions": shuffle_q, "shuffle_options": shuffle_o},
        "scoring": {
            "partial_credit": partial,
            "time_bonus": _bonus(f, scoring, "time_bonus", "max_points", "over_s"),
            "streak_bonus": _bonus(f, scoring, "streak_bonus", "step", "cap"),
        },
        "min_answer_ms": f.integer("min_answer_ms", required=False, minimum=0, maximum=60_000,
                                   default=default_min_answer_ms),
        "shards": f.integer("shards", required=False, minimum=1, maximum=64, default=1),
        "status": (existing or {}).get("status", "draft"),
        "created_at": (existing or {}).get("created_at", int(time.time() * 1000)),
        "updated_at": int(time.time() * 1000),
    }
    if rules and not any(k.startswith("paper.draw") for k in f.errors):
        problems = check_rules(bank, [DrawRule(r["category"], r["difficulty"], r["count"]) for r in rules])
        for i, message in enumerate(problems):
            f.fail(f"paper.draw[{i}]" if len(problems) > 1 else "paper.draw", message, "not_enough_questions",
                   detail=message)
    campaign_fields(f, merged, config, existing)
    f.done()
    config["questions_per_attempt"] = sum(r["count"] for r in rules)
    return config


@dataclass(frozen=True, slots=True)
class Contest:
    """The hot, typed form of a contest config, built once per config version per process."""

    contest_id: str
    config: dict[str, Any]
    status: str
    starts_at: int
    ends_at: int
    time_limit_ms: int
    question_limit_ms: int
    attempts_per_day: int
    attempts_total: int
    counted_per_day: int
    ranking: str
    feedback: str
    tz: ZoneInfo
    rules: tuple[DrawRule, ...]
    shuffle_questions: bool
    shuffle_options: bool
    answer_args: tuple[str, ...]  # ARGV 4..11 of the answer script
    shards: int
    mode: str = "paper"  # "challenge": one question at a time, to the first wrong answer
    max_questions: int = 0  # a challenge's longest run (0: the draw's count)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Contest:
        scoring = config.get("scoring") or {}
        tb = scoring.get("time_bonus") or {}
        sb = scoring.get("streak_bonus") or {}
        paper = config["paper"]
        return cls(
            contest_id=config["contest_id"],
            config=config,
            status=config.get("status", "draft"),
            starts_at=int(config["starts_at"]),
            ends_at=int(config["ends_at"]),
            time_limit_ms=int(config.get("time_limit_s") or 0) * 1000,
            question_limit_ms=int(config.get("question_time_limit_s") or 0) * 1000,
            attempts_per_day=int(config.get("attempts_per_day") or 0),
            attempts_total=int(config.get("attempts_total") or 0),
            counted_per_day=int(config.get("counted_per_day") or 0),
            ranking=config.get("ranking", "best"),
            feedback=config.get("feedback", "immediate"),
            tz=ZoneInfo(config.get("timezone") or "Asia/Shanghai"),
            rules=tuple(DrawRule(r["category"], r["difficulty"], int(r["count"])) for r in paper["draw"]),
            shuffle_questions=bool(paper.get("shuffle_questions", True)),
            shuffle_options=bool(paper.get("shuffle_options", True)),
            answer_args=(
                "1" if scoring.get("partial_credit") else "0",
                str(int(tb.get("max_points", 0))),
                str(int(tb.get("over_s", 0)) * 1000),
                str(int(sb.get("step", 0))),
                str(int(sb.get("cap", 0))),
                str(int(config.get("question_time_limit_s") or 0) * 1000),
            ),
            shards=int(config.get("shards") or 1),
            mode=config.get("mode") or "paper",
            max_questions=int(config.get("max_questions") or 0),
        )

    def public(self) -> dict[str, Any]:
        return {k: self.config.get(k) for k in PUBLIC_FIELDS}

    def status_now(self, now_ms: int) -> str:
        """draft | upcoming | running | ended (the participant-facing status)."""
        if self.status != "published":
            return self.status
        if now_ms < self.starts_at:
            return "upcoming"
        if now_ms >= self.ends_at:
            return "ended"
        return "running"

    def tz_offset_ms(self, now_s: float | None = None) -> int:
        moment = dt.datetime.fromtimestamp(now_s if now_s is not None else time.time(), tz=self.tz)
        offset = moment.utcoffset()
        return int(offset.total_seconds() * 1000) if offset else 0

    def today(self, now_s: float | None = None) -> str:
        return dt.datetime.fromtimestamp(now_s if now_s is not None else time.time(), tz=self.tz).strftime("%Y-%m-%d")
