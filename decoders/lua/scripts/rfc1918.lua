--[[
RFC 1918 originators

Marks messages whose source address is private (RFC 1918: 10/8, 172.16/12,
192.168/16), the way Zeek's logs mark local originators: the boolean field
<field>_rfc1918 is added next to the address field. Messages without the
field pass unchanged. Use it after a decoder that sets the field.

Example:

  [decoders.rfc1918]
  type = "lua"
  filename = "decoders/lua/scripts/rfc1918.lua"
  [decoders.rfc1918.config]
  field = "src_ip"

  [inputs.auth]
  type = "tail"
  decoder = ["syslog", "sshd", "rfc1918"]

Config (read_config):
  field  the address field to look at (default src_ip)
--]]

local field = read_config("field") or "src_ip"

local function octets(ip)
  local a, b, c, d = string.match(ip, "^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
  if not a then return nil end
  return tonumber(a), tonumber(b), tonumber(c), tonumber(d)
end

local function rfc1918(ip)
  local a, b = octets(ip)
  if not a then return false end
  return a == 10 or (a == 172 and b >= 16 and b <= 31) or (a == 192 and b == 168)
end

function process_message()
  local ip = read_message("Fields[" .. field .. "]")
  if type(ip) ~= "string" then return 0 end
  write_message("Fields[" .. field .. "_rfc1918]", rfc1918(ip))
  return 0
end
