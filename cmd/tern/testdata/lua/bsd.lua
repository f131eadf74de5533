-- Test fixture: a minimal BSD syslog (RFC 3164 without PRI) decoder, standing
-- in for the syslog decoder so the sshd script and the detections can run on
-- shared/samples/auth.log. The year is not in the line: read_config("year").
local year = read_config("year") or 2026
local months = {Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9, Oct = 10, Nov = 11, Dec = 12}

function process_message()
  local p = read_message("Payload")
  local mon, day, h, mi, s, host, prog, msg = string.match(p, "^(%a%a%a) +(%d+) (%d%d):(%d%d):(%d%d) (%S+) ([^:]+): (.*)$")
  if not mon or not months[mon] then return -1, "not BSD syslog" end
  write_message("Timestamp", os.time{year = year, month = months[mon], day = tonumber(day), hour = tonumber(h), min = tonumber(mi), sec = tonumber(s)})
  write_message("Hostname", host)
  write_message("Type", "syslog")
  write_message("Payload", msg)
  write_message("Fields[programname]", (string.gsub(prog, "%[%d+%]$", "")))
  return 0
end
