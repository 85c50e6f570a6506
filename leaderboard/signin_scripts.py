"""Lua scripts of sign-in: SMS code sends and checks, and the profile an SMS sign-in reads.

Every script touches one hash tag: a phone's ``{sms:<phone>}`` keys, or the ``{quiz}`` users.
Codes are never in Redis: only HMAC-SHA256(secret, purpose|phone|code), computed by the caller,
so neither a Redis dump nor a replica read reveals a code that could still be used.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from leaderboard.scripts import Script, flag_and_number, text

__all__ = ["SMS_CHECK", "SMS_RELEASE", "SMS_RESERVE", "SMS_STORE", "USER_PROFILE", "SmsCheckReply",
           "SmsReserveReply"]

SMS_RESERVE = Script("sms_reserve", r"""
-- Take a send slot for one phone: the resend clock and the rolling daily count.
-- KEYS: 1 resend clock (keys.sms_cooldown), 2 daily count (keys.sms_daily)
-- ARGV: 1 resend interval ms, 2 daily cap, 3 daily window ms
-- Returns {1, sends in the window} | {0, 'resend'|'daily', retry after ms}
local wait = redis.call('PTTL', KEYS[1])
if wait > 0 then return {0, 'resend', wait} end
local n = tonumber(redis.call('GET', KEYS[2]) or '0')
if n >= tonumber(ARGV[2]) then
  local left = redis.call('PTTL', KEYS[2])
  if left < 0 then left = tonumber(ARGV[3]) end
  return {0, 'daily', left}
end
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
n = redis.call('INCR', KEYS[2])
if n == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
return {1, n}
""")


class SmsReserveReply(NamedTuple):
    """SMS_RESERVE's reply: the slot was ``taken`` (``sends`` in the window), else the cap that
    refused it (``refused_by``: resend | daily) and ``retry_after_ms``."""

    taken: bool
    sends: int = 0
    refused_by: str = ""
    retry_after_ms: int = 0

    @classmethod
    def from_reply(cls, reply: Sequence[Any]) -> SmsReserveReply:
        if int(reply[0]) == 1:
            return cls(True, int(reply[1]))
        return cls(False, refused_by=text(reply[1]), retry_after_ms=int(reply[2]))


SMS_RELEASE = Script("sms_release", r"""
-- Give a send slot back after the provider failed (nothing was sent, no code stored).
-- KEYS: 1 resend clock, 2 daily count
-- Returns 1
redis.call('DEL', KEYS[1])
local n = tonumber(redis.call('GET', KEYS[2]) or '0')
if n > 0 then redis.call('DECR', KEYS[2]) end
return 1
""")

SMS_STORE = Script("sms_store", r"""
-- Keep a sent code as its HMAC: a new code replaces the previous one (and its tries).
-- KEYS: 1 code hash (keys.sms_code)
-- ARGV: 1 hex HMAC of the code, 2 tries allowed, 3 lifetime ms
-- Returns 1
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'h', ARGV[1], 'left', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
""")

SMS_CHECK = Script("sms_check", r"""
-- Check a code, once: a right one is used up; a wrong one costs a try, and the last try takes the
-- code away (a new one must be sent, within the resend and daily caps).
-- KEYS: 1 code hash
-- ARGV: 1 hex HMAC of the code typed
-- Returns {1, 0} right | {0, tries left} wrong (0: the code is gone) | {0, -1} no live code
local h = redis.call('HGET', KEYS[1], 'h')
if not h then return {0, -1} end
if h == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return {1, 0}
end
local left = redis.call('HINCRBY', KEYS[1], 'left', -1)
if left <= 0 then
  redis.call('DEL', KEYS[1])
  left = 0
end
return {0, left}
""")


class SmsCheckReply(NamedTuple):
    """SMS_CHECK's reply: the code was ``right`` (and is used up), else the ``tries_left`` (0: the
    code is gone; -1: there was no live code)."""

    right: bool
    tries_left: int

    @classmethod
    def from_reply(cls, reply: Sequence[Any]) -> SmsCheckReply:
        return cls(*flag_and_number(reply))

USER_PROFILE = Script("user_profile", r"""
-- Record the profile of the user a registration just made (sent in the same write as REGISTER,
-- right after it).  HSETNX: a duplicate registration of a taken phone never renames its user.
-- KEYS: 1 phone index (keys.user_phones), 2 profiles hash (keys.user_profiles)
-- ARGV: 1 phone, 2 name, 3 org id
-- Returns 1 written | 0 kept
local uid = redis.call('HGET', KEYS[1], ARGV[1])
if not uid then return 0 end
return redis.call('HSETNX', KEYS[2], uid, ARGV[2] .. '\t' .. ARGV[3])
""")
