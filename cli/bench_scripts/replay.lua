-- wrk script: replay pre-signed POST /api/mint requests, each exactly once, and count statuses.
-- The request file has one request per line: "<header name>\t<header value>"; thread k of n sends
-- lines k, k+n, k+2n, ... so no payment is sent twice. Path, body and thread count come from the
-- environment. With an empty file every request is GET /healthz (the same run's yardstick). With
-- BENCH_FRESH=1 every request says "Connection: close": each goes on a new connection.
local threads = {}
local path = os.getenv("BENCH_PATH")
local body = os.getenv("BENCH_BODY")
local file = os.getenv("BENCH_REQUESTS")
local fresh = os.getenv("BENCH_FRESH") == "1"

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  counts = {}
  unadvised = 0  -- 503 answers without Retry-After
  lines = {}
  step = tonumber(os.getenv("BENCH_THREADS"))
  local i = 0
  for line in io.lines(file) do
    if i % step == tonumber(wrk.thread:get("id")) then
      local name, value = line:match("^([^\t]+)\t(.*)$")
      table.insert(lines, {name, value})
    end
    i = i + 1
  end
  next_line = 1
end

function request()
  local item = lines[next_line]
  local close = fresh and {["Connection"] = "close"} or {}
  if item == nil then
    return wrk.format("GET", "/healthz", close)  -- none (left): never a duplicate payment
  end
  next_line = next_line + 1
  local headers = {["Content-Type"] = "application/json", [item[1]] = item[2]}
  if fresh then headers["Connection"] = "close" end
  return wrk.format("POST", path, headers, body)
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
  if status == 503 and headers["Retry-After"] == nil and headers["retry-after"] == nil then
    unadvised = unadvised + 1
  end
end

function done(summary, latency, requests)
  local merged = {}
  local no_retry_after = 0
  for _, thread in ipairs(threads) do
    local c = thread:get("counts")
    for status, n in pairs(c) do merged[status] = (merged[status] or 0) + n end
    no_retry_after = no_retry_after + thread:get("unadvised")
  end
  local parts = {}
  for status, n in pairs(merged) do table.insert(parts, string.format('"%d": %d', status, n)) end
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "statuses": {%s}, "503_without_retry_after": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, ' ..
    '"p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, table.concat(parts, ", "), no_retry_after,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
