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
from the messages' timestamps (counted in whole seconds), so replayed logs
give the same alerts.

The counting is a Go-backed window (require "tern.window"): O(1) amortised
per event, at most max_sources sources held (the least recently active are
evicted beyond it, counted in tern_lua_state_evictions_total) and max_users
user names kept per source (the alert lists them, then "...").

Config (read_config):
  threshold    failures from one source that raise the alert (default 10)
  window       sliding window in seconds (default 60)
  max_sources  sources tracked at once (default 100000)
  max_users    user names kept per source (default 32)

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

local window = require "tern.window"
local read_message = read_message

local threshold = read_config("threshold") or 10
local span = read_config("window") or 60

-- failed logins per source, with the user names tried
local sources = window.new{
  name = "sources", span = span, distinct = read_config("max_users") or 32, values = true,
  max_keys = read_config("max_sources") or 100000,
}
-- source -> {h = alert handle, reported = failures when raised,
-- succeeded = a login succeeded after the alert}, while the attack lasts
alerts = {}

local function users_of(ip)
  local names = table.concat(sources:values(ip), ",")
  local _, more = sources:distinct(ip)
  return more and names .. ",..." or names
end

-- close the alerts of sources quiet for a whole window
local function close_quiet()
  for ip, total in sources:expired() do
    local a = alerts[ip]
    if a then
      alerts[ip] = nil
      if total > a.reported then
        a.h:update{
          end_time = sources:last(ip),
          description = string.format("%d failed SSH logins from %s (users: %s)", total, ip, users_of(ip)),
        }
      end
    end
  end
end

function process_message()
  local ip = read_message("Fields[src_ip]")
  if not ip then return 0 end
  local event = read_message("Fields[sshd.event]")
  close_quiet()

  if event == "accepted" then
    local a = alerts[ip]
    if a and not a.succeeded then
      a.succeeded = true
      a.h:update{completion = "successful", end_time = read_exact("Timestamp")}
    end
    return 0
  end
  if event ~= "failed_password" then return 0 end

  local n = sources:add(ip, read_message("Fields[user]") or "?")
  if not n then return -1, "src_ip longer than 1KiB" end
  if n >= threshold and not alerts[ip] then
    local host = read_message("Hostname")
    local h = alert.raise("alert_ssh_bruteforce", {
      start_time = sources:first(ip),
      end_time = read_exact("Timestamp"),
      severity = "high",
      confidence = n >= 2 * threshold and "high" or "medium",
      completion = "failed",
      method = {description = "SSH password guessing", ref = {"mitre:T1110"}},
      sources = {alert.address(ip)},
      targets = {alert.address(host), alert.service("tcp/22", "ssh")},
    }, {
      attempts = sources:total(ip), src = ip, window = span, users = users_of(ip),
      context = {proto = "tcp", app_proto = "ssh"},
    })
    alerts[ip] = {h = h, reported = sources:total(ip)}
  end
  return 0
end

function timer_event(ns, ns_exact)
  close_quiet()
  return 0
end
