-- Shared by every wrk script of the benchmark (loaded with dofile): counts the bad responses in each
-- wrk thread, and at the end prints one machine-readable line for bench/run.py,
--   BENCH requests=… duration_us=… p50_us=… p99_us=… non2xx=… gqlerrors=… connect=… read=… write=… timeout=…
-- and a second with the latency (µs) at each tenth of a percent from 90 to 99.9, and the slowest, from
-- which bench/run.py pools the percentiles of a row's slices,
--   BENCH percentiles=90.0:…,90.1:…,…,99.9:…,100.0:…
-- and exits with status 1 if any response was bad. Bad is a status that is not 2xx (a 304, a redirect
-- or an error is not a result) and, when the script set `reject_graphql_errors = true` before loading
-- this file, a body that contains "errors": GraphQL reports errors with HTTP 200.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
  gqlerrors = 0
  first_bad = ""
end

function response(status, headers, body)
  local bad = false
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    bad = true
  elseif reject_graphql_errors and string.find(body or "", '"errors"', 1, true) then
    gqlerrors = gqlerrors + 1
    bad = true
  end
  if bad and first_bad == "" then
    first_bad = status .. " " .. string.gsub(string.sub(body or "", 1, 300), "%s+", " ")
  end
end

function done(summary, latency, requests)
  local non2xx_total, gqlerrors_total, sample = 0, 0, ""
  for _, thread in ipairs(threads) do
    non2xx_total = non2xx_total + (thread:get("non2xx") or 0)
    gqlerrors_total = gqlerrors_total + (thread:get("gqlerrors") or 0)
    if sample == "" then
      sample = thread:get("first_bad") or ""
    end
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d gqlerrors=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), non2xx_total,
    gqlerrors_total, e.connect, e.read, e.write, e.timeout
  ))
  local points = {}
  for tenth = 900, 999 do
    table.insert(points, string.format("%.1f:%d", tenth / 10, latency:percentile(tenth / 10)))
  end
  -- latency:percentile(100) is 0 in wrk 4.1 (its rank is one past the last request): the slowest is max.
  table.insert(points, string.format("100.0:%d", latency.max))
  io.write("BENCH percentiles=" .. table.concat(points, ",") .. "\n")
  if non2xx_total + gqlerrors_total > 0 then
    io.write("BENCH first_bad=" .. sample .. "\n")
    io.flush()
    os.exit(1)
  end
end
