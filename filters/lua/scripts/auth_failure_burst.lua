--[[
Burst of authentication failures (CEF AUTH_FAILURE)

Counts CEF authentication failures (deviceEventClassId "AuthFail") per
source address over a sliding window and raises alert_auth_failure_burst
when one source reaches the threshold; one alert per source until it has
been quiet for a whole window, which updates the alert with the final count.

Reads the fields of the CEF decoder: deviceEventClassId, src, suser, and the
message Hostname (the reporting host) as the target.

Config (read_config):
  threshold  failures from one source that raise the alert (default 20)
  window     sliding window in seconds (default 30)

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

local threshold = read_config("threshold") or 20
local window = read_config("window") or 30

sources = {}

local function expire(now)
  local quiet = {}
  for ip, s in pairs(sources) do
    if now - s.last_sec > window then quiet[#quiet + 1] = ip end
  end
  table.sort(quiet) -- pairs() order is random; alerts must not be
  for _, ip in ipairs(quiet) do
    local s = sources[ip]
    do
      if s.alert and s.total > s.reported then
        s.alert:update{
          end_time = s.last,
          description = string.format("%d authentication failures from %s", s.total, ip),
        }
      end
      sources[ip] = nil
    end
  end
end

function process_message()
  if read_message("Fields[deviceEventClassId]") ~= "AuthFail" then return 0 end
  local ip = read_message("Fields[src]")
  if not ip then return -1, "AuthFail event without src" end
  local sec = read_timestamp()
  local ns = read_exact("Timestamp")
  expire(sec)

  local s = sources[ip]
  if not s then
    s = {times = {}, first = 1, total = 0, reported = 0, users = {}, nusers = 0}
    sources[ip] = s
  end
  s.times[#s.times + 1] = sec
  while s.times[s.first] < sec - window do s.first = s.first + 1 end
  s.total = s.total + 1
  s.start = s.start or ns
  s.last, s.last_sec = ns, sec
  local user = read_message("Fields[suser]")
  if user and not s.users[user] then
    s.users[user] = true
    s.nusers = s.nusers + 1
  end

  local n = #s.times - s.first + 1
  if not s.alert and n >= threshold then
    local targets = {}
    local host = read_message("Hostname")
    if host and host ~= "" then targets[1] = alert.address(host) end
    s.alert = alert.raise("alert_auth_failure_burst", {
      start_time = s.start,
      end_time = ns,
      severity = "medium",
      confidence = s.nusers > 1 and "high" or "medium",
      completion = "failed",
      method = {description = "credential guessing", ref = {"mitre:T1110"}},
      sources = {alert.address(ip)},
      targets = targets,
    }, {count = n, src = ip, window = window, context = {app_proto = "http"}})
    s.reported = s.total
  end
  return 0
end

function timer_event(ns, ns_exact)
  expire(time.split(ns_exact))
  return 0
end
