-- wrk script for side.py: POSTs the file named by $BODY_FILE (a GET when it is unset) with $CONTENT_TYPE and, for a
-- framed binary body, $HEADER_LENGTH as Inference-Header-Content-Length; prints one JSON line of results at the end
-- (latencies in microseconds, wrk's own histogram).
local path = os.getenv("BODY_FILE")
if path and path ~= "" then
  local f = assert(io.open(path, "rb"))
  wrk.method = "POST"
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = os.getenv("CONTENT_TYPE") or "application/json"
  local header_length = os.getenv("HEADER_LENGTH")
  if header_length and header_length ~= "" then wrk.headers["Inference-Header-Content-Length"] = header_length end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,"err_connect":%d,"err_read":%d,"err_write":%d,' ..
    '"err_status":%d,"err_timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean))
end
