-- wrk script for bench/sim-throughput: every thread replays its own file of
-- presigned request paths (PREFIX.<thread index>, made by examples/presign),
-- one line per request, so no SignatureNonce is ever sent twice.
--
--   wrk -t2 -c64 -d10s -s bench/sim-throughput.lua http://127.0.0.1:PORT -- PREFIX
--
-- The file is read as the run goes, not loaded in init(): wrk starts each
-- thread as soon as its init() returns, so a slow init() would give the first
-- thread a head start that wrk counts but does not time. (Loading hundreds of
-- thousands of similar lines into LuaJIT tables also takes seconds: its string
-- hash samples only a few bytes of each string.)
--
-- If a thread runs out of paths it stops itself (a lower rate, never a reused
-- nonce) and done() says so; bench/sim-throughput then rejects the figure.

local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  file = assert(io.open(args[1] .. "." .. tid, "r"))
  sent = 0
  exhausted = false
end

function request()
  local path = file:read("*l")
  if path == nil then
    if not exhausted then
      exhausted = true
      wrk.thread:stop()
    end
    -- Not an API call: the simulator neither counts it nor checks a nonce.
    return wrk.format("GET", "/__sim/stats")
  end
  sent = sent + 1
  return wrk.format("GET", path)
end

function done(summary, latency, requests)
  for i, thread in ipairs(threads) do
    if thread:get("exhausted") then
      io.write(string.format("PRESIGNED-EXHAUSTED thread %d used all %d paths\n", i - 1, thread:get("sent")))
    end
  end
end
