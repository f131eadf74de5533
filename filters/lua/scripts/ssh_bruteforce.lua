--[[
SSH brute force

Counts failed SSH password logins per source address over a sliding window
and raises the alert_ssh_bruteforce alert (alert definitions in
filters/lua/alerts) when a source reaches the threshold. The alert is
updated once when the source goes quiet for a whole window (end time and
final count) and right away when the same source later logs in
successfully (completion = successful).

Reads the fields decoders/lua/scripts/sshd.lua writes: sshd.event
(failed_password, accepted, ...), src_ip, user, invalid_user. Time comes
from the messages' timestamps, so replayed logs give the same alerts.

Config (read_config):
  threshold  failures from one source that raise the alert (default 10)
  window     sliding window in seconds (default 60)

Example:

  [filters.ssh_bruteforce]
  type = "lua"
  message_matcher = "Fields[sshd.event] == 'failed_password' || Fields[sshd.event] == 'accepted'"
  filename = "filters/lua/scripts/ssh_bruteforce.lua"
  alert_definitions = "filters/lua/alerts"
  ticker_interval = "10s"
  [filters.ssh_bruteforce.config]
  threshold = 10
  window = 60
--]]

local threshold = read_config("threshold") or 10
local window = read_config("window") or 60

-- per source: {times = {sec...}, first = idx, users = {name=true}, alert = handle,
--              total = n, start = exact ns, last = exact ns, last_sec = s}
sources = {}

local function users_of(s)
  local names = {}
  for u in pairs(s.users) do names[#names + 1] = u end
  table.sort(names)
  return table.concat(names, ",")
end

-- close the alerts of sources quiet for a whole window
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
          description = string.format("%d failed SSH logins from %s (users: %s)", s.total, ip, users_of(s)),
        }
      end
      sources[ip] = nil
    end
  end
end

function process_message()
  local sec = read_timestamp()
  local ns = read_exact("Timestamp")
  local ip = read_message("Fields[src_ip]")
  local event = read_message("Fields[sshd.event]")
  if not ip then return 0 end
  expire(sec)

  local s = sources[ip]
  if event == "accepted" then
    if s and s.alert and not s.succeeded then
      s.succeeded = true
      s.alert:update{completion = "successful", end_time = ns}
    end
    return 0
  end
  if event ~= "failed_password" then return 0 end

  if not s then
    s = {times = {}, first = 1, users = {}, total = 0, reported = 0}
    sources[ip] = s
  end
  s.times[#s.times + 1] = sec
  while s.times[s.first] < sec - window do s.first = s.first + 1 end
  s.total = s.total + 1
  s.last, s.last_sec = ns, sec
  s.start = s.start or ns
  s.users[read_message("Fields[user]") or "?"] = true

  local in_window = #s.times - s.first + 1
  if not s.alert and in_window >= threshold then
    local host = read_message("Hostname")
    s.alert = alert.raise("alert_ssh_bruteforce", {
      start_time = s.start,
      end_time = ns,
      severity = "high",
      confidence = in_window >= 2 * threshold and "high" or "medium",
      completion = "failed",
      method = {description = "SSH password guessing", ref = {"mitre:T1110"}},
      sources = {alert.address(ip)},
      targets = {alert.address(host), alert.service("tcp/22", "ssh")},
    }, {
      attempts = s.total, src = ip, window = window, users = users_of(s),
      context = {proto = "tcp", app_proto = "ssh"},
    })
    s.reported = s.total
  end
  return 0
end

function timer_event(ns, ns_exact)
  local sec = time.split(ns_exact)
  expire(sec)
  return 0
end
