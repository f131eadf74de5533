package sandbox

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	lua "github.com/Shopify/go-lua"
)

// clockSB returns a sandbox whose primitives' clock is *now (ns).
func clockSB(t *testing.T, src string, now *int64, cfg Config) *Sandbox {
	t.Helper()
	cfg.Name = "test"
	sb := New(cfg, "state.lua", src, func(sb *Sandbox) error { sb.SnapshotBuiltins(); return nil })
	sb.SetClock(func() int64 { return *now })
	return sb
}

const s0 = int64(1795175404) * int64(time.Second)

func call(t *testing.T, sb *Sandbox, fn string) string {
	t.Helper()
	out, err := run(t, sb, fn)
	if err != nil {
		t.Fatalf("%s: %v", fn, err)
	}
	return out
}

func TestWindowFromLua(t *testing.T) {
	now := s0
	sb := clockSB(t, `
local window = require "tern.window"
fails = window.new{name = "fails", span = 10, distinct = 2, values = true, max_keys = 3}
function add(k, v) return tostring(fails:add(k, v)) end
function f1() return add("a", "root") .. add("a", "admin") .. add("a", "guest") .. add("b") end
function info()
  local n, capped = fails:distinct("a")
  return table.concat({fails:count("a"), fails:total("a"), n, tostring(capped),
    table.concat(fails:values("a"), ","), fails:first("a"), fails:last("b"), #fails, tostring(fails)}, " ")
end
function expire()
  local out = {}
  for k, total in fails:expired() do
    out[#out + 1] = k .. "=" .. total .. ":" .. table.concat(fails:values(k), ",")
  end
  return table.concat(out, " ")
end
function stats()
  local s = fails:stats()
  return table.concat({s.keys, s.bytes > 0 and "bytes" or "none", s.evictions, s.expirations, s.rejected}, " ")
end
function long() return tostring(fails:add(string.rep("x", 2000))) end
`, &now, Config{})
	if got := call(t, sb, "f1"); got != "1231" {
		t.Fatalf("counts %q", got)
	}
	now += 5 * int64(time.Second)
	want := "3 3 2 true admin,root 1795175404000000000 1795175404000000000 2 window fails (2 keys)"
	if got := call(t, sb, "info"); got != want {
		t.Fatalf("info\n got %q\nwant %q", got, want)
	}
	if got := call(t, sb, "expire"); got != "" {
		t.Fatalf("expired early: %q", got)
	}
	now += 6 * int64(time.Second)
	if got := call(t, sb, "expire"); got != "a=3:admin,root b=1:" {
		t.Fatalf("expired %q", got)
	}
	if got := call(t, sb, "long"); got != "nil" {
		t.Fatalf("a key over max_key_bytes: %q", got)
	}
	if got := call(t, sb, "stats"); got != "0 bytes 0 2 1" { // bytes: records kept for reuse
		t.Fatalf("stats %q", got)
	}
}

func TestThrottleTopNLRUFromLua(t *testing.T) {
	now := s0
	sb := clockSB(t, `
local throttle, topn, lru = require "tern.throttle", require "tern.topn", require "tern.lru"
local th = throttle.new{span = "1m", limit = 2}
local top = topn.new{size = 2}
local t = lru.new{max_keys = 2}
function f()
  local out = {}
  for i = 1, 4 do
    local ok, n = th:allow("k")
    out[#out + 1] = tostring(ok) .. n
  end
  for _, k in ipairs{"a", "b", "a", "c", "a"} do top:add(k) end
  top:add("w", 10)
  for _, it in ipairs(top:top()) do out[#out + 1] = it.key .. "=" .. it.count .. "~" .. it.error end
  t:set("x", "1"); t:set("y", 2); t:get("x"); t:set("z", true)
  out[#out + 1] = tostring(t:get("x")) .. tostring(t:get("y")) .. tostring(t:get("z")) .. t:incr("n", 5) .. t:incr("n")
  out[#out + 1] = th:stats().keys .. top:stats().evictions .. t:stats().evictions
  return table.concat(out, " ")
end
function later()
  local out = {}
  for k, suppressed in th:expired() do out[#out + 1] = k .. suppressed .. th:first(k) end
  return table.concat(out, " ")
end
`, &now, Config{})
	// topn: c replaces b (1), then w replaces c (2); lru: z evicts y, n
	// evicts x.
	want := "true1 true2 false3 false4 w=12~2 a=3~0 1niltrue56 122"
	if got := call(t, sb, "f"); got != want {
		t.Fatalf("\n got %q\nwant %q", got, want)
	}
	now += int64(time.Minute)
	if got := call(t, sb, "later"); got != "k21795175404000000000" {
		t.Fatalf("%q", got)
	}
}

