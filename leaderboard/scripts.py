"""The Lua scripts of the hot path, each a named constant with its contract.

Every script touches the keys of one contest only (one hash tag, one slot), so it runs on a
single Redis and on a Redis Cluster alike.  Scripts that need more keys than the declared ones
build them from the contest prefix passed in ARGV, with the suffixes of ``leaderboard.keys``.
The clock is Redis ``TIME``: deadlines and days never depend on which worker took a request.

Replies are flat arrays whose first element is a status word (``ok``, ``err`` ...), so callers
map them without a second round trip.  Each script's reply is decoded by the record defined right
after it (``StartReply.from_reply`` ...): callers read named fields, never positions.  The hash
fields the scripts read and write are listed and explained in ``leaderboard.keys``
(``ATTEMPT_FIELDS``, ``USER_CONTEST_FIELDS`` ...; tests/test_lua_names.py keeps the two in step).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from leaderboard.entries import LUA_XADD_ANSWER, LUA_XADD_START

__all__ = [
    "ANSWER",
    "ANSWER_CHALLENGE",
    "FINISH",
    "LEADERBOARD_ME",
    "LEADERBOARD_PAGE",
    "REGISTER",
    "START",
    "AnswerReply",
    "BoardMeReply",
    "BoardPageReply",
    "FinishReply",
    "RegisterReply",
    "Script",
    "StartReply",
    "all_scripts",
    "flag_and_number",
    "text",
]


@dataclass(frozen=True, slots=True)
class Script:
    """A Lua script and its SHA1, so callers run it with EVALSHA and load it on NOSCRIPT."""

    name: str
    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())


def text(value: Any) -> str:
    """A reply element as str: hiredis hands back bytes, a decoding client str."""
    return value.decode() if isinstance(value, bytes) else str(value)


# NamedTuple's generated __new__ (keyword defaults) costs about as much again as the reads of a
# whole reply: the hot replies' records are built with tuple.__new__, every field given.
_tuple_new = tuple.__new__


def flag_and_number(reply: Sequence[Any]) -> tuple[bool, int]:
    """A ``{1 | 0, n}`` reply: whether the script said yes (1), and the number it gave with it."""
    flag, number = reply
    return int(flag) == 1, int(number)


_HELPERS = r"""
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local SHIFT = 4294967296
local DMAX = 4294967295
local function enc(score, dur)
  if dur > DMAX then dur = DMAX end
  if dur < 0 then dur = 0 end
  return score * SHIFT + (DMAX - dur)
