package sandbox

import (
	"strings"
	"testing"
	"time"

	lua "github.com/Shopify/go-lua"
)

// Expected values are what Lua 5.2's reference implementation returns.
func TestPatterns(t *testing.T) {
	sb := newSB(`
function show(...)
  local n = select("#", ...)
  local out = {}
  for i = 1, n do out[i] = tostring((select(i, ...))) end
  return table.concat(out, ",")
end
function t_find(s, p, i, plain) return show(string.find(s, p, i, plain)) end
function t_match(s, p, i) return show(string.match(s, p, i)) end
function t_gsub(s, p, r, n) return show(string.gsub(s, p, r, n)) end
function t_gsub_f(s, p) return show(string.gsub(s, p, function(a, b) return b and (b .. a) or a:upper() end)) end
function t_gsub_t(s, p) return show(string.gsub(s, p, {hello = "HI", world = false})) end
function t_gmatch(s, p)
  local out = {}
  for a, b in string.gmatch(s, p) do out[#out + 1] = b and (a .. "=" .. b) or a end
  return table.concat(out, ";")
end`)
	call := func(fn string, args ...any) string {
		var out string
		err := sb.Call(fn, func(l *lua.State) int {
			for _, a := range args {
				PushGo(l, a)
			}
			return len(args)
		}, 1, func(l *lua.State) error { out, _ = l.ToString(-1); return nil })
		if err != nil {
			return "error: " + err.Error()
		}
		return out
	}
	for _, tc := range []struct {
		fn   string
		args []any
		want string
	}{
		{"t_find", []any{"hello world", "w.r"}, "7,9"},
		{"t_find", []any{"hello world", "o", 6}, "8,8"},
		{"t_find", []any{"hello world", "o", -3}, "nil"},
		{"t_find", []any{"a.b", ".", 1, true}, "2,2"},
		{"t_find", []any{"hello", "l+"}, "3,4"},
		{"t_find", []any{"hello", "(l)(l)"}, "3,4,l,l"},
		{"t_find", []any{"hello", "()ll()"}, "3,4,3,5"},
		{"t_find", []any{"", ""}, "1,0"},
		{"t_find", []any{"abc", "", 10}, "nil"},
		{"t_find", []any{"abc", "^b"}, "nil"},
		{"t_find", []any{"abc", "c$"}, "3,3"},
		{"t_find", []any{"a$b", "$b"}, "2,3"},
		{"t_match", []any{"key = value", "(%w+)%s*=%s*(%w+)"}, "key,value"},
		{"t_match", []any{"2024-01-02", "(%d+)-(%d+)-(%d+)"}, "2024,01,02"},
		{"t_match", []any{"  trim  ", "^%s*(.-)%s*$"}, "trim"},
		{"t_match", []any{"f(a(b)c)d", "%b()"}, "(a(b)c)"},
		{"t_match", []any{"THE (quick) fox", "%f[%a]%a+"}, "THE"},
		{"t_match", []any{"hello world", "%f[%w]%w+", 2}, "world"},
		{"t_match", []any{"abcabc", "(abc)%1"}, "abc"},
		{"t_match", []any{"aXb", "[%u]"}, "X"},
		{"t_match", []any{"a]b", "[]]"}, "]"},
		{"t_match", []any{"a-b", "[a%-]+"}, "a-"},
		{"t_match", []any{"x9", "[^%a]"}, "9"},
		{"t_match", []any{"z", "[a-y]"}, "nil"},
		{"t_match", []any{"aaa", "a-b"}, "nil"},
		{"t_match", []any{"aaab", "a-b"}, "aaab"},
		{"t_match", []any{"ab", "a?b"}, "ab"},
		{"t_match", []any{"b", "a?b"}, "b"},
		{"t_match", []any{"hello", ".-"}, ""},
		{"t_match", []any{"\x00\x01x", "%c+"}, "\x00\x01"},
		{"t_match", []any{"a.b", "%."}, "."},
		{"t_match", []any{"x", "%"}, "error: runtime: test.lua:9: malformed pattern (ends with '%')"},
		{"t_match", []any{"x", "[a"}, "error: runtime: test.lua:9: malformed pattern (missing ']')"},
		{"t_match", []any{"x", "(x"}, "error: runtime: test.lua:9: unfinished capture"},
		{"t_match", []any{"x", "x)"}, "error: runtime: test.lua:9: invalid pattern capture"},
		{"t_match", []any{"x", "%1"}, "error: runtime: test.lua:9: invalid capture index %1"},
		{"t_match", []any{"x", "%f"}, "error: runtime: test.lua:9: missing '[' after '%f' in pattern"},
		{"t_gsub", []any{"hello world", "o", "0"}, "hell0 w0rld,2"},
		{"t_gsub", []any{"hello world", "o", "0", 1}, "hell0 world,1"},
		{"t_gsub", []any{"hello", "", "-"}, "-h-e-l-l-o-,6"},
		{"t_gsub", []any{"abc", "%w", "%0%0"}, "aabbcc,3"},
		{"t_gsub", []any{"hello world", "(%w+) (%w+)", "%2 %1"}, "world hello,1"},
		{"t_gsub", []any{"abc", "^a", "x"}, "xbc,1"},
		{"t_gsub", []any{"x", "x", "%2"}, "error: runtime: test.lua:10: invalid capture index %2"},
		{"t_gsub", []any{"x", "x", "%z"}, "error: runtime: test.lua:10: invalid use of '%' in replacement string"},
		{"t_gsub_f", []any{"a b", "%a"}, "A B,2"},
		{"t_gsub_f", []any{"k=v", "(%w)=(%w)"}, "vk,1"},
		{"t_gsub_t", []any{"hello world", "%w+"}, "HI world,2"},
		{"t_gmatch", []any{"one two  three", "%a+"}, "one;two;three"},
		{"t_gmatch", []any{"a=1, b=2", "(%w+)=(%w+)"}, "a=1;b=2"},
		{"t_gmatch", []any{"abc", ""}, ";;;"},
	} {
		if got := call(tc.fn, tc.args...); got != tc.want {
			t.Errorf("%s%q: got %q, want %q", tc.fn, tc.args, got, tc.want)
		}
	}
}

