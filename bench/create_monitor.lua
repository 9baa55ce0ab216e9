-- wrk script for bench.api: every request creates a new monitor (POST /api/v1/monitors), its
-- name numbered by this connection's thread; the target URL comes from XUPTIME_TARGET.
local target = os.getenv("XUPTIME_TARGET")
local n = 0
local headers = {}

init = function()
  for name, value in pairs(wrk.headers) do headers[name] = value end  -- the -H ones: the key
  headers["Content-Type"] = "application/json"
end

request = function()
  n = n + 1
  local body = '{"name": "created-' .. n .. '", "type": "http", "url": "' .. target .. '", "interval": 3600}'
  return wrk.format("POST", "/api/v1/monitors", headers, body)
end
