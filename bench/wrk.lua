-- wrk script of the benchmark (bench/run.py):
--   BENCH_WRK_MODE=MODE wrk -t1 -cN -dS -s bench/wrk.lua URL -- BODY_FILE MODE TAG
-- POSTs the JSON body in BODY_FILE. MODE "same": every request identical (warm caches, the
-- references). MODE "lean": the same, but without per-request Lua (no request() or response()
-- callbacks: at the ceiling's and the response-cache hits' rates they would be wrk's own
-- bottleneck; wrk still counts non-2xx answers, the ceiling's bytes are checked before timing
-- and a hit replays a kept answer, without errors); "sent" is then the requests answered.
-- MODE "distinct": every request carries its own Accept-Language "TAG-<n>" (TAG: an "x-bench-…"
-- prefix from bench.scenarios.tagged_language): an unknown private-use language that changes no
-- answer, but is part of every upstream call's identity in the gateway, so no two requests share
-- one.
-- Counts requests sent, non-200 answers and answers with GraphQL errors; at the end prints one
-- line "BENCH {json}" with those, the latency percentiles and wrk's own CPU time (from /proc).

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

-- The mode is read from the environment too: wrk decides from its main Lua state (which never
-- sees the arguments) whether to call request() per request.
local lean = os.getenv("BENCH_WRK_MODE") == "lean"

function init(args)
  local file = assert(io.open(args[1], "rb"))
  body = file:read("*a")
  file:close()
  mode = args[2]
  tag = args[3]
  sent = 0
  bad_status = 0
  gql_errors = 0
  headers = { ["Content-Type"] = "application/json" }
  fixed = wrk.format("POST", nil, headers, body)
end

local function request_each()
  sent = sent + 1
  if mode == "distinct" then
    headers["Accept-Language"] = tag .. "-" .. sent
    return wrk.format("POST", nil, headers, body)
  end
  return fixed
end

local function check_each(status, hdrs, answer)
  if status ~= 200 then
    bad_status = bad_status + 1
  elseif string.find(answer, '"errors"', 1, true) then
    gql_errors = gql_errors + 1
  end
end

if lean then
  -- init() still reads the body for the static request that wrk then sends as is.
  local base_init = init
  init = function(args)
    base_init(args)
    wrk.method = "POST"
    wrk.body = body
    wrk.headers["Content-Type"] = "application/json"
  end
else
  request = request_each
  response = check_each
end

local function own_cpu_ticks()
  -- utime + stime of this process (every thread), fields 14 and 15 of /proc/self/stat.
  local file = io.open("/proc/self/stat", "r")
  if not file then return -1 end
  local stat = file:read("*a")
  file:close()
  local rest = stat:match("%) (.*)$")
  local fields = {}
  for value in rest:gmatch("%S+") do table.insert(fields, value) end
  -- fields[1] is the state (field 3 of the file): utime is field 14, so fields[12].
  return tonumber(fields[12]) + tonumber(fields[13])
end

function done(summary, latency, requests)
  local totals = { sent = 0, bad_status = 0, gql_errors = 0 }
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do
      totals[name] = totals[name] + thread:get(name)
    end
  end
  if lean then totals.sent = summary.requests end
  local errors = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "sent": %d, "bad_status": %d, ' ..
    '"gql_errors": %d, "socket_errors": %d, "p50_us": %d, "p99_us": %d, "cpu_ticks": %d}\n',
    summary.requests, summary.duration, totals.sent, totals.bad_status, totals.gql_errors,
    errors.connect + errors.read + errors.write + errors.timeout + (lean and errors.status or 0),
    latency:percentile(50), latency:percentile(99), own_cpu_ticks()))
end
