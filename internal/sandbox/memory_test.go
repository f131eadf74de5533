package sandbox

import (
	"cmp"
	"fmt"
	"maps"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	lua "github.com/Shopify/go-lua"

	"github.com/ternlog/tern/pipeline"
)

// heldAtTrip runs f and returns how far the live heap had risen when the
// sandbox stopped the script for its memory, measured by a full collection
// while the script is stopped (0 when f did not trip).
func heldAtTrip(t *testing.T, f func()) int64 {
	t.Helper()
	base := liveHeap()
	var held int64
	testHookMemoryTrip = func() { held = liveHeap() - base }
	defer func() { testHookMemoryTrip = nil }()
	f()
	return held
}

// memSB is a sandbox that only its memory limit can stop: no instruction
// limit and a long deadline.
func memSB(limit int64, src string) *Sandbox {
	return New(Config{Name: "test", InstructionLimit: -1, Deadline: time.Minute, MemoryLimit: limit}, "t.lua", src, nil)
}

// Every library function that can allocate in proportion to its input, and
// the VM instructions that can, fails the call with the memory error once
// what the script holds would pass its limit; the heap stays within the
// limit and a slack (the accounting's step, the allocation in flight and
// the collector's 10%), and the State, over its limit, is dropped so that
// memory comes back.
func TestMemoryLimitPerFunction(t *testing.T) {
	const slack = 8 << 20
	// Each script keeps what one function makes in G until it stops, from
	// these values (those it uses are made at its top level).
	values := map[string]string{
		"s":     `string.rep("x", 500000)`,
		"S":     `string.rep("X", 500000)`,
		"parts": `{} for i = 1, 50 do parts[i] = string.rep("p", 9000) end`,
		"js":    `"[" .. string.rep("7,", 100000) .. "7]"`,
		"big":   `{} for i = 1, 100000 do big[i] = i end`,
		"half":  `string.rep(".", 250000)`,
		"bytes": `{} for i = 1, 50000 do bytes[i] = i % 256 end`,
		"csv":   `string.rep("a,", 25000)`,
		"mid":   `string.rep("x", 250000) .. "|" .. string.rep("z", 249999)`,
	}
	prelude := func(body string) string {
		var b strings.Builder
		for _, name := range slices.Sorted(maps.Keys(values)) {
			if regexp.MustCompile(`\b` + name + `\b`).MatchString(body) {
				b.WriteString("local " + name + " = " + values[name] + "\n")
			}
		}
		return b.String() + "G = {}\n"
	}
	for _, tc := range []struct {
		name, body, in string
		limit          int64 // 8 MiB when 0
	}{
		// (string.char's result is no longer than its arguments, whose
		// stack slots table.unpack charged first.)
		{"string.byte", `G[#G+1] = {string.byte(s, 1, 50000)}`, "string.byte", 0},
		{"string.rep", `G[#G+1] = string.rep("x", 450000)`, "string.rep", 0},
		{"string.format", `G[#G+1] = string.format("%s%s", s:sub(1, 200000), s:sub(1, 200000))`, "string.format", 0},
		{"string.sub", `G[#G+1] = s:sub(i, 250000 + i)`, "string.sub", 0},
		{"string.upper", `G[#G+1] = s:upper()`, "string.upper", 0},
		{"string.lower", `G[#G+1] = S:lower()`, "string.lower", 0},
		{"string.reverse", `G[#G+1] = s:reverse()`, "string.reverse", 0},
		{"string.char", `G[#G+1] = string.char(table.unpack(bytes, 1, 2000))`, "(string.char|table.unpack)", 2 << 20},
		{"string.gsub", `G[#G+1] = s:gsub("x+", "y%0")`, "string.gsub", 0},
		{"string.match", `G[#G+1] = s:match("(" .. half .. ")", i)`, "capture", 0},
		{"string.find", `G[#G+1] = select(3, s:find("(" .. half .. ")", i))`, "capture", 0},
		{"string.gmatch", `for w in s:gmatch(half) do G[#G+1] = w end`, "capture", 0},
		{"table.concat", `G[#G+1] = table.concat(parts)`, "table.concat", 0},
		{"table.unpack", `G[#G+1] = {table.unpack(big)}`, "table.unpack", 0},
		{"table.pack", `G[#G+1] = table.pack(table.unpack(big, 1, 100000))`, "table.", 0},
		{"json.decode", `G[#G+1] = json.decode(js)`, "json.decode", 0},
		{"json.encode", `G[#G+1] = json.encode(parts)`, "json.encode", 0},
		{"re.gsub", `G[#G+1] = re.gsub(csv, "a", "bbbbbbbbbbbbbbbbbb")`, "re.gsub", 2 << 20},
		{"re.split", `G[#G+1] = re.split(csv, ",")`, "re.split", 2 << 20},
		{"re.match", `G[#G+1] = re.match(mid, "^([^|]+)")`, "re capture", 2 << 20},
		// VM instructions: caught by the hook's look at the allocation
		// counter and a measurement.
		{"table_sets", `for k = 1, 50000 do G[#G+1] = k + 0.5 end`, "holds", 0},
		{"tables", `G[#G+1] = {i, i, i, i}`, "holds", 0},
		{"concat_loop", `G[#G+1] = s:sub(1, 100000) .. i`, "", 0},
		{"closures", `local v = {i} G[#G+1] = function() return v end`, "holds", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := prelude(tc.body) + "function f() for i = 1, 1e9 do " + tc.body + " end end"
			limit := cmp.Or(tc.limit, 8<<20)
			sb := memSB(limit, src)
			if _, err := sb.Load(); err != nil {
				t.Fatal(err)
			}
			var err error
			grew := heldAtTrip(t, func() { _, err = run(t, sb, "f") })
			if KindOf(err) != KindMemory || !strings.Contains(err.Error(), fmt.Sprintf("memory limit of %d bytes exceeded", limit)) ||
				!regexp.MustCompile(tc.in).MatchString(err.Error()) {
				t.Fatalf("want the memory error naming %q, got %v", tc.in, err)
			}
			// A State found over its limit is dropped; one whose last
			// allocation was refused before it happened stays.
			var e *Error
			if asError(err, &e) && e.Fatal == sb.Loaded() {
				t.Fatalf("fatal=%v but loaded=%v", e.Fatal, sb.Loaded())
			}
			t.Logf("%v; the live heap had risen by %d MiB", err, grew>>20)
			if grew > limit+slack {
				t.Errorf("the heap rose by %d MiB for a limit of %d MiB", grew>>20, limit>>20)
			}
		})
	}
}

