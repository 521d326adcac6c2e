-- wrk script: POST one signed webhook body, with a fresh X-GitHub-Delivery per request.
-- The signature covers only the body, so it is computed once (by bench/ingest.py) and the
-- request is formatted once; each request splices in its own delivery id.
-- Environment: BENCH_BODY (file with the body), BENCH_SIGNATURE, BENCH_TAG (run label).

local file = assert(io.open(os.getenv("BENCH_BODY"), "rb"))
wrk.method = "POST"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["User-Agent"] = "GitHub-Hookshot/bench"
wrk.headers["X-GitHub-Event"] = "issues"
wrk.headers["X-Hub-Signature-256"] = os.getenv("BENCH_SIGNATURE")
wrk.headers["X-GitHub-Delivery"] = "@DELIVERY@"

local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("thread_id", #threads)
end

local head, tail
local sent = 0

function init(args)
  -- wrk.init has set the Host header by now, so the request can be formatted once.
  head, tail = wrk.format():match("^(.-)@DELIVERY@(.*)$")
  prefix = string.format("%s-%d-", os.getenv("BENCH_TAG"), thread_id)
end

function request()
  sent = sent + 1
  return head .. prefix .. sent .. tail
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"socket_errors": %d, "non_2xx": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
