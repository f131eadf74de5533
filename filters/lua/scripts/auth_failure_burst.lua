--[[
Burst of authentication failures (CEF AUTH_FAILURE)

Counts CEF authentication failures (deviceEventClassId "AuthFail") per
source address over a sliding window and raises alert_auth_failure_burst
when one source reaches the threshold; one alert per source until it has
been quiet for a whole window, which updates the alert with the final count.

Reads the fields of the CEF decoder: deviceEventClassId, src, suser, and the
message Hostname (the reporting host) as the target. Time comes from the
messages' timestamps, counted in whole seconds.

The counting is a Go-backed window (require "tern.window"): O(1) amortised
per event, at most max_sources sources held (the least recently active are
evicted beyond it, counted in tern_lua_state_evictions_total).

Config (read_config):
  threshold    failures from one source that raise the alert (default 20)
  window       sliding window in seconds (default 30)
  max_sources  sources tracked at once (default 100000)

Example:

  [filters.auth_failure_burst]
  type = "lua"
  message_matcher = "Fields[deviceEventClassId] == 'AuthFail'"
  filename = "filters/lua/scripts/auth_failure_burst.lua"
  alert_definitions = "filters/lua/alerts"
  ticker_interval = "10s"
  [filters.auth_failure_burst.config]
  threshold = 20
  window = 30
--]]

local window = require "tern.window"
local read_message = read_message

local threshold = read_config("threshold") or 20
local span = read_config("window") or 30

-- failures per source, counting the distinct suser values of a burst (by
-- hash: the names are not kept); preserve_data keeps it (Go-backed states
-- need not be globals)
local sources = window.new{
  name = "sources", span = span, distinct = 2,
  max_keys = read_config("max_sources") or 100000,
}
-- source -> {h = alert handle, reported = failures when raised}, while the
-- burst lasts
alerts = {}

-- Closes the alerts of the sources quiet for a whole window. (Inlined in
-- process_message: one Lua call less per event.)
local function close_quiet()
  for ip, total in sources:expired() do
    local a = alerts[ip]
    if a then
      alerts[ip] = nil
      if total > a.reported then
        a.h:update{
          end_time = sources:last(ip),
          description = string.format("%d authentication failures from %s", total, ip),
        }
      end
    end
  end
end

function process_message()
  if read_message("Fields[deviceEventClassId]") ~= "AuthFail" then return 0 end
  local ip = read_message("Fields[src]")
  if not ip then return -1, "AuthFail event without src" end
  for quiet, total in sources:expired() do -- close_quiet()
    local a = alerts[quiet]
    if a then
      alerts[quiet] = nil
      if total > a.reported then
        a.h:update{
          end_time = sources:last(quiet),
          description = string.format("%d authentication failures from %s", total, quiet),
        }
      end
    end
  end

  local n = sources:add(ip, read_message("Fields[suser]"))
  if not n then return -1, "src longer than 1KiB" end
  if n >= threshold and not alerts[ip] then
    local targets = {}
    local host = read_message("Hostname")
    if host and host ~= "" then targets[1] = alert.address(host) end
    local h = alert.raise("alert_auth_failure_burst", {
      start_time = sources:first(ip),
      end_time = read_exact("Timestamp"),
      severity = "medium",
      confidence = sources:distinct(ip) > 1 and "high" or "medium",
      completion = "failed",
      method = {description = "credential guessing", ref = {"mitre:T1110"}},
      sources = {alert.address(ip)},
      targets = targets,
    }, {count = n, src = ip, window = span, context = {app_proto = "http"}})
    alerts[ip] = {h = h, reported = sources:total(ip)}
  end
  return 0
end

function timer_event(ns, ns_exact)
  close_quiet()
  return 0
end
