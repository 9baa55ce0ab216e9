-- wrk script for bench.agents: every request is one agent's report (POST /api/agent/{token}/report),
-- the agents taken in turn (XUPTIME_AGENTS of them, tokens bench-agent-0000000 ...), each
-- thread starting at its own offset. The report is what the agent sends on a typical server.
local agents = tonumber(os.getenv("XUPTIME_AGENTS") or "10000")
local n = 0
local headers = {["Content-Type"] = "application/json"}
local body = '{"hostname":"web-17","os":"Debian GNU/Linux 12 (Linux 6.1.0)","uptimeS":864000,' ..
  '"cpuPercent":23.5,"load":[0.52,0.61,0.58],"memory":{"usedBytes":3221225472,"totalBytes":8589934592},' ..
  '"swap":{"usedBytes":0,"totalBytes":2147483648},"disks":[{"mount":"/","usedBytes":21474836480,' ..
  '"totalBytes":53687091200},{"mount":"/var/lib/postgresql","usedBytes":107374182400,' ..
  '"totalBytes":214748364800}],"network":{"rxBytesPerS":125000.5,"txBytesPerS":98000.0},"processes":187,' ..
  '"version":"1"}'

setup = function(thread)
  thread:set("offset", math.random(0, agents - 1))
end

request = function()
  n = n + 1
  local i = (offset + n) % agents
  return wrk.format("POST", string.format("/api/agent/bench-agent-%07d/report", i), headers, body)
end