func asError(err error, e **Error) bool {
	x, ok := err.(*Error)
	*e = x
	return ok
}

// The first bomb: each 1 MB string.byte into a table kept in a
// global, 40 times in one call, with the default limits. Neither the
// instruction budget nor the deadline sees this work; the memory limit
// stops it before string.byte allocates past it.
func TestByteTableBomb(t *testing.T) {
	sb := New(Config{Name: "test"}, "t.lua", `
G = {}
function f(s) for i = 1, 40 do G[#G+1] = {string.byte(s, 1, -1)} end end`, nil)
	// About 1 MB: string.byte(s, 1, -1) of a string longer than go-lua's
	// stack (a million slots) fails on its own.
	s := strings.Repeat("b", 990_000)
	var err error
	grew := heldAtTrip(t, func() {
		err = sb.Call("f", func(l *lua.State) int { l.PushString(s); return 1 }, 0, nil)
	})
	if KindOf(err) != KindMemory || !strings.Contains(err.Error(), "exceeded in string.byte") {
		t.Fatalf("want the memory error in string.byte, got %v", err)
	}
	t.Logf("%v; heap rose by %d MiB", err, grew>>20)
	if grew > DefaultMemoryLimit+32<<20 {
		t.Errorf("the heap rose by %d MiB", grew>>20)
	}
}

// The second bomb, scaled down (filters/lua runs it as it was): a
// global table growing by about 1.3 MB a call is stopped once what it holds
// passes the limit (the bound is cumulative, not per call), and dropping its
// State gives the memory back.
func TestCumulativeGrowthIsStopped(t *testing.T) {
	runtime.GC()
	base := liveHeap()
	sb := memSB(16<<20, `
G = {}
function f() for i = 1, 25000 do G[#G+1] = "v" .. i end return #G end`)
	var err error
	calls := 0
	grew := heldAtTrip(t, func() {
		for calls = 1; calls <= 200; calls++ {
			if _, err = run(t, sb, "f"); err != nil {
				break
			}
		}
	})
	if KindOf(err) != KindMemory {
		t.Fatalf("after %d calls: want the memory error, got %v", calls, err)
	}
	t.Logf("call %d: %v; heap rose by %d MiB", calls, err, grew>>20)
	if calls < 5 || calls > 20 {
		t.Errorf("stopped at call %d; each adds about 1.3 MB to a 16 MB limit", calls)
	}
	if grew > 16<<20+8<<20 {
		t.Errorf("the heap rose by %d MiB", grew>>20)
	}
	if sb.Loaded() {
		t.Fatal("the State over its limit must be dropped")
	}
	if after := liveHeap(); after-base > 8<<20 {
		t.Errorf("%d MiB still held after the State was dropped", (after-base)>>20)
	}
	// The next call starts again from the script.
	if got, err := run(t, sb, "f"); err != nil || got != "25000" {
		t.Fatalf("a fresh State: %q %v", got, err)
	}
}

