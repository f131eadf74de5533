-- Test fixture: a minimal CEF-in-RFC-5424 decoder, standing in for the CEF
-- decoder so the AuthFail detection can run on shared/samples/app-cef.log.
function process_message()
  local p = read_message("Payload")
  local y, mo, d, h, mi, s, ms, host, cef = string.match(p, "^<%d+>1 (%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)%.(%d+)Z (%S+) %S+ %S+ %S+ %S+ (CEF:.*)$")
  if not y then return -1, "not CEF in syslog" end
  local vendor, product, version, class, name, sev, ext = string.match(cef, "^CEF:%d+|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|([^|]*)|(.*)$")
  if not vendor then return -1, "bad CEF header" end
  local sec = os.time{year = tonumber(y), month = tonumber(mo), day = tonumber(d), hour = tonumber(h), min = tonumber(mi), sec = tonumber(s)}
  write_message("Timestamp", sec + tonumber(ms) / 1000)
  write_message("Hostname", host)
  write_message("Type", "cef")
  write_message("Payload", cef)
  write_message("Fields[deviceVendor]", vendor)
  write_message("Fields[deviceProduct]", product)
  write_message("Fields[deviceEventClassId]", class)
  write_message("Fields[name]", name)
  write_message("Fields[src]", string.match(ext, "src=(%S+)"))
  write_message("Fields[suser]", string.match(ext .. " x=", "suser=(.-) %w+="))
  return 0
end
