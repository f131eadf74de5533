-- Exercises the decoder's return codes and failures.
function process_message()
  local p = read_message("Payload")
  if p == "skip" then return -2 end
  if p == "reject" then return -1, "not a record I know" end
  if p == "loop" then while true do end end
  if p == "oops" then error("bad input") end
  write_message("Fields[len]", {value = #p, value_type = 2})
  return 0
end
