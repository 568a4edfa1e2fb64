-- Shared by every wrk script of the benchmark (loaded with dofile): counts the responses that are
-- not 2xx in each wrk thread, and at the end prints one machine-readable line for bench/run.py,
--   BENCH requests=… duration_us=… p50_us=… p99_us=… non2xx=… connect=… read=… write=… timeout=…
-- and exits with status 1 if any response was not 2xx (a 304, a redirect or an error is not a result).

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
  first_bad = ""
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if first_bad == "" then
      first_bad = status .. " " .. string.gsub(string.sub(body or "", 1, 300), "%s+", " ")
    end
  end
end

function done(summary, latency, requests)
  local bad, sample = 0, ""
  for _, thread in ipairs(threads) do
    bad = bad + (thread:get("non2xx") or 0)
    if sample == "" then
      sample = thread:get("first_bad") or ""
    end
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), bad,
    e.connect, e.read, e.write, e.timeout
  ))
  if bad > 0 then
    io.write("BENCH first_non2xx=" .. sample .. "\n")
    io.flush()
    os.exit(1)
  end
end
