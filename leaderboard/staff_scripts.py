"""The Lua of the staff directory: organizer and admin accounts (contest/staff.py).

An import writes every account at once, so a half-written import never shows.  The keys live
under the global ``{quiz}`` tag, so one slot.
"""

from __future__ import annotations

from leaderboard.scripts import Script

__all__ = ["STAFF_WRITE"]

STAFF_WRITE = Script("staff_write", r"""
-- Write imported accounts at once (an import is all or nothing, in Redis too).
-- KEYS: 1 accounts hash (id -> JSON), 2 phone index (phone -> id), 3 versions hash (id -> version)
-- ARGV: groups of 4: id, account JSON, phone, version
-- Returns the number of accounts written
local n = 0
for i = 1, #ARGV, 4 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('HSET', KEYS[2], ARGV[i + 2], ARGV[i])
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 3])
  n = n + 1
end
return n
""")
