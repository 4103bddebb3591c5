-- wrk script: count responses by HTTP status and print the run's figures as
-- one JSON line that starts with "WRK_RESULT ".
--
-- The request comes from environment variables, read by every wrk thread:
--   WRK_METHOD          request method (default GET)
--   WRK_BODY            request body (default none)
--   WRK_CONTENT_TYPE    Content-Type header, sent only with a body
--   WRK_AUTHORIZATION   Authorization header value (default none)
-- The Authorization value is read from the environment, not from the command
-- line, so a client secret does not show in `ps`.
--
-- Defining response() makes wrk parse every response's headers and body, so
-- use this script for every endpoint that is compared in one run.

wrk.method = os.getenv("WRK_METHOD") or "GET"

local body = os.getenv("WRK_BODY")
if body ~= nil and body ~= "" then
   wrk.body = body
   wrk.headers["Content-Type"] = os.getenv("WRK_CONTENT_TYPE")
      or "application/x-www-form-urlencoded"
end

local authorization = os.getenv("WRK_AUTHORIZATION")
if authorization ~= nil and authorization ~= "" then
   wrk.headers["Authorization"] = authorization
end

-- Responses by status in this thread. done() reads it with thread:get().
statuses = {}

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

function done(summary, latency, requests)
   local totals = {}
   for _, thread in ipairs(threads) do
      for status, count in pairs(thread:get("statuses")) do
         totals[status] = (totals[status] or 0) + count
      end
   end

   local parts = {}
   for status, count in pairs(totals) do
      table.insert(parts, string.format('"%d":%d', status, count))
   end

   local errors = summary.errors
   -- Latency values are in microseconds.
   io.write(string.format(
      'WRK_RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,'
         .. '"max_us":%d,"errors":{"connect":%d,"read":%d,"write":%d,'
         .. '"status":%d,"timeout":%d},"statuses":{%s}}\n',
      summary.requests, summary.duration,
      latency:percentile(50), latency:percentile(99), latency.max,
      errors.connect, errors.read, errors.write, errors.status, errors.timeout,
      table.concat(parts, ",")))
end
