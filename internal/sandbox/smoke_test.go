package sandbox

import (
	"testing"
	"time"

	lua "github.com/Shopify/go-lua"
)

func TestSmoke(t *testing.T) {
	src := `
function f(x)
  local a, b = string.match("key=value", "(%w+)=(%w+)")
  local s = string.gsub("hello world", "o", "0")
  local t = {}
  for w in string.gmatch("one two three", "%a+") do t[#t+1] = w end
  return a .. b .. s .. table.concat(t, ",") .. json.encode({a=1,b={1,2,3}}) .. os.date("%Y-%m-%d", 0)
end
function loop() while true do end end
function ploop() while true do pcall(function() while true do end end) end end
function dbl() local s = "x" for i=1,40 do s = s..s end return #s end
`
	s := New(Config{Name: "t"}, "t.lua", src, nil)
	var got string
	err := s.Call("f", func(l *lua.State) int { l.PushNumber(1); return 1 }, 1, func(l *lua.State) error { got, _ = l.ToString(-1); return nil })
	t.Log(got, err)
	for _, fn := range []string{"loop", "ploop", "dbl"} {
		start := time.Now()
		err = s.Call(fn, nil, 0, nil)
		t.Log(fn, time.Since(start), err)
	}
}
