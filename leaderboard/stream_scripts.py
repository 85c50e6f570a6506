"""The Lua of the event streams' upkeep: the flusher's leases, acknowledgement and trim.

Not on the request path: the flusher (contest/workers/flusher.py) runs these once per batch.
Each touches one stream and its lease hash (``keys.flush_leases``), under the stream's hash tag.

**Leases.** The flusher reads with ``XREADGROUP ... NOACK``, so Valkey keeps no pending-entries
list: no per-entry record on read, no XCLAIM per entry propagated to the AOF and the replicas,
no XACK per entry. What was read and not yet committed is kept instead as one *lease* per batch:
``LEASE_BEGIN`` runs in the same MULTI/EXEC as the XREADGROUP and notes, under the group's
last-delivered id before the read (the batch's exclusive start), who read it and when. A batch
is the contiguous run of entries after its start, up to the next lease's start (or the group's
last-delivered id): when leases are released out of order a range is only ever taken too long,
which costs a harmless rewrite on recovery, never an entry skipped. ``LEASE_END`` drops the lease
after the commit and trims. A lease whose process died, or that nobody has touched for the idle
time, is taken over (``LEASE_TAKE``) and its range read again with XRANGE.

Entries delivered the older way (a pending-entries list: a RedisCluster client, or a flusher of
an earlier release) are still acknowledged by ``ACK_AND_TRIM``; both trims keep whatever a lease
or the pending list still needs, so the two ways can share a stream. A batch's first entry is read
onto the pending list, so the trim of a flusher from before leases keeps leased batches too.
"""

from __future__ import annotations

from leaderboard.scripts import Script

__all__ = ["ACK_AND_TRIM", "ACK_CHUNK", "LEASE_BEGIN", "LEASE_END", "LEASE_TAKE"]

ACK_CHUNK = 1000  # ids per XACK call inside the script (Lua's unpack has a stack limit)

# The smallest id the group still needs, or nil: the oldest pending entry, the entry after the
# oldest lease's start, or the entry after the group's last-delivered id when neither exists.
_KEEP_FROM = r"""
local function id_parts(id)
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function next_id(id)
  local ms, seq = id_parts(id)
  if not ms then return nil end
  -- a sequence past 2^53 (the flusher's "just before ms-0" is ms-1 with the largest one) is not
  -- exact in a Lua number: the next millisecond's first id follows it
  if seq >= 9007199254740992 then return string.format('%.0f', ms + 1) .. '-0' end
  return string.format('%.0f', ms) .. '-' .. string.format('%.0f', seq + 1)
end
local function older(a, b)
  if not a then return b end
  if not b then return a end
  local am, as = id_parts(a)
  local bm, bs = id_parts(b)
  if am < bm or (am == bm and as < bs) then return a end
  return b
end
local function last_delivered(stream, group)
  for _, info in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
    local fields = {}
    for j = 1, #info, 2 do fields[info[j]] = info[j + 1] end
    if fields['name'] == group then return fields['last-delivered-id'] end
  end
  return nil
end
local function keep_from(stream, leases, group)
  local minid = nil
  local pending = redis.call('XPENDING', stream, group)
  if tonumber(pending[1]) > 0 then minid = pending[2] end
  for _, start in ipairs(redis.call('HKEYS', leases)) do minid = older(minid, next_id(start)) end
  if minid then return minid end
  local last = last_delivered(stream, group)
  if last and last ~= '0-0' then return next_id(last) end
  return nil
end
local function trim(stream, leases, group)
  local minid = keep_from(stream, leases, group)
  if minid then return redis.call('XTRIM', stream, 'MINID', minid) end
  return 0
end
"""

# Ack, then trim below the oldest entry the group still needs, in one round trip and atomically
# (another flusher cannot slip a read in between). For entries read with a pending-entries list.
# KEYS[1] stream, KEYS[2] its lease hash; ARGV[1] group; ARGV[2] the ids to acknowledge,
# space-separated (one argument rather than thousands: redis-py packs each argument in Python).
# Returns {acked, trimmed}, which no caller reads (so it has no reply record): a failure raises,
# and the counts are for redis-cli.
ACK_AND_TRIM = Script("ack_and_trim", _KEEP_FROM + """
local stream, group = KEYS[1], ARGV[1]
local ids = {}
for id in string.gmatch(ARGV[2], '[^ ]+') do ids[#ids + 1] = id end
local acked = 0
for i = 1, #ids, CHUNK do
    acked = acked + redis.call('XACK', stream, group, unpack(ids, i, math.min(i + CHUNK - 1, #ids)))
end
return {acked, trim(stream, KEYS[2], group)}
""".replace("CHUNK", str(ACK_CHUNK)))

# Sent in one MULTI/EXEC right before ``XREADGROUP GROUP <group> <consumer> COUNT 1 STREAMS
# <stream> >`` and ``XREADGROUP ... COUNT n-1 NOACK STREAMS <stream> >``, so the lease and the read
# it covers are one atomic step. The batch's first entry is read the older way, onto the pending
# list: a flusher of an earlier release, whose trim knows pending entries and not leases, then
# keeps the whole batch too (a rolling upgrade cannot lose one); LEASE_END acknowledges it. Sent
# with EVAL, not EVALSHA: a NOSCRIPT error inside the transaction would not stop the reads after it.
# KEYS[1] stream, KEYS[2] lease hash; ARGV[1] group, ARGV[2] '<consumer> <ms>'. Returns the
# lease's start (the last-delivered id before the read), or false when there is nothing to read
# (then no lease is made). The lease's value is '<consumer> <ms> <first entry id>'. Fails with
# NOGROUP when the group is missing, like the reads after it.
# allow-oom: XREADGROUP still reads when Valkey is out of memory, so the lease must still be made.
LEASE_BEGIN = Script("lease_begin", "#!lua flags=allow-oom\n" + _KEEP_FROM + """
local stream = KEYS[1]
if redis.call('EXISTS', stream) == 0 then return redis.error_reply('NOGROUP no stream') end
local start = last_delivered(stream, ARGV[1])
if not start then return redis.error_reply('NOGROUP no such consumer group') end
local first = redis.call('XRANGE', stream, '(' .. start, '+', 'COUNT', 1)
if #first == 0 then return false end
redis.call('HSET', KEYS[2], start, ARGV[2] .. ' ' .. first[1][1])
return start
""")

# After the lease's entries are committed: drop it, acknowledge its first entry (the one read onto
# the pending list), then trim. KEYS[1] stream, KEYS[2] lease hash; ARGV[1] group, ARGV[2] the
# lease's start ('' to trim only). Returns the entries trimmed.
LEASE_END = Script("lease_end", _KEEP_FROM + """
if ARGV[2] ~= '' then
  local lease = redis.call('HGET', KEYS[2], ARGV[2])
  redis.call('HDEL', KEYS[2], ARGV[2])
  local first = lease and string.match(lease, '^%S+ %S+ (%S+)$')
  if first then redis.call('XACK', KEYS[1], ARGV[1], first) end
end
return trim(KEYS[1], KEYS[2], ARGV[1])
""")

# Take a lease over when it still says what the taker saw (compare and set: two flushers looking
# at the same dead lease, one wins). KEYS[1] lease hash; ARGV[1] start, ARGV[2] the value seen,
# ARGV[3] the new value ('<consumer> <ms> <first entry id>'). Returns 1 when taken.
LEASE_TAKE = Script("lease_take", """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
""")
