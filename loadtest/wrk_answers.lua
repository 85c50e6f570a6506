-- wrk script of `quiz bench`: POST answers for many pre-started attempts, each with its own token.
--
-- env WRK_ATTEMPTS  file with one "attempt_id token" per line
--     WRK_THREADS   the -t given to wrk (request p of thread j is global position offset + k*T + j)
--     WRK_OFFSET    global position to start from (the previous runs' request count), so runs
--                   continue through the pool: attempt = position mod N, index = position div N
--     WRK_QUESTIONS questions per attempt (10); past N*QUESTIONS positions answers repeat, idempotently
--     WRK_MIX       0 (default): answers only; M > 0: every M-th request on a connection is the
--                   attempt's GET instead, as a phone's keep-alive connection mixes them (the bench
--                   shows that answers keep their speed on such connections)
-- done() prints one JSON line: requests, duration, non-2xx/3xx statuses, socket errors, latency p50/p99 (us).

local counter = 0
local threads = {}

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  -- Requests are assembled from pre-built strings: wrk.format() per request would cost the
  -- generator (which shares the machine with the server) several times more CPU.
  local host = wrk.headers["Host"] or (wrk.host .. ":" .. wrk.port)
  prefix = {}
  gets = {}
  for line in io.lines(os.getenv("WRK_ATTEMPTS")) do
    local aid, token = line:match("^(%S+) (%S+)$")
    if aid then
      prefix[#prefix + 1] = "POST /api/v1/attempts/" .. aid .. "/answers HTTP/1.1\r\nHost: " .. host ..
        "\r\nAuthorization: Bearer " .. token .. "\r\nContent-Type: application/json\r\nContent-Length: "
      gets[#gets + 1] = "GET /api/v1/attempts/" .. aid .. " HTTP/1.1\r\nHost: " .. host ..
        "\r\nAuthorization: Bearer " .. token .. "\r\n\r\n"
    end
  end
  mix = tonumber(os.getenv("WRK_MIX") or "0")
  nthreads = tonumber(os.getenv("WRK_THREADS") or "1")
  offset = tonumber(os.getenv("WRK_OFFSET") or "0")
  questions = tonumber(os.getenv("WRK_QUESTIONS") or "10")
  tail = {}
  for i = 0, questions - 1 do
    local body = '{"index":' .. i .. ',"choice":"A"}'
    tail[i] = #body .. "\r\n\r\n" .. body
  end
  k = 0
end

function request()
  local p = offset + k * nthreads + tid
  k = k + 1
  local n = #prefix
  if mix > 0 and k % mix == 0 then
    return gets[(p % n) + 1]
  end
  return prefix[(p % n) + 1] .. tail[math.floor(p / n) % questions]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"status_errors":%d,"socket_errors":%d,"p50_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
