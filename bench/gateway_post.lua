-- wrk script: POSTs order events to the gateway, each with its own order id.
-- EVENTS (environment) events per request: 1 sends one JSON object, more send a JSON array.
local n = tonumber(os.getenv("EVENTS") or "1")
local counter = 0
local thread_id = 0

function setup(thread)
  thread:set("thread_id", thread_id)
  thread_id = thread_id + 1
end

local function event(i)
  return string.format(
    '{"order_id":"ORD-%d-%d","customer_id":"C-%d","amount":%d.95,"currency":"EUR","event_time":"2026-11-22T10:00:00Z"}',
    thread_id, i, i % 997, i % 500)
end

function request()
  local body
  if n == 1 then
    counter = counter + 1
    body = event(counter)
  else
    local parts = {}
    for _ = 1, n do
      counter = counter + 1
      parts[#parts + 1] = event(counter)
    end
    body = "[" .. table.concat(parts, ",") .. "]"
  end
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, body)
end

function done(summary, latency, requests)
  io.write(string.format("RESULT requests=%d errors_status=%d errors_other=%d seconds=%.3f p50_ms=%.3f p99_ms=%.3f\n",
    summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
