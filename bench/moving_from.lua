-- wrk script for bench.api: a history query whose `from` is one second later on every request
-- (XUPTIME_PATH with FROM in it, counted from XUPTIME_SINCE), so no two requests ask the same
-- question and every answer is computed, never cached.
local since = tonumber(os.getenv("XUPTIME_SINCE"))
local path = os.getenv("XUPTIME_PATH")
local n = 0

request = function()
  n = n + 1
  return wrk.format("GET", (path:gsub("FROM", tostring(since + n))))
end
