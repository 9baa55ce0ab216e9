-- wrk script for bench.history: every request asks about another monitor (XUPTIME_IDS, comma
-- separated, taken in turn) with a `from` one second later than the last (XUPTIME_PATH with MON
-- and FROM in it, FROM counted from XUPTIME_SINCE): no two requests ask the same question, so
-- every answer is computed, never cached.
local since = tonumber(os.getenv("XUPTIME_SINCE"))
local path = os.getenv("XUPTIME_PATH")
local ids = {}
for id in string.gmatch(os.getenv("XUPTIME_IDS") or "", "[^,]+") do
  ids[#ids + 1] = id
end
local n = 0

request = function()
  n = n + 1
  local p = path:gsub("FROM", tostring(since + n))
  if #ids > 0 then
    p = p:gsub("MON", ids[(n * 7919) % #ids + 1])
  end
  return wrk.format("GET", p)
end
