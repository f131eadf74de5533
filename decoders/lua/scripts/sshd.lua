--[[
sshd authentication events

Turns OpenSSH's authentication log lines into fields, for detections such
as filters/lua/scripts/ssh_bruteforce.lua. It reads the Payload (the syslog
MSG part after the syslog decoder, or a whole line: the patterns are not
anchored), and adds:

  sshd.event    accepted, failed_<method>, invalid_user, pam_auth_failures,
                session_opened, session_closed
  outcome       success | failure (authentication events)
  method        password, publickey, keyboard-interactive/pam, ...
  user          the account tried
  invalid_user  true when sshd reports the account does not exist
  src_ip        the client's address
  src_port      the client's port (integer)
  count         number of failures (pam_auth_failures)
  uid           the session's uid (integer, session_opened)

Lines that are none of these pass unchanged.

Example:

  [decoders.sshd]
  type = "lua"
  filename = "decoders/lua/scripts/sshd.lua"

  [inputs.auth]
  type = "tail"
  decoder = ["syslog", "sshd"]
--]]

-- an integer field; nil (no field) for digit runs too long to be a port or count
local function int(v)
  if not v or #v > 9 then return nil end
  return {value = v, value_type = 2}
end

local function put(event, outcome, method, user, invalid, ip, port)
  write_message("Fields[sshd.event]", event)
  if outcome then write_message("Fields[outcome]", outcome) end
  if method then write_message("Fields[method]", method) end
  if user then write_message("Fields[user]", user) end
  if invalid then write_message("Fields[invalid_user]", true) end
  if ip then write_message("Fields[src_ip]", ip) end
  if int(port) then write_message("Fields[src_port]", int(port)) end
end

function process_message()
  local msg = read_message("Payload")
  if not msg then return 0 end

  local method, user, ip, port = string.match(msg, "Accepted (%S+) for (%S+) from (%S+) port (%d+)")
  if method then
    put("accepted", "success", method, user, false, ip, port)
    return 0
  end
  method, user, ip, port = string.match(msg, "Failed (%S+) for invalid user (%S+) from (%S+) port (%d+)")
  if method then
    put("failed_" .. method, "failure", method, user, true, ip, port)
    return 0
  end
  method, user, ip, port = string.match(msg, "Failed (%S+) for (%S+) from (%S+) port (%d+)")
  if method then
    put("failed_" .. method, "failure", method, user, false, ip, port)
    return 0
  end
  user, ip, port = string.match(msg, "Invalid user (%S*) from (%S+) port (%d+)")
  if user then
    put("invalid_user", "failure", nil, user, true, ip, port)
    return 0
  end
  local n, rest = string.match(msg, "PAM (%d+) more authentication failures?;(.*)")
  if n then
    put("pam_auth_failures", "failure", nil, string.match(rest, "user=(%S+)"), false, string.match(rest, "rhost=(%S+)"), nil)
    if int(n) then write_message("Fields[count]", int(n)) end
    return 0
  end
  local uid
  user, uid = string.match(msg, "session opened for user ([^%s(]+)%(uid=(%d+)%)")
  if user then
    put("session_opened", nil, nil, user)
    if int(uid) then write_message("Fields[uid]", int(uid)) end
    return 0
  end
  user = string.match(msg, "session closed for user (%S+)")
  if user then
    put("session_closed", nil, nil, user)
  end
  return 0
end
