"""The Lua of the event streams' upkeep: the flusher's acknowledgement and trim.

Not on the request path: the flusher (contest/workers/flusher.py) runs it once per batch it has
committed to the database.  It touches one stream, so one hash tag.
"""

from __future__ import annotations

from leaderboard.scripts import Script

__all__ = ["ACK_AND_TRIM", "ACK_CHUNK"]

ACK_CHUNK = 1000  # ids per XACK call inside the script (Lua's unpack has a stack limit)

# Ack, then trim below the oldest entry the group still needs, in one round trip and atomically
# (another flusher cannot slip a read in between). MINID is the smallest pending id, or the
# last-delivered id + 1 when nothing is pending: never an entry the group has not yet read.
# KEYS[1] stream; ARGV[1] group; ARGV[2] the ids to acknowledge, space-separated (one argument
# rather than thousands: redis-py packs each argument in Python). Returns {acked, trimmed}, which
# no caller reads (so it has no reply record): a failure raises, and the counts are for redis-cli.
ACK_AND_TRIM = Script("ack_and_trim", """
local stream, group = KEYS[1], ARGV[1]
local ids = {}
for id in string.gmatch(ARGV[2], '[^ ]+') do ids[#ids + 1] = id end
local acked = 0
for i = 1, #ids, CHUNK do
    acked = acked + redis.call('XACK', stream, group, unpack(ids, i, math.min(i + CHUNK - 1, #ids)))
end
local pending = redis.call('XPENDING', stream, group)
local minid = nil
if tonumber(pending[1]) > 0 then
    minid = pending[2]
else
    for _, info in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
        local fields = {}
        for j = 1, #info, 2 do fields[info[j]] = info[j + 1] end
        if fields['name'] == group then
            local ms, seq = string.match(fields['last-delivered-id'], '^(%d+)-(%d+)$')
            if ms and ms ~= '0' then minid = ms .. '-' .. (tonumber(seq) + 1) end
        end
    end
end
local trimmed = 0
if minid then trimmed = redis.call('XTRIM', stream, 'MINID', minid) end
return {acked, trimmed}
""".replace("CHUNK", str(ACK_CHUNK)))
