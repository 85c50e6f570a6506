"""A participant's standing in one contest: attempts left today and in total, when the next one
opens, and the best score so far (issue 15 item 4: the page said only "答题次数已用完").

Read from the same counters the START script checks (``n`` and ``n:<day>`` in the user-in-contest
hash) and the user's entry on the total board, in one pipelined round trip, so what the page
shows is what the next start will decide.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from contest.contests import Contest
from leaderboard import keys
from leaderboard.encoding import decode

__all__ = ["standing"]


def _next_day_start_ms(contest: Contest, now_s: float) -> int:
    """The start (00:00 in the contest's timezone) of the contest day after the one of ``now_s``."""
    local = dt.datetime.fromtimestamp(now_s, tz=contest.tz)
    midnight = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(0), tzinfo=contest.tz)
    return int(midnight.timestamp() * 1000)


async def standing(redis: Any, contest: Contest, user_id: str, shard: int, now_s: float | None = None
                   ) -> dict[str, Any]:
    """``attempts_left_today``, ``attempts_left_total`` (null: unlimited), ``next_attempt_at`` (ms, or
    null when an attempt can start now or none ever will) and ``best_score`` (null before a finish)."""
    now_s = time.time() if now_s is None else now_s
    day = contest.today(now_s)
    cid = contest.contest_id
    async with redis.pipeline(transaction=False) as pipe:
        pipe.hmget(keys.user_contest(cid, user_id, shard), keys.USER_STARTS, keys.USER_STARTS_ON + day)
        pipe.zscore(keys.board(cid, shard=shard), user_id)
        (n_total, n_day), board_score = await pipe.execute()
    used_total, used_day = int(n_total or 0), int(n_day or 0)
    left_total = max(0, contest.attempts_total - used_total) if contest.attempts_total else None
    left_today = max(0, contest.attempts_per_day - used_day) if contest.attempts_per_day else None
    if left_today is not None and left_total is not None:
        left_today = min(left_today, left_total)
    elif left_today is None:
        left_today = left_total
    next_at = None
    if left_today == 0 and left_total != 0:
        # today's are used up and the contest has more to give: the next contest day opens them
        candidate = _next_day_start_ms(contest, now_s)
        next_at = candidate if candidate < contest.ends_at else None
    return {
        "attempts_left_today": left_today,
        "attempts_left_total": left_total,
        "next_attempt_at": next_at,
        "best_score": decode(board_score)[0] if board_score is not None else None,
    }
