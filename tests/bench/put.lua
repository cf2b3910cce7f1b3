-- put.lua - wrk script for part 1 of `scripts/bench queue`: EAS puts through
-- tripgen-scheduler.
--
-- Every request POSTs the trip JSON given after `--` to the URL wrk was given
-- (the service's input queue, /api/predict/{service}) with the raw token of
-- $TRIPGEN_BENCH_TOKEN in `Authorization`. Each request carries its own
-- trip_id (bench-<run>-<thread>-<n>), so every put is a real enqueue and not
-- an idempotent repeat of the first one. done() prints name=value lines:
-- put_requests_per_s, put_p50_ms, put_p99_ms and put_errors (non-2xx answers
-- plus connect, read, write and timeout errors).
--
--   TRIPGEN_BENCH_TOKEN=... wrk -t2 -c32 -d10s --latency -s put.lua URL -- TRIP.json

local threads = 0
local run = tostring(os.time())   -- each thread's own copy; tid tells them apart

function setup(thread)             -- in wrk's main Lua state, once per thread
  threads = threads + 1
  thread:set("tid", threads)
end

local prefix, suffix
local n = 0

function init(args)
  local path = args[1]
  if not path then
    error("put.lua: give the trip file after --")
  end
  local f = assert(io.open(path, "rb"))
  local trip = f:read("*a")
  f:close()
  -- split the trip around the value of trip_id
  local s, e = trip:find('"trip_id"%s*:%s*"[^"]*"')
  if not s then
    error("put.lua: " .. path .. ": no trip_id")
  end
  prefix = trip:sub(1, s - 1) .. '"trip_id": "bench-' .. run .. "-" .. tid .. "-"
  suffix = '"' .. trip:sub(e + 1)
  local token = os.getenv("TRIPGEN_BENCH_TOKEN")
  if not token or token == "" then
    error("put.lua: TRIPGEN_BENCH_TOKEN is not set")
  end
  wrk.method = "POST"
  wrk.headers["Authorization"] = token
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  n = n + 1
  return wrk.format(nil, nil, nil, prefix .. n .. suffix)
end

function done(summary, latency, requests)
  local e = summary.errors
  local secs = summary.duration / 1e6
  io.write(string.format("put_requests_per_s=%.0f\n", summary.requests / secs))
  io.write(string.format("put_p50_ms=%.3f\n", latency:percentile(50) / 1000))
  io.write(string.format("put_p99_ms=%.3f\n", latency:percentile(99) / 1000))
  io.write(string.format("put_errors=%d\n",
    e.status + e.connect + e.read + e.write + e.timeout))
end
