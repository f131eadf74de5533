package sandbox

import (
	"runtime"
	"testing"
	"time"

	lua "github.com/Shopify/go-lua"
)

func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// The walker's estimate of what a script holds follows what the Go heap
// holds for it, for each kind of object a script can pile up: within 2 %
// but for Go maps, whose size per entry swings with their growth (0.8 to
// 1.5 here).
func TestWalkerTracksHeap(t *testing.T) {
	lay, err := goLuaLayout()
	if err != nil {
		t.Fatal(err)
	}
	for name, src := range map[string]string{
		"numbers":      `G = {} for i = 1, 20000 do G[i] = i + 0.5 end`,
		"hash_numbers": `G = {} for i = 1, 30000 do G[i + 0.5] = i end`,
		"strings":      `G = {} for i = 1, 30000 do G[i] = "k" .. i end`,
		"string_keys":  `G = {} for i = 1, 30000 do G["key" .. i] = true end`,
		"long_strings": `G = {} for i = 1, 1000 do G[i] = string.rep("x", 1000) .. i end`,
		"shared_long":  `G = {} local s = string.rep("x", 100000) for i = 1, 2000 do G[i] = s end`,
		"tables":       `G = {} for i = 1, 20000 do G[i] = {i, x = i} end`,
		"closures":     `G = {} for i = 1, 20000 do local v = i G[i] = function() return v end end`,
		"closures_fn":  `G = {} local function f() for i = 1, 20000 do local v = i G[#G+1] = function() return v end end end f()`,
		"upvalue_tbl":  `local big = {} for i = 1, 30000 do big[i] = i end function get() return big end`,
		"locals":       `local a = {} for i = 1, 30000 do a[i] = i .. "" end function f() return a end`,
	} {
		t.Run(name, func(t *testing.T) {
			sb := New(Config{Name: "t", InstructionLimit: -1, Deadline: time.Minute, MemoryLimit: -1}, "t.lua", "", nil)
			if _, err := sb.Load(); err != nil {
				t.Fatal(err)
			}
			w := &walker{lay: lay}
			before := w.measure(sb.State())
			h0 := liveHeap()
			if err := sb.DoChunk("x.lua", src, 0, nil); err != nil {
				t.Fatal(err)
			}
			h1 := liveHeap()
			after := w.measure(sb.State())
			est, real := after-before, h1-h0
			t.Logf("%s: estimate %d, heap %d (%.2f), %d objects", name, est, real, float64(est)/float64(real), w.objs)
			if est < real*4/5 || est > real*3/2 {
				t.Errorf("estimate %d for a heap growth of %d", est, real)
			}
			runtime.KeepAlive(sb)
		})
	}
	_ = lua.TypeNil
}