end
local function num(x) return string.format('%.0f', x) end
local function split(s, sep)
  local out = {}
  if s == nil or s == '' then return out end
  local start = 1
  while true do
    local i = string.find(s, sep, start, true)
    if not i then out[#out + 1] = string.sub(s, start); return out end
    out[#out + 1] = string.sub(s, start, i - 1)
    start = i + 1
  end
end
-- days since 1970-01-01 -> 'YYYY-MM-DD' (proleptic Gregorian; H. Hinnant's civil_from_days)
local function civil(days)
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  return string.format('%04d-%02d-%02d', y, m, d)
end
"""

# Board reads need only this helper: their scripts carry it alone, since a script runs its
# whole preamble on every call (defining the other helpers would cost Redis time on each one:
# loadtest/README.md, "Where the answer endpoint's time goes").
_RANKED_ROWS = r"""
-- Move the rollups of every org on a user's path (orgs[lv] at level lv, mems[lv] its members) by
-- dp participants, da attempts and ds total score, and re-rank each org in its level's sorted sets.
local function org_rollup(prefix, orgs, mems, dp, da, ds)
  for lv, org in ipairs(orgs) do
    local p = redis.call('HINCRBY', prefix .. 'os:p', org, dp)
    redis.call('HINCRBY', prefix .. 'os:a', org, da)
    local s = redis.call('HINCRBY', prefix .. 'os:s', org, ds)
    local m = tonumber(mems[lv] or '0') or 0
    local rate, avg = 0, 0
    if m > 0 then rate = p / m end
    if p > 0 then avg = s / p end
    redis.call('ZADD', prefix .. 'or:participants:' .. lv, p, org)
    redis.call('ZADD', prefix .. 'or:total_score:' .. lv, s, org)
    redis.call('ZADD', prefix .. 'or:avg_score:' .. lv, string.format('%.17g', avg), org)
    redis.call('ZADD', prefix .. 'or:participation_rate:' .. lv, string.format('%.17g', rate), org)
  end
end
-- rows of a board page: uid, encoded score, competition rank, "name\torg" for each member.
-- ``above``: the encoded score just before the first row (false: the first row is the top; nil:
-- unknown).  When it differs from the first row's, that row's rank is its position + 1 and the
-- ZCOUNT (the costly part on a big board) is skipped; equal scores fall back to counting.
local function ranked_rows(board, names, rows, offset, out, above)
  if #rows == 0 then return out end
  local uids = {}
  for j = 1, #rows, 2 do uids[#uids + 1] = rows[j] end
  local meta = redis.call('HMGET', names, unpack(uids))
  local prev, prev_rank = nil, 0
  for j = 1, #rows, 2 do
    local k = (j + 1) / 2
    local s = rows[j + 1]
    local rank
    if k == 1 then
      if above == false or (above ~= nil and above ~= s) then
        rank = offset + 1
      else
        rank = redis.call('ZCOUNT', board, '(' .. s, '+inf') + 1
      end
    elseif s == prev then
      rank = prev_rank
    else
      rank = offset + k
    end
    prev, prev_rank = s, rank
    out[#out + 1] = rows[j]
    out[#out + 1] = s
    out[#out + 1] = rank
    out[#out + 1] = meta[k] or ''
  end
  return out
end
"""

_COMMON = _HELPERS + _RANKED_ROWS

_FINISH_FN = r"""
-- The finish of an attempt, shared by FINISH and by ANSWER (a challenge finishes in the answer's
-- own call).  K: the FINISH script's KEYS, A: its ARGV (see FINISH).
local function finish_attempt(K, A)
  local h = redis.call('HMGET', K[1], 'uid', 'fin', 'st', 'dl', 'score', 'cc', 'qc', 'day', 'path',
    'mem', 'fa', 'dur', 'counted', 'auto', 'cur', 'dx', 'lr')
  if not h[1] or (A[1] ~= '' and h[1] ~= A[1]) then return {'err', 'not_found'} end
  local uid = h[1]
  local prefix = A[2]
  -- K[2] is only a routing hint: the sweeper does not know the owner, the attempt does.
  local UK = prefix .. 'u:' .. uid
  local function result(score, cc, qc, dur, counted, fa, st, again, auto)
    local mine = redis.call('ZSCORE', K[7], uid)
    local rank, best = -1, 0
    if mine then
      rank = redis.call('ZCOUNT', K[7], '(' .. mine, '+inf') + 1
      best = math.floor(tonumber(mine) / SHIFT)
    end
    return {'ok', score, cc, qc, dur, rank, best, counted, fa, st, again, auto, mine or ''}
  end
  local st, dl = tonumber(h[3]), tonumber(h[4])
  local score, cc, qc, day = tonumber(h[5]), tonumber(h[6]), tonumber(h[7]), h[8]
  -- a challenge (field 'cur') has served cur + 1 questions of its drawn sequence
  if h[15] then qc = tonumber(h[15]) + 1 end
  if h[2] == '1' then
    return result(score, cc, qc, tonumber(h[12]), tonumber(h[13]), tonumber(h[11]), st, 1, tonumber(h[14] or '0'))
  end
  local replay = A[8] ~= nil and A[8] ~= ''
  local now = now_ms()
  if replay then now = tonumber(A[8]) end
  if A[5] == '1' and now < dl then return {'err', 'not_due'} end
  local auto = A[5]
  if auto ~= '1' and not replay and now > dl + tonumber(A[9] or '0') then auto = '1' end
  local fa = now
  if fa > dl and not replay then fa = dl end
  local dur = fa - st
  local counted = 1
  local cpd = tonumber(A[4])
  if cpd > 0 and tonumber(redis.call('HGET', UK, 'c:' .. day) or '0') >= cpd then counted = 0 end
  redis.call('HSET', K[1], 'fin', 1, 'fa', fa, 'dur', dur, 'counted', counted, 'auto', auto)
  if redis.call('HGET', UK, 'active') == A[7] then redis.call('HDEL', UK, 'active') end
  redis.call('ZREM', K[5], A[7])
  redis.call('HINCRBY', K[3], 'attempts_finished', 1)
  redis.call('HINCRBY', K[6], 'f:' .. math.floor(now / 60000), 1)
  if counted == 1 then
    redis.call('HINCRBY', UK, 'c:' .. day, 1)
    -- kept per attempt so a review can void one and recompute the user's standing (review_scripts.REVIEW)
    redis.call('HSET', UK, 'r:' .. A[7], score .. '|' .. dur .. '|' .. day)
    local daily = prefix .. 'lb:d:' .. day
    if redis.call('HSETNX', UK, 'p:' .. day, 1) == 1 then
      redis.call('HINCRBY', K[3], 'participants:' .. day, 1)
    end
    local first = redis.call('HSETNX', UK, 'part', 1)
    if first == 1 then redis.call('HINCRBY', K[3], 'participants', 1) end
    local enc_t, enc_d, set_t, set_d, delta
    if A[3] == 'sum' then
      local ss = redis.call('HINCRBY', UK, 'ss', score)
      local sd = redis.call('HINCRBY', UK, 'sd', dur)
      local ds = redis.call('HINCRBY', UK, 'ds:' .. day, score)
      local dd = redis.call('HINCRBY', UK, 'dd:' .. day, dur)
      enc_t, enc_d, set_t, set_d, delta = enc(ss, sd), enc(ds, dd), true, true, score
    else
      enc_t = enc(score, dur)
      enc_d = enc_t
      local old = redis.call('ZSCORE', K[7], uid)
      set_t = (not old) or enc_t > tonumber(old)
      delta = 0
      if set_t then
        delta = score
        if old then delta = score - math.floor(tonumber(old) / SHIFT) end
      end
      local old_d = redis.call('ZSCORE', daily, uid)
      set_d = (not old_d) or enc_d > tonumber(old_d)
    end
    local orgs = split(h[9], ',')
    -- the lone root's boards are the contest's total and daily boards: not stored twice
    local first_board = 1
    if h[17] == '1' then first_board = 2 end
    if set_t then
      redis.call('ZADD', K[7], num(enc_t), uid)
      for lv = first_board, #orgs do redis.call('ZADD', prefix .. 'lb:t:o:' .. orgs[lv], num(enc_t), uid) end
    end
    if set_d then
      local dx = h[16]
      redis.call('ZADD', daily, num(enc_d), uid)
      if dx then
        -- a day's boards expire together, after the contest day plus the keep period; REVIEW reads
        -- the time in the 'lb:x' hash to leave an expired day alone
        redis.call('PEXPIREAT', daily, dx)
        redis.call('HSET', prefix .. 'lb:x', day, dx)
      end
      for lv = first_board, #orgs do
        local key = daily .. ':o:' .. orgs[lv]
        redis.call('ZADD', key, num(enc_d), uid)
        if dx then redis.call('PEXPIREAT', key, dx) end
      end
    end
    org_rollup(prefix, orgs, split(h[10], ','), first, 1, delta)
  end
  if not replay then
    redis.call('XADD', K[4], '*', 't', 'fin', 'cid', A[6], 'aid', A[7], 'uid', uid,
      'score', score, 'cc', cc, 'qc', qc, 'dur', dur, 'at', fa, 'auto', auto, 'counted', counted)
  end
  return result(score, cc, qc, dur, counted, fa, st, 0, tonumber(auto))
end
"""

REGISTER = Script("register", _COMMON + r"""
-- Register a user, or find the user of a gateway identity.
-- KEYS: 1 index hash (phone -> uid, or external id -> uid), 2 user id counter,
--       3 the users event stream, 4 registrants-per-org hash
-- ARGV: 1 mode 'phone' | 'ext', 2 phone or external id, 3 name, 4 org id,
--       5 org path 'root,...,org', 6 phone to record ('' for gateway users)
-- Returns {'new', uid, now} | {'existing', uid} | {'dup'}
local uid = redis.call('HGET', KEYS[1], ARGV[2])
if uid then
  if ARGV[1] == 'phone' then return {'dup'} end
  return {'existing', uid}
end
local now = now_ms()
uid = tostring(redis.call('INCR', KEYS[2]))
redis.call('HSET', KEYS[1], ARGV[2], uid)
redis.call('HINCRBY', KEYS[4], '', 1)
for _, org in ipairs(split(ARGV[5], ',')) do redis.call('HINCRBY', KEYS[4], org, 1) end
local ext = ''
if ARGV[1] == 'ext' then ext = ARGV[2] end
redis.call('XADD', KEYS[3], '*', 't', 'user', 'uid', uid, 'name', ARGV[3], 'phone', ARGV[6],
  'ext', ext, 'org', ARGV[4], 'at', now)
return {'new', uid, now}
""")


class RegisterReply(NamedTuple):
    """REGISTER's reply: ``status`` new | existing | dup, the user id ('' for dup)."""

    status: str
    user_id: str

    @classmethod
    def from_reply(cls, reply: Sequence[Any]) -> RegisterReply:
        return cls(text(reply[0]), text(reply[1]) if len(reply) > 1 else "")

START = Script("start", _COMMON + LUA_XADD_START + r"""
-- Start an attempt, or hand back the user's unfinished one.
-- KEYS: 1 user-in-contest hash, 2 the new attempt's hash, 3 deadlines zset, 4 contest events
--       stream, 5 contest stats hash, 6 names hash
-- ARGV: 1 uid, 2 new attempt id, 3 contest starts_at ms, 4 ends_at ms, 5 time limit ms (0: none),
--       6 attempts per day (0: unlimited), 7 attempts in total (0: unlimited),
--       8 timezone offset ms, 9 attempt key prefix ('{c:x}:a:'), 10 seconds the attempt is kept
--       after its deadline, 11 contest id, 12 org id, 13 org path 'root,...,org',
--       14 members per path org 'm1,...', 15 'name\torg', 16 paper JSON for the record,
--       17 question count, 18.. one field per question: 'type|shown key|points|question id|options',
--       18 + question count: 'c' for a challenge (the attempt serves one question at a time: field
--       'cur' is the one being served; ANSWER moves it on), absent or '' for a paper,
--       19 + qc: client IP token, 20 + qc: device token (review evidence, noted at every start or
--       resume in the user-in-contest hash fields 'ip' and 'dv', see leaderboard.keys; '' or absent:
--       nothing noted), 21 + qc: ms the day's daily boards are kept after the contest day ends
--       (0 or absent: forever; stored as the attempt's 'dx'), 22 + qc: '1' when the org path's root
--       is the tree's lone root (its boards are the contest's own: stored as the attempt's 'lr')
-- Returns {'closed'} | {'limit', 'total'|'day'} | {'resume', {hash...}, attempt id} | {'new', now, deadline, day}
local now = now_ms()
if now < tonumber(ARGV[3]) or now >= tonumber(ARGV[4]) then return {'closed'} end
local base = 18 + tonumber(ARGV[17])
-- Each distinct token (all of one width) is appended once to its field, up to 16 of them: a count
-- at the cap reads "16 or more", and the field never grows past it.  nil: nothing to write.
local function noted(seen, token)
  if not token or token == '' then return nil end
  seen = seen or ''
  local w = #token
  if #seen >= 16 * w then return nil end
  for at = 1, #seen, w do
    if string.sub(seen, at, at + w - 1) == token then return nil end
  end
  return seen .. token
end
local function note_client()
  local e = redis.call('HMGET', KEYS[1], 'ip', 'dv')
  local ip, dv = noted(e[1], ARGV[base + 1]), noted(e[2], ARGV[base + 2])
  if ip then redis.call('HSET', KEYS[1], 'ip', ip) end
  if dv then redis.call('HSET', KEYS[1], 'dv', dv) end
end
local active = redis.call('HGET', KEYS[1], 'active')
if active then
  local akey = ARGV[9] .. active
  local st = redis.call('HMGET', akey, 'fin', 'dl')
  if st[1] == '0' and tonumber(st[2]) > now then
    note_client()
    return {'resume', redis.call('HGETALL', akey), active}
  end
end
local day = civil(math.floor((now + tonumber(ARGV[8])) / 86400000))
local limit_total = tonumber(ARGV[7])
if limit_total > 0 and tonumber(redis.call('HGET', KEYS[1], 'n') or '0') >= limit_total then
  return {'limit', 'total'}
end
local per_day = tonumber(ARGV[6])
if per_day > 0 and tonumber(redis.call('HGET', KEYS[1], 'n:' .. day) or '0') >= per_day then
  return {'limit', 'day'}
end
redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('HINCRBY', KEYS[1], 'n:' .. day, 1)
redis.call('HSET', KEYS[1], 'active', ARGV[2])
local ends = tonumber(ARGV[4])
local tl = tonumber(ARGV[5])
local dl = ends
if tl > 0 and now + tl < ends then dl = now + tl end
local qc = tonumber(ARGV[17])
local fields = {'uid', ARGV[1], 'st', now, 'dl', dl, 'day', day, 'fin', 0, 'score', 0, 'cc', 0,
  'n', 0, 'la', now, 'streak', 0, 'qc', qc, 'path', ARGV[13], 'mem', ARGV[14], 'org', ARGV[12],
  'paper', ARGV[16]}
for i = 0, qc - 1 do
  fields[#fields + 1] = 'q' .. i
  fields[#fields + 1] = ARGV[18 + i]
end
if ARGV[18 + qc] == 'c' then
  fields[#fields + 1] = 'cur'
  fields[#fields + 1] = 0
end
local keep = tonumber(ARGV[base + 3] or '0') or 0
if keep > 0 then
  -- the end of the attempt's contest day (the day of its daily boards), plus the keep period
  local tz = tonumber(ARGV[8])
  fields[#fields + 1] = 'dx'
  fields[#fields + 1] = num((math.floor((now + tz) / 86400000) + 1) * 86400000 - tz + keep)
end
if ARGV[base + 4] == '1' then
  fields[#fields + 1] = 'lr'
  fields[#fields + 1] = 1
end
redis.call('HSET', KEYS[2], unpack(fields))
redis.call('PEXPIREAT', KEYS[2], dl + tonumber(ARGV[10]) * 1000)
redis.call('ZADD', KEYS[3], dl, ARGV[2])
redis.call('HSET', KEYS[6], ARGV[1], ARGV[15])
redis.call('HINCRBY', KEYS[5], 'attempts_started', 1)
local slash_path = ''
if ARGV[13] ~= '' then slash_path = '/' .. (string.gsub(ARGV[13], ',', '/')) .. '/' end
xadd_start(KEYS[4], ARGV[2], ARGV[11], ARGV[1], ARGV[12], slash_path, now, dl, day, ARGV[16])
note_client()
return {'new', now, dl, day}
""")


class StartReply(NamedTuple):
    """START's reply.  ``status``: new (``started_at``, ``deadline_at``, ``day``), resume (the
    unfinished ``attempt_id`` and its hash as ``state``, field -> raw value), closed, or limit
    (``limit``: day | total)."""

    status: str
    started_at: int = 0
    deadline_at: int = 0
    day: str = ""
    limit: str = ""
    attempt_id: str = ""
    state: dict[str, Any] | None = None

    @classmethod
    def from_reply(cls, reply: Sequence[Any]) -> StartReply:
        status = text(reply[0])
        if status == "new":
            return cls(status, int(reply[1]), int(reply[2]), text(reply[3]))
        if status == "resume":
            flat = reply[1]
            state = {text(flat[i]): flat[i + 1] for i in range(0, len(flat), 2)}
            return cls(status, attempt_id=text(reply[2]), state=state)
        if status == "limit":
            return cls(status, limit=text(reply[1]))
        return cls(status)

ANSWER = Script("answer", _COMMON + LUA_XADD_ANSWER + r"""
-- Score one answer against the attempt's shuffled key, exactly once.
-- KEYS: 1 attempt hash, 2 contest stats hash, 3 per-question stats hash, 4 contest events
--       stream, 5 timeline hash
-- ARGV: 1 uid, 2 question index, 3 choice (sorted option keys as shown, 'B' or 'AC'),
--       4 partial credit 0/1, 5 time bonus max points, 6 time bonus window ms,
--       7 streak bonus step, 8 streak bonus cap, 9 per-question limit ms (0: none),
--       10 grace ms, 11 human minimum ms (faster answers are flagged), 12 contest id, 13 attempt id,
--       14 per-user answer rate: emission interval ms ('0' or absent: no limit), 15 its burst
-- Returns {'ok', correct 0/1, points, attempt score, shown key, flagged 0/1, type s|m|j}
--       | {'err', 'not_found'|'bad_index'|'invalid_choice'|'already_answered'|'deadline_passed'|'finished'}
--       | {'err', 'rate_limited', retry after ms}
local i = ARGV[2]
local h = redis.call('HMGET', KEYS[1], 'uid', 'fin', 'dl', 'la', 'score', 'streak', 'q' .. i,
  'a' .. i, 'cc', 'n', 'rl')
if not h[1] or h[1] ~= ARGV[1] then return {'err', 'not_found'} end
-- The per-user answer limit lives in the attempt hash (one active attempt per user, so per
-- attempt is per user): a GCRA check here costs no extra round trip.  Replays count too.
local rl_iv = tonumber(ARGV[14] or '0') or 0
if rl_iv > 0 then
  local t0 = now_ms()
  local tat = tonumber(h[11] or '0') or 0
  if tat < t0 then tat = t0 end
  local allow_at = tat + rl_iv - rl_iv * tonumber(ARGV[15])
  if t0 < allow_at then return {'err', 'rate_limited', math.ceil(allow_at - t0)} end
  redis.call('HSET', KEYS[1], 'rl', string.format('%.3f', tat + rl_iv))
end
if not h[7] then return {'err', 'bad_index'} end
local q = split(h[7], '|')
local qtype, key, points, qid, nopt = q[1], q[2], tonumber(q[3]), q[4], tonumber(q[5])
local choice = ARGV[3]
if h[8] then
  local a = split(h[8], '|')
  if a[1] == '' then return {'err', 'deadline_passed'} end
  -- the same answer again is the same result: field 6 is the attempt's score right after it
  if a[1] == choice then
    return {'ok', tonumber(a[2]), tonumber(a[3]), tonumber(a[6] or h[5]), key, tonumber(a[5]), qtype}
  end
  return {'err', 'already_answered'}
end
local now = now_ms()
local grace = tonumber(ARGV[10])
if now > tonumber(h[3]) + grace then return {'err', 'deadline_passed'} end
if h[2] == '1' then return {'err', 'finished'} end
local n = tonumber(h[10]) + 1
local minute = math.floor(now / 60000)
local second = math.floor(now / 1000)
local elapsed = now - tonumber(h[4])
local qlimit = tonumber(ARGV[9])
if qlimit > 0 and elapsed > qlimit + grace then
  -- The question's own clock ran out: record it as unanswered so the next question's clock starts now.
  redis.call('HSET', KEYS[1], 'a' .. i, '|0|0|' .. now .. '|0', 'la', now, 'streak', 0, 'n', n)
  redis.call('HINCRBY', KEYS[2], 'answers', 1)
  redis.call('HINCRBY', KEYS[3], qid .. ':n', 1)
  redis.call('HINCRBY', KEYS[5], 'a:' .. minute, 1)
  redis.call('HINCRBY', KEYS[5], 's:' .. second, 1)
  xadd_answer(KEYS[4], ARGV[13], i, ARGV[12], ARGV[1], qid, '', 0, 0, now, 0)
  return {'err', 'deadline_passed'}
end
if choice == '' or #choice > nopt then return {'err', 'invalid_choice'} end
if qtype ~= 'm' and #choice ~= 1 then return {'err', 'invalid_choice'} end
local maxkey = string.byte('A') + nopt - 1
local hits, wrong = 0, 0
for c = 1, #choice do
  local b = string.byte(choice, c)
  if b > maxkey then return {'err', 'invalid_choice'} end
  if string.find(key, string.char(b), 1, true) then hits = hits + 1 else wrong = wrong + 1 end
end
local ok = 0
local pts = 0
if choice == key then
  ok = 1
  pts = points
elseif qtype == 'm' and ARGV[4] == '1' and wrong == 0 and hits > 0 then
  pts = math.floor(points * hits / #key)
end
local streak = 0
if ok == 1 then
  streak = tonumber(h[6]) + 1
  local tb_max, tb_over = tonumber(ARGV[5]), tonumber(ARGV[6])
  if tb_max > 0 and tb_over > 0 and elapsed < tb_over then
    pts = pts + math.floor(tb_max * (tb_over - elapsed) / tb_over)
  end
  local step, cap = tonumber(ARGV[7]), tonumber(ARGV[8])
  if step > 0 and streak > 1 then
    local bonus = step * (streak - 1)
    if cap > 0 and bonus > cap then bonus = cap end
    pts = pts + bonus
  end
end
local fl = 0
if elapsed < tonumber(ARGV[11]) then fl = 1 end
local score = tonumber(h[5]) + pts
redis.call('HSET', KEYS[1], 'a' .. i, choice .. '|' .. ok .. '|' .. pts .. '|' .. now .. '|' .. fl .. '|' .. score,
  'score', score, 'cc', tonumber(h[9]) + ok, 'la', now, 'streak', streak, 'n', n)
redis.call('HINCRBY', KEYS[2], 'answers', 1)
if ok == 1 then redis.call('HINCRBY', KEYS[2], 'correct', 1) end
if fl == 1 then redis.call('HINCRBY', KEYS[2], 'flagged', 1) end
redis.call('HINCRBY', KEYS[3], qid .. ':n', 1)
if ok == 1 then redis.call('HINCRBY', KEYS[3], qid .. ':c', 1) end
redis.call('HINCRBY', KEYS[5], 'a:' .. minute, 1)
redis.call('HINCRBY', KEYS[5], 's:' .. second, 1)
xadd_answer(KEYS[4], ARGV[13], i, ARGV[12], ARGV[1], qid, choice, ok, pts, now, fl)
return {'ok', ok, pts, score, key, fl, qtype}
""")


class AnswerReply(NamedTuple):
    """The reply of ANSWER and ANSWER_CHALLENGE.

    ``error`` is '' for an accepted answer (``correct``, ``points``, ``score``, the ``shown`` key,
    ``flagged``, the question's ``qtype`` s|m|j), else the script's error word; ``retry_after_ms``
    goes with rate_limited.  A challenge adds ``next_question`` ('question id|perm', '' when the
    run is over; None for a paper) and, when its run ended in this call (its last or first wrong
    answer, or deadline_passed at the question's time limit), the run's ``finish``."""

    error: str
    correct: int = 0
    points: int = 0
    score: int = 0
    shown: str = ""
    flagged: int = 0
    qtype: str = ""
    retry_after_ms: int = 0
    next_question: str | None = None
    finish: FinishReply | None = None

    @classmethod
    def from_reply(cls, reply: Sequence[Any]) -> AnswerReply:
        if len(reply) == 7:  # the common case: a paper's accepted answer
            # the numbers are Lua numbers, so RESP integers: they arrive as int already
            _, ok, pts, score, shown, flagged, qtype = reply
            return _tuple_new(cls, ("", ok, pts, score, text(shown), flagged, text(qtype), 0, None, None))
        if text(reply[0]) == "err":
            error = text(reply[1])
            if error == "rate_limited":
                return cls(error, retry_after_ms=int(reply[2]))
            if len(reply) > 2:
                return cls(error, finish=FinishReply.from_reply(reply[2]))
            return cls(error)
        _, ok, pts, score, shown, flagged, qtype, nxt, *end = reply
        return cls("", int(ok), int(pts), int(score), text(shown), int(flagged), text(qtype), 0, text(nxt),
                   FinishReply.from_reply(end[0]) if end else None)

# Challenge mode (issue 15) is the paper's ANSWER with these edits, (paper text, challenge text):
# a script of its own, so the paper's hot path runs exactly the code it ran before.
_CHALLENGE_EDITS = (
    ("""--       14 per-user answer rate: emission interval ms ('0' or absent: no limit), 15 its burst
""", """--       14 per-user answer rate: emission interval ms ('0' or absent: no limit), 15 its burst,
--       16 contest key prefix, 17 ranking, 18 counted attempts per day (FINISH's, for the last answer)
"""),
    ("""'already_answered'|'deadline_passed'|'finished'}
""", """'already_answered'|'deadline_passed'|'finished'
--                |'not_current'}
-- A challenge (attempt field 'cur') serves one question at a time: only index 'cur' may be answered
-- ('not_current' otherwise); its 'ok' reply adds 8: the next question 'question id|perm' or '' when
-- the run is over, and then 9: the FINISH reply of the attempt (+ its id), finished in this same
-- call (first wrong answer, last question); a run ended by the question's time limit answers
-- {'err', 'deadline_passed', FINISH reply}.  A repeated answer repeats all of it.
"""),
    ("""  'a' .. i, 'cc', 'n', 'rl')
""", """  'a' .. i, 'cc', 'n', 'rl', 'cur')
local cur = h[12]
local function challenge_finish()
  local prefix = ARGV[16]
  local r = finish_attempt({KEYS[1], prefix .. 'u:' .. ARGV[1], KEYS[2], KEYS[4], prefix .. 'deadlines', KEYS[5],
    prefix .. 'lb:t', prefix .. 'names'}, {ARGV[1], prefix, ARGV[17], ARGV[18], '0', ARGV[12], ARGV[13], '', ARGV[10]})
  r[#r + 1] = ARGV[13]  -- the attempt id, for the finish shape
  return r
end
-- the reply of a challenge answer: the next question after a right one, else the run's finish
local function challenge_reply(r, ok)
  local c = redis.call('HMGET', KEYS[1], 'qc', 'paper')
  local nxt = tonumber(i) + 1
  if ok == 1 and nxt < tonumber(c[1]) then
    local e = cjson.decode(c[2])[nxt + 1]
    r[8] = e[1] .. '|' .. e[2]
    return r, nxt
  end
  r[8] = ''
  r[9] = challenge_finish()
  return r, nil
end
"""),
    ("""  if a[1] == '' then return {'err', 'deadline_passed'} end
""", """  if a[1] == '' then
    if cur then return {'err', 'deadline_passed', challenge_finish()} end
    return {'err', 'deadline_passed'}
  end
"""),
    ("""    return {'ok', tonumber(a[2]), tonumber(a[3]), tonumber(a[6] or h[5]), key, tonumber(a[5]), qtype}
""", """    local r = {'ok', tonumber(a[2]), tonumber(a[3]), tonumber(a[6] or h[5]), key, tonumber(a[5]), qtype}
    if cur then r = challenge_reply(r, tonumber(a[2])) end
    return r
"""),
    ("""if h[2] == '1' then return {'err', 'finished'} end
""", """if h[2] == '1' then return {'err', 'finished'} end
if cur and cur ~= i then return {'err', 'not_current'} end
"""),
    ("""  xadd_answer(KEYS[4], ARGV[13], i, ARGV[12], ARGV[1], qid, '', 0, 0, now, 0)
  return {'err', 'deadline_passed'}
""", """  xadd_answer(KEYS[4], ARGV[13], i, ARGV[12], ARGV[1], qid, '', 0, 0, now, 0)
  -- a challenge ends at its question's time limit
  if cur then return {'err', 'deadline_passed', challenge_finish()} end
  return {'err', 'deadline_passed'}
"""),
    ("""elseif qtype == 'm' and ARGV[4] == '1' and wrong == 0 and hits > 0 then
""", """elseif qtype == 'm' and ARGV[4] == '1' and wrong == 0 and hits > 0 and not cur then
  -- (a challenge scores right answers only: a partly right one ends the run with nothing)
"""),
    ("""return {'ok', ok, pts, score, key, fl, qtype}
""", """if cur then
  local r, nxt = challenge_reply({'ok', ok, pts, score, key, fl, qtype}, ok)
  -- the next question's own clock ('la') starts now, set above
  if nxt then redis.call('HSET', KEYS[1], 'cur', nxt) end
  return r
end
return {'ok', ok, pts, score, key, fl, qtype}
"""),
)


def _challenge(source: str) -> str:
    for paper, challenge in _CHALLENGE_EDITS:
        if source.count(paper) != 1:  # the paper script changed under an edit: fix the edit
            raise AssertionError(f"challenge edit does not apply once: {paper[:60]!r}")
        source = source.replace(paper, challenge)
    return source


ANSWER_CHALLENGE = Script("answer_challenge", _COMMON + _FINISH_FN + _challenge(ANSWER.source[len(_COMMON):]))

FINISH = Script("finish", _COMMON + _FINISH_FN + r"""
-- Finish an attempt once: final score, boards (total, daily, every org of the user's path),
-- org rollups, counters and the result event.  A second call reports the stored result.
-- KEYS: 1 attempt hash, 2 user-in-contest hash, 3 contest stats hash, 4 contest events stream,
--       5 deadlines zset, 6 timeline hash, 7 total board, 8 names hash
-- ARGV: 1 uid ('' when the service finishes an abandoned attempt), 2 contest key prefix,
--       3 ranking 'best'|'sum', 4 counted attempts per day (0: all), 5 auto 0/1,
--       6 contest id, 7 attempt id, 8 replay finish time ms ('' normally; set by a rebuild from
--       the database, which also suppresses the result event: the database has it already),
--       9 grace ms: a participant's finish later than deadline + grace is the service's own
--       finish at the deadline (recorded as automatic; the caller answers 410 deadline_passed)
-- Returns {'ok', score, correct, questions, duration, rank (-1: none), board score,
--          counted, finished_at, started_at, 1 if it was already finished, 1 if finished automatically,
--          encoded board score ('' if none: a sharded contest adds the other shards' ZCOUNTs to the rank)}
--       | {'err', 'not_found'|'not_due'}
-- (a challenge attempt, field 'cur', counts cur + 1 questions: the ones it served)
return finish_attempt(KEYS, ARGV)
""")


class FinishReply(NamedTuple):
    """FINISH's reply (and a challenge's, finished inside ANSWER_CHALLENGE, with its ``attempt_id``).

    ``error`` is '' when finished (now or before: ``again``), else not_found | not_due.  ``rank``
    is -1 when the attempt is on no board; ``best`` its board score; ``auto``: finished by the
    service at the deadline; ``encoded``: the board's encoded score (None when not on it), which
    a sharded contest counts the other shards above."""

    error: str
    score: int = 0
    correct_count: int = 0
    question_count: int = 0
    duration_ms: int = 0
    rank: int = -1
    best: int = 0
    counted: bool = False
    finished_at: int = 0
    started_at: int = 0
    again: bool = False
    auto: bool = False
    encoded: float | None = None
    attempt_id: str = ""

    @classmethod
    def from_reply(cls, reply: Sequence[Any]) -> FinishReply:
        if text(reply[0]) == "err":
            return cls(text(reply[1]))
        # the numbers are Lua numbers, so RESP integers: they arrive as int already
        _, score, cc, qc, dur, rank, best, counted, fa, st, again, auto, encoded, *tail = reply
        return _tuple_new(cls, ("", score, cc, qc, dur, rank, best, counted == 1, fa, st, again == 1, auto == 1,
                                float(encoded) if encoded else None, text(tail[0]) if tail else ""))

LEADERBOARD_PAGE = Script("leaderboard_page", _RANKED_ROWS + r"""
-- One page of a board with competition ranks ("1224") and names.
-- KEYS: 1 board, 2 names hash.  ARGV: 1 offset, 2 limit
-- Returns {total, uid, encoded score, rank, 'name\torg', uid, ...}
local total = redis.call('ZCARD', KEYS[1])
local offset = tonumber(ARGV[1])
if offset == 0 then
  local rows = redis.call('ZREVRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1, 'WITHSCORES')
  return ranked_rows(KEYS[1], KEYS[2], rows, 0, {total}, false)
end
-- one row more, from just above the page: its score usually spares ranked_rows a ZCOUNT
local rows = redis.call('ZREVRANGE', KEYS[1], offset - 1, offset + tonumber(ARGV[2]) - 1, 'WITHSCORES')
if #rows < 2 then return {total} end
return ranked_rows(KEYS[1], KEYS[2], {unpack(rows, 3)}, offset, {total}, rows[2])
""")


class BoardPageReply(NamedTuple):
    """LEADERBOARD_PAGE's reply: the board's ``total`` and its flat ``rows`` (uid, encoded score,
    rank, 'name\torg' per member; ``leaderboard.boards`` makes them entries)."""

    total: int
    rows: Sequence[Any]

    @classmethod
    def from_reply(cls, reply: Sequence[Any]) -> BoardPageReply:
        return cls(int(reply[0]), reply[1:])

LEADERBOARD_ME = Script("leaderboard_me", _RANKED_ROWS + r"""
-- A member's rank and the entries around it.
-- KEYS: 1 board, 2 names hash.  ARGV: 1 uid, 2 entries above and below
-- Returns {total} when the member is not on the board, else
--         {total, encoded score, rank, uid, encoded score, rank, 'name\torg', ...}
local total = redis.call('ZCARD', KEYS[1])
local mine = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not mine then return {total} end
local rank = redis.call('ZCOUNT', KEYS[1], '(' .. mine, '+inf') + 1
local around = tonumber(ARGV[2])
if around == 0 then
  -- the member alone: its score and rank are known, only its name is read
  return {total, mine, rank, ARGV[1], mine, rank, redis.call('HGET', KEYS[2], ARGV[1]) or ''}
end
local pos = redis.call('ZREVRANK', KEYS[1], ARGV[1])
local lo = pos - around
if lo < 0 then lo = 0 end
if lo == 0 then
  local rows = redis.call('ZREVRANGE', KEYS[1], 0, pos + around, 'WITHSCORES')
  return ranked_rows(KEYS[1], KEYS[2], rows, 0, {total, mine, rank}, false)
end
local rows = redis.call('ZREVRANGE', KEYS[1], lo - 1, pos + around, 'WITHSCORES')
return ranked_rows(KEYS[1], KEYS[2], {unpack(rows, 3)}, lo, {total, mine, rank}, rows[2])
""")


class BoardMeReply(NamedTuple):
    """LEADERBOARD_ME's reply: the board's ``total``; the member's ``encoded`` score and ``rank``
    (None when not on the board) and the flat ``rows`` around it (as BoardPageReply's)."""

    total: int
    encoded: Any = None
    rank: int | None = None
    rows: Sequence[Any] = ()

    @classmethod
    def from_reply(cls, reply: Sequence[Any]) -> BoardMeReply:
        if len(reply) == 1:
            return cls(int(reply[0]))
        return cls(int(reply[0]), reply[1], int(reply[2]), reply[3:])


def all_scripts() -> tuple[Script, ...]:
    return (REGISTER, START, ANSWER, ANSWER_CHALLENGE, FINISH, LEADERBOARD_PAGE, LEADERBOARD_ME)
