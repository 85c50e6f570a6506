"""The Lua of the review of flagged attempts: an admin's void / restore / clear decision.

Kept apart from ``leaderboard.scripts`` (the hot path) so the two evolve independently; it
shares its helpers (``now_ms``, ``enc``, ``split``, ``org_rollup``...).  It touches one hash tag.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from leaderboard.scripts import _COMMON, Script, text

__all__ = ["REVIEW", "ReviewReply"]

REVIEW = Script("review", _COMMON + r"""
-- An admin's decision on a finished attempt: void it (its score leaves every board and org
-- rollup), restore it (undo a void) or clear it (reviewed, nothing to change).  The user's
-- standing is recomputed from their counted, non-voided finished attempts (``r:<aid>`` fields
-- 'score|dur|day' that FINISH keeps in the user-in-contest hash), so `best` finds the next best
-- attempt and `sum` subtracts exactly what the attempt added.
-- KEYS: 1 user-in-contest hash, 2 contest stats hash, 3 contest events stream, 4 total board,
--       5 attempt hash (may have expired)
-- ARGV: 1 uid, 2 contest key prefix, 3 ranking 'best'|'sum', 4 action 'void'|'restore'|'clear',
--       5 contest id, 6 attempt id, 7 by, 8 reason, 9 org path 'root,...,org',
--       10 members per path org 'm1,...', 11 '1' to write no event (a rebuild replaying a decision
--       the database already holds), 12 '1' when the path's root is the tree's lone root (its
--       boards are the total and daily boards, as FINISH keeps them)
-- A day's daily boards past their expiry ('lb:x' hash, written by FINISH) are left alone: they are
-- gone, and a decision must not bring them back without their expiry.
-- Returns {'ok', changed 0/1, board score before (-1: none), board score after (-1: none)}
--       | {'err', 'is_voided'|'not_finished'}
local UK, prefix, action, aid = KEYS[1], ARGV[2], ARGV[4], ARGV[6]
-- decisions are on finished attempts: FINISH does not look for a void made before it
local fin = redis.call('HGET', KEYS[5], 'fin')
if fin and fin ~= '1' then return {'err', 'not_finished'} end
local rec = redis.call('HGET', UK, 'r:' .. aid)
local voided = redis.call('HEXISTS', UK, 'v:' .. aid) == 1
local now = now_ms()
local function event()
  local undo = 0
  if action ~= 'void' then undo = 1 end
  if ARGV[11] ~= '1' then
    redis.call('XADD', KEYS[3], '*', 't', 'void', 'cid', ARGV[5], 'aid', aid, 'by', ARGV[7],
      'reason', ARGV[8], 'at', now, 'undo', undo, 'action', action)
  end
  if redis.call('EXISTS', KEYS[5]) == 1 then redis.call('HSET', KEYS[5], 'review', action) end
end
local function board_score(key)
  local v = redis.call('ZSCORE', key, ARGV[1])
  if not v then return nil end
  return tonumber(v)
end
if action == 'clear' then
  if voided then return {'err', 'is_voided'} end
  event()
  return {'ok', 1, -1, -1}
end
if not rec then
  -- never counted on a board (unfinished, or over the counted-per-day limit): record only
  if action == 'void' and not voided then
    redis.call('HSET', UK, 'v:' .. aid, 1)
    redis.call('HINCRBY', KEYS[2], 'voided', 1)
  elseif action == 'restore' and voided then
    redis.call('HDEL', UK, 'v:' .. aid)
    redis.call('HINCRBY', KEYS[2], 'voided', -1)
  else
    return {'ok', 0, -1, -1}
  end
  event()
  return {'ok', 1, -1, -1}
end
if (action == 'void') == voided then return {'ok', 0, -1, -1} end
if action == 'void' then redis.call('HSET', UK, 'v:' .. aid, 1) else redis.call('HDEL', UK, 'v:' .. aid) end
local day = split(rec, '|')[3]
-- what remains on the boards after the decision
local n_all, n_day, ss, sd, ds, dd = 0, 0, 0, 0, 0, 0
local best_t, best_d = nil, nil
local flat = redis.call('HGETALL', UK)
local void_set = {}
for k = 1, #flat, 2 do
  if string.sub(flat[k], 1, 2) == 'v:' then void_set[string.sub(flat[k], 3)] = true end
