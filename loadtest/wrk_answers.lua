-- wrk script of `quiz bench`: POST answers for many pre-started attempts, each with its own token.
--
-- env WRK_ATTEMPTS  file with one "attempt_id token" per line
--     WRK_THREADS   the -t given to wrk (request p of thread j is global position offset + k*T + j)
--     WRK_OFFSET    global position to start from (the previous runs' request count), so runs
--                   continue through the pool: attempt = position mod N, index = position div N
--     WRK_QUESTIONS questions per attempt (10); past N*QUESTIONS positions answers repeat, idempotently
-- done() prints one JSON line: requests, duration, non-2xx/3xx statuses, socket errors, latency p50/p99 (us).

local counter = 0
local threads = {}

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  attempts = {}
  for line in io.lines(os.getenv("WRK_ATTEMPTS")) do
    local aid, token = line:match("^(%S+) (%S+)$")
    if aid then
      attempts[#attempts + 1] = {"/api/v1/attempts/" .. aid .. "/answers", "Bearer " .. token}
    end
  end
  nthreads = tonumber(os.getenv("WRK_THREADS") or "1")
  offset = tonumber(os.getenv("WRK_OFFSET") or "0")
  questions = tonumber(os.getenv("WRK_QUESTIONS") or "10")
  k = 0
  headers = {["Content-Type"] = "application/json"}
end

function request()
  local p = offset + k * nthreads + tid
  k = k + 1
  local n = #attempts
  local a = attempts[(p % n) + 1]
  local index = math.floor(p / n) % questions
  headers["Authorization"] = a[2]
  return wrk.format("POST", a[1], headers, '{"index":' .. index .. ',"choice":"A"}')
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"status_errors":%d,"socket_errors":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