// Mistakes get errors that say what is wrong.
func TestStateErrors(t *testing.T) {
	now := s0
	for _, c := range []struct{ src, want string }{
		{`require("tern.window").new{span = 10, spam = 1}`, "window.new: unknown option 'spam'"},
		{`require("tern.window").new{}`, "window.new: span is required"},
		{`require("tern.window").new{span = "soon"}`, "window.new: span must be a positive duration"},
		{`require("tern.window").new{span = 10, resolution = 3}`, "window.new: span (10s) must be a multiple of resolution (3s)"},
		{`require("tern.window").new{span = 10, max_bytes = "1GiB"}`, "exceeds the script's memory_limit"},
		{`require("tern.window").new{span = 10, max_keys = 0}`, "window.new: max_keys must be an integer from 1"},
		{`local w = require("tern.window").new{span = 10}; w.add("k")`, "window expected (call methods with ':')"},
		{`local w = require("tern.window").new{span = 10}; w:add({})`, "key must be a string or a number"},
		{`for i = 1, 300 do require("tern.lru").new{} end`, "more than 256 Go-backed states"},
		{`require("tern.topn").new{size = 2}:add("k", -1)`, "weight must be a positive number"},
		{`require("tern.window").new{span = 1, values = true}`, "window.new: values needs distinct"},
		{`require("tern.window").new{span = 1, distinct = 2}:values("k")`, "create it with values = true"},
		{`local t = require("tern.lru").new{}; t:set("k", "v"); t:incr("k")`, "the value of 'k' is not a number"},
		{`require("tern.lru").new{}:set("k", {})`, "string, number, boolean or nil expected, got table"},
	} {
		sb := clockSB(t, "function f()\n"+c.src+"\nend", &now, Config{})
		_, err := run(t, sb, "f")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s:\n got %v\nwant %q", c.src, err, c.want)
		}
	}
}

// The primitives' bytes count against memory_limit: growth past it fails
// the call as a memory-limit breach, and a rebuilt State releases them.
func TestStateMemoryLimit(t *testing.T) {
	now := s0
	sb := clockSB(t, `
local lru = require "tern.lru"
big = lru.new{max_keys = 1000000, max_bytes = "512KiB"}
local v, i = string.rep("x", 200), 0
function fill() for _ = 1, 500 do i = i + 1; big:set(i, v) end end
`, &now, Config{MemoryLimit: 1 << 20, InstructionLimit: -1})
	// Many small calls: the heap check of one call does not see the
	// state's growth; the accounting does.
	for range 40 {
		if _, err := run(t, sb, "fill"); err != nil {
			t.Fatal("the state's own cap keeps it within the limit:", err)
		}
	}
	if b := sb.MemoryUsed(); b == 0 || b > 1<<20 {
		t.Fatalf("memory used %d", b)
	}
	st := sb.States()[0]
	if st.Evictions == 0 || st.Bytes > 512<<10 {
		t.Fatalf("%+v", st)
	}

	sb = clockSB(t, `
local lru = require "tern.lru"
a = lru.new{max_keys = 1000000, max_bytes = "768KiB"}
b = lru.new{max_keys = 1000000, max_bytes = "768KiB"}
local v, i = string.rep("x", 200), 0
function fill() for _ = 1, 500 do i = i + 1; a:set(i, v); b:set(i, v) end end
`, &now, Config{MemoryLimit: 1 << 20, InstructionLimit: -1})
	var err error
	for range 40 {
		if _, err = run(t, sb, "fill"); err != nil {
			break
		}
	}
	// Either the state's own charge or the measure of what the script holds
	// (which counts the states) may be the one that sees it first.
	if KindOf(err) != KindMemory || !strings.Contains(err.Error(), "memory limit of 1048576 bytes exceeded") {
		t.Fatalf("two states over the limit together: %v", err)
	}
	sb.Close()
	if sb.MemoryUsed() != 0 {
		t.Fatalf("%d bytes still charged after Close", sb.MemoryUsed())
	}
}