end
for k = 1, #flat, 2 do
  local f = flat[k]
  if string.sub(f, 1, 2) == 'r:' and not void_set[string.sub(f, 3)] then
    local r = split(flat[k + 1], '|')
    local s, d = tonumber(r[1]), tonumber(r[2])
    local e = enc(s, d)
    n_all = n_all + 1
    ss, sd = ss + s, sd + d
    if not best_t or e > best_t then best_t = e end
    if r[3] == day then
      n_day = n_day + 1
      ds, dd = ds + s, dd + d
      if not best_d or e > best_d then best_d = e end
    end
  end
end
local new_t, new_d = best_t, best_d
if ARGV[3] == 'sum' then
  redis.call('HSET', UK, 'ss', ss, 'sd', sd, 'ds:' .. day, ds, 'dd:' .. day, dd)
  new_t, new_d = nil, nil
  if n_all > 0 then new_t = enc(ss, sd) end
  if n_day > 0 then new_d = enc(ds, dd) end
end
local orgs = split(ARGV[9], ',')
local old_t = board_score(KEYS[4])
local daily = prefix .. 'lb:d:' .. day
local dx = tonumber(redis.call('HGET', prefix .. 'lb:x', day) or '0') or 0
local function place(key, value, expires)
  if value then
    redis.call('ZADD', key, num(value), ARGV[1])
    if expires > 0 then redis.call('PEXPIREAT', key, expires) end
  else
    redis.call('ZREM', key, ARGV[1])
  end
end
local daily_live = dx == 0 or now < dx
place(KEYS[4], new_t, 0)
if daily_live then place(daily, new_d, dx) end
local first_board = 1
if ARGV[12] == '1' then first_board = 2 end
for lv = first_board, #orgs do
  place(prefix .. 'lb:t:o:' .. orgs[lv], new_t, 0)
  if daily_live then place(daily .. ':o:' .. orgs[lv], new_d, dx) end
end
local old_score, new_score = 0, 0
if old_t then old_score = math.floor(old_t / SHIFT) end
if new_t then new_score = math.floor(new_t / SHIFT) end
-- participants: a user with nothing left on the board no longer counts, and comes back on restore
local dp = 0
if n_all == 0 and redis.call('HDEL', UK, 'part') == 1 then dp = -1 end
if n_all > 0 and redis.call('HSETNX', UK, 'part', 1) == 1 then dp = 1 end
if dp ~= 0 then redis.call('HINCRBY', KEYS[2], 'participants', dp) end
if n_day == 0 and redis.call('HDEL', UK, 'p:' .. day) == 1 then
  redis.call('HINCRBY', KEYS[2], 'participants:' .. day, -1)
end
if n_day > 0 and redis.call('HSETNX', UK, 'p:' .. day, 1) == 1 then
  redis.call('HINCRBY', KEYS[2], 'participants:' .. day, 1)
end
local da = 1
if action == 'void' then da = -1 end
redis.call('HINCRBY', KEYS[2], 'voided', -da)
org_rollup(prefix, orgs, split(ARGV[10], ','), dp, da, new_score - old_score)
event()
local after = -1
if new_t then after = new_score end
local before = -1
if old_t then before = old_score end
return {'ok', 1, before, after}
""")


class ReviewReply(NamedTuple):
    """REVIEW's reply: ``error`` '' (done) | is_voided | not_finished; whether the decision
    ``changed`` anything, and the member's board score ``before`` and ``after`` it (None: off the board)."""

    error: str
    changed: bool = False
    before: int | None = None
    after: int | None = None

    @classmethod
    def from_reply(cls, reply: Sequence[Any]) -> ReviewReply:
        if text(reply[0]) == "err":
            return cls(text(reply[1]))
        _, changed, before, after = reply
        return cls("", int(changed) == 1, int(before) if int(before) >= 0 else None,
                   int(after) if int(after) >= 0 else None)
