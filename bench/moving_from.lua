-- wrk script for bench.api: history 1 h x 30 d with `from` one second later on every request,
-- so no two requests ask the same question and every answer is computed, never cached.
local since = tonumber(os.getenv("XUPTIME_SINCE"))
local monitor = os.getenv("XUPTIME_MONITOR")
local n = 0

request = function()
  n = n + 1
  return wrk.format("GET", "/api/v1/monitors/" .. monitor .. "/history?interval=1h&limit=1000&from=" .. (since + n))
end
