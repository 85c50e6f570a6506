"""The Lua of rate limits: one GCRA check per subject, beside the request it limits.

Kept out of ``leaderboard.scripts``' shared prelude on purpose: it runs beside every answer, so it
defines nothing it does not use.  Each subject's key has its own hash tag (``keys.rate_limit``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from leaderboard.scripts import Script, flag_and_number

__all__ = ["RATE_LIMIT", "RateVerdict"]

RATE_LIMIT = Script("rate_limit", r"""
-- (no shared prelude: this runs beside every answer, so it defines nothing it does not use)
-- GCRA (the token bucket as one number): one key per subject, under the subject's own hash tag,
-- so per-user and per-IP limits of one request land on whichever shard owns that subject.
-- KEYS: 1 the limiter key (keys.rate_limit(scope, subject))
-- ARGV: 1 emission interval ms (period / count, may be fractional), 2 burst (count),
--       3 cost: requests counted at once (absent: 1; a worker's batch of one IP's answers)
-- Returns {1, 0} when allowed (and counted) | {0, retry after ms} when over the limit
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local iv = tonumber(ARGV[1])
local cost = tonumber(ARGV[3] or '1') or 1
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
local allow_at = tat + iv * cost - iv * tonumber(ARGV[2])
if now < allow_at then return {0, math.ceil(allow_at - now)} end
local new_tat = tat + iv * cost
redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.max(1, math.ceil(new_tat - now)))
return {1, 0}
""")


class RateVerdict(NamedTuple):
    """RATE_LIMIT's reply: ``allowed`` (and counted), else the ``retry_after_ms`` to wait."""

    allowed: bool
    retry_after_ms: int

    @classmethod
    def from_reply(cls, reply: Sequence[Any]) -> RateVerdict:
        return cls(*flag_and_number(reply))