// preserve_data keeps every state, global or local, merges it into the state
// of the same name the new top level creates (with its new parameters), and
// rebuilds the ones it no longer creates.
func TestStatePreserve(t *testing.T) {
	path := filepath.Join(t.TempDir(), "p.lua")
	now := s0
	src := `
local window = require "tern.window"
local lru = require "tern.lru"
local hidden = lru.new{name = "hidden"}
fails = window.new{name = "fails", span = SPAN, distinct = 4, values = true}
alias = {w = fails}
function fill()
  for i = 1, 5 do fails:add("10.0.0." .. i, "u" .. i) end
  fails:add("10.0.0.1", "root")
  hidden:set("k", "v")
  if MORE then extra = require("tern.topn").new{name = "extra", size = 3}; extra:add("x", 7) end
end
function check()
  local out = {}
  for _, ip in ipairs{"10.0.0.1", "10.0.0.5"} do
    out[#out + 1] = ip .. "=" .. fails:count(ip) .. "/" .. fails:total(ip) .. ":" .. table.concat(fails:values(ip), ",")
  end
  out[#out + 1] = tostring(hidden:get("k")) .. tostring(alias.w == fails) .. tostring(alias.w:total("10.0.0.1"))
  out[#out + 1] = extra and (extra:count("x") .. "") or "noextra"
  return table.concat(out, " ")
end
`
	setup := func(sb *Sandbox) error { sb.SnapshotBuiltins(); return nil }
	mk := func(span string, more bool) *Sandbox {
		s := strings.ReplaceAll(src, "SPAN", span)
		s = "MORE = " + map[bool]string{true: "true", false: "false"}[more] + "\n" + s
		sb := New(Config{Name: "test"}, "p.lua", s, setup)
		sb.SetClock(func() int64 { return now })
		return sb
	}
	sb := mk("60", true)
	call(t, sb, "fill")
	if err := sb.SaveGlobals(path); err != nil {
		t.Fatal(err)
	}
	saved, _ := os.ReadFile(path)

	// The new top level asks for a 120 s window and no top-N.
	sb2 := mk("120", false)
	if _, err := sb2.Load(); err != nil {
		t.Fatal(err)
	}
	if ok, err := sb2.RestoreGlobals(path); !ok || err != nil {
		t.Fatalf("%v %v\n%s", ok, err, saved)
	}
	now += 90 * int64(time.Second)
	want := "10.0.0.1=2/2:root,u1 10.0.0.5=1/1:u5 vtrue2 7"
	if got := call(t, sb2, "check"); got != want {
		t.Fatalf("\n got %q\nwant %q\n%s", got, want, saved)
	}
	if len(sb2.States()) != 3 {
		t.Fatalf("%+v", sb2.States())
	}
}

// The allocation-free pushes rely on go-lua taking a float64 or a string in
// an interface{} as a Lua number or string.
func TestBoxedValues(t *testing.T) {
	sb := New(Config{Name: "test"}, "b.lua", `function f(n, s) return type(n) .. (n + 1) .. type(s) .. #s .. tostring(s == "process_message") end`, nil)
	err := sb.Call("f", func(l *lua.State) int {
		pushCount(l, 41)
		l.PushLightUserData(any("process_message"))
		return 2
	}, 1, func(l *lua.State) error {
		if got, _ := l.ToString(-1); got != "number42string15true" {
			t.Fatalf("%q", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// A state the script drops stops being listed (metrics, preserved data)
// once collected; the ones it keeps stay.
func TestDroppedState(t *testing.T) {
	now := s0
	sb := clockSB(t, `
local lru = require "tern.lru"
kept = lru.new{name = "kept"}
function f() local tmp = lru.new{name = "tmp"}; tmp:set("k", 1); return #tmp end
function g() local a, b, c, d, e, f, g, h = 1, 2, 3, 4, 5, 6, 7, 8; return a end`, &now, Config{})
	if got := call(t, sb, "f"); got != "1" {
		t.Fatal(got)
	}
	// The second tmp replaces the first; the stack slots of a call may
	// still hold it until another call reuses them.
	call(t, sb, "f")
	call(t, sb, "g")
	var names []string
	for range 10 {
		runtime.GC()
		names = names[:0]
		for _, st := range sb.States() {
			names = append(names, st.Name)
		}
		if len(names) == 1 {
			break
		}
	}
	if len(names) != 1 || names[0] != "kept" {
		t.Fatalf("%v", names)
	}
}
