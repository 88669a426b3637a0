-- wrk script for bench/webhook_throughput.py: POSTs pre-signed Twilio webhook requests.
-- Each line of the file named by BODIES is "<X-Twilio-Signature>\t<urlencoded form>", each
-- with its own MessageSid; thread n of t sends lines n, n+t, n+2t, ... so that no request is
-- a duplicate delivery, and counts how often it had to start its share again (`wraps`).
-- done() prints one line "RESULT {json}" for the Python side to read.

local threads = {}
local counter = 0

function setup(thread)
   counter = counter + 1
   thread:set("id", counter)
   table.insert(threads, thread)
end

function init(args)
   local path = os.getenv("BODIES")
   requests_list = {}
   for line in io.lines(path) do
      local signature, body = line:match("^([^\t]+)\t(.*)$")
      table.insert(requests_list, { signature = signature, body = body })
   end
   total_threads = tonumber(os.getenv("WRK_THREADS") or "1")
   position = id
   wraps = 0
end

function request()
   if position > #requests_list then
      position = id
      wraps = wraps + 1
   end
   local item = requests_list[position]
   position = position + total_threads
   return wrk.format("POST", "/webhook/whatsapp", {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["X-Twilio-Signature"] = item.signature,
   }, item.body)
end

function done(summary, latency, requests)
   local wrapped = 0
   for _, thread in ipairs(threads) do
      wrapped = wrapped + (thread:get("wraps") or 0)
   end
   io.write(string.format(
      'RESULT {"requests": %d, "duration_us": %d, "status_errors": %d, "connect_errors": %d, ' ..
      '"read_errors": %d, "write_errors": %d, "timeouts": %d, "p50_us": %d, "p90_us": %d, ' ..
      '"p99_us": %d, "max_us": %d, "wraps": %d}\n',
      summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
      summary.errors.read, summary.errors.write, summary.errors.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, wrapped))
end