// Backtracking patterns are polynomial; every step is charged, so a
// pathological one ends with the instruction limit instead of running for
// minutes.
func TestPatternWorkIsBounded(t *testing.T) {
	sb := newSB(`
s = string.rep("a", 5000)
function f() return string.find(s, ".-.-.-.-b") end
function deep() return string.match(string.rep("a", 300), string.rep("a?", 300) .. string.rep("a", 300)) end`)
	start := time.Now()
	_, err := run(t, sb, "f")
	if k := KindOf(err); k != KindInstruction && k != KindDeadline {
		t.Fatalf("want the budget, got %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("took %s", took)
	}
	if _, err := run(t, sb, "deep"); err == nil || !strings.Contains(err.Error(), "pattern too complex") && KindOf(err) != KindInstruction && KindOf(err) != KindDeadline {
		t.Fatalf("deep recursion: %v", err)
	}
}

func FuzzPattern(f *testing.F) {
	for _, s := range [][2]string{{"hello world", "w.r"}, {"key=val", "(%w+)=(%w+)"}, {"f(a(b))", "%b()"},
		{"THE fox", "%f[%a]%a+"}, {"abcabc", "(abc)%1"}, {"x", "[^%a-z]*$"}, {"aaa", "a-b"}, {"", "()"}} {
		f.Add(s[0], s[1])
	}
	sb := New(Config{Name: "fuzz", InstructionLimit: 100_000, Deadline: time.Second}, "f.lua", `
function f(s, p)
  local a = {string.find(s, p)}
  local b = {string.match(s, p)}
  local c = string.gsub(s, p, "%0")
  for x in string.gmatch(s, p) do end
  return c
end`, nil)
	f.Fuzz(func(t *testing.T, s, p string) {
		if len(s) > 4096 || len(p) > 256 {
			return
		}
		var out string
		err := sb.Call("f", func(l *lua.State) int { l.PushString(s); l.PushString(p); return 2 }, 1,
			func(l *lua.State) error { out, _ = l.ToString(-1); return nil })
		switch KindOf(err) {
		case "", KindRuntime, KindInstruction, KindDeadline:
		default:
			t.Fatalf("%q %q: %v", s, p, err)
		}
		if err == nil && out != s {
			t.Fatalf("gsub(s, p, '%%0') must give s back: %q %q -> %q", s, p, out)
		}
	})
}