// A call that tries a big allocation on bad data fails, but a State that
// holds little stays: only the message fails.
func TestMemoryErrorKeepsSmallState(t *testing.T) {
	sb := memSB(16<<20, `
n = 0
function f(k) n = n + 1 local t = {string.byte(string.rep("x", k), 1, -1)} return n end`)
	call := func(k int) (string, error) {
		var out string
		err := sb.Call("f", func(l *lua.State) int { l.PushInteger(k); return 1 }, 1, func(l *lua.State) error {
			out, _ = l.ToString(-1)
			return nil
		})
		return out, err
	}
	if _, err := call(1000); err != nil {
		t.Fatal(err)
	}
	_, err := call(1000000)
	var e *Error
	if KindOf(err) != KindMemory || !asError(err, &e) || e.Fatal {
		t.Fatalf("want a non-fatal memory error, got %v", err)
	}
	if got, err := call(10); err != nil || got != "3" {
		t.Fatalf("the State must survive: %q %v", got, err)
	}
}

// Calls shorter than the hook's interval are seen too: the hook counts
// across calls.
func TestShortCallsAreCounted(t *testing.T) {
	sb := memSB(16<<20, `
G = {} S = string.rep("x", 100000)
function f() G[#G+1] = S .. #G end`)
	for i := range 2000 {
		if _, err := run(t, sb, "f"); err != nil {
			if KindOf(err) != KindMemory {
				t.Fatal(err)
			}
			t.Logf("call %d: %v", i, err)
			return
		}
	}
	t.Fatal("200 MB in 2,000 calls of a few instructions each were not stopped")
}

// Work done inside one library call is bounded even where the deadline
// cannot interrupt it.
func TestLibraryWorkIsBounded(t *testing.T) {
	for name, src := range map[string]string{
		"insert_front": `function f() local t = {} for i = 1, 1e6 do table.insert(t, 1, i) end end`,
		"remove_front": `function f() local t = {} for i = 1, 3e5 do t[i] = i end for i = 1, 3e5 do table.remove(t, 1) end end`,
		"sort_big":     `function f() local t = {} for i = 1, 4e5 do t[i] = -i end table.sort(t) end`,
		"byte_huge":    `function f() local s = string.rep("x", 2000000) return string.byte(s, 1, -1) end`,
	} {
		t.Run(name, func(t *testing.T) {
			sb := New(Config{Name: "test", StringLimit: 4 << 20}, "t.lua", src, nil)
			start := time.Now()
			_, err := run(t, sb, "f")
			if err == nil {
				t.Fatal("must fail")
			}
			t.Logf("%v after %s", err, time.Since(start))
		})
	}
}

// Strings a script gets from a message are its own: a decoder's short
// strings are views into 32 KiB chunks shared by a batch, and a table
// keyed by them would keep every chunk alive (2,000 keys: 64 MiB), which
// no measurement sees.
func TestMessageStringsDoNotPinChunks(t *testing.T) {
	var cur *pipeline.Message
	sb := New(Config{Name: "test"}, "t.lua", `
K = {} n = 0
function f() K[read_message("Fields[src]")] = read_message("Payload") n = n + 1 return n end`, func(sb *Sandbox) error {
		sb.State().Register("read_message", func(l *lua.State) int { return sb.ReadMessage(l, cur, ReadPlain) })
		return nil
	})
	if _, err := sb.Load(); err != nil {
		t.Fatal(err)
	}
	base := liveHeap()
	for i := range 2000 {
		b := pipeline.NewBatch() // a chunk of its own for each message,
		b.Reserve(64, 32<<10)    // as large as a full read's
		m := b.Add()
		m.Payload = b.Str([]byte("payload"))
		m.AddString("src", b.Str(fmt.Appendf(nil, "10.0.%d.%d", i/256, i%256)))
		cur = m
		if _, err := run(t, sb, "f"); err != nil {
			t.Fatal(err)
		}
	}
	cur = nil
	held := liveHeap() - base
	t.Logf("2,000 keys hold %d KiB", held>>10)
	if held > 4<<20 {
		t.Errorf("2,000 keys from messages hold %d MiB", held>>20)
	}
	runtime.KeepAlive(sb)
}
