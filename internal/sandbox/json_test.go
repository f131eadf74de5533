package sandbox

import (
	"testing"
	"time"

	lua "github.com/Shopify/go-lua"
)

// json.decode never panics or runs away, and what it accepts re-encodes to
// something it accepts again.
func FuzzJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5,"x",true,null,{"b":{}}]}`, `"\ud83d\ude00"`, `[[[[]]]]`, `-1e308`, `{"a":1,"a":2}`} {
		f.Add(s)
	}
	sb := New(Config{Name: "fuzz", Deadline: time.Second}, "f.lua", `
function f(s)
  local ok, v = pcall(json.decode, s)
  if not ok then return "" end
  local ok2, e = pcall(json.encode, v)
  if not ok2 then return "" end
  json.decode(e)
  return e
end`, nil)
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 1<<16 {
			return
		}
		err := sb.Call("f", func(l *lua.State) int { l.PushString(s); return 1 }, 1, nil)
		switch KindOf(err) {
		case "", KindInstruction, KindDeadline, KindMemory:
		default:
			t.Fatalf("%q: %v", s, err)
		}
	})
}
