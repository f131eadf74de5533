package lua

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ternlog/tern/internal/sandbox"
	"github.com/ternlog/tern/internal/testutil/testscale"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// The two memory bombs, as filters with the default memory_limit
// (64 MiB) and max_failures (10): each is stopped by memory_limit, counted
// as a memory_limit failure and disabled (string.byte's allocations are
// refused before they happen, so that script fails its messages until
// max_failures; the growing global is found over its limit and disabled at
// once), and the memory it held is the collector's again; later messages
// take the failure policy.
func TestMemoryBombsAreDisabled(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		payload   int
		maxCalls  int
		mod       func(*Config)
	}{
		{"byte_tables", `
G = {}
function process_message()
  local s = read_message("Payload")
  for i = 1, 40 do G[#G+1] = {string.byte(s, 1, -1)} end
  return 0
end`, 990_000, 10, nil},
		{"global_growth", `
G = {}
function process_message()
  for i = 1, 100000 do G[#G+1] = "v" .. i end
  return 0
end`, 10, 20, func(c *Config) {
			// 100,000 concatenations a call: only memory may stop it here
			// (a 6.4 MiB limit under -race, which slows the loop tenfold).
			c.InstructionLimit = 0
			c.Deadline = config.Duration(10 * time.Second)
			c.MemoryLimit = config.Size(testscale.N(64<<20, 64<<20))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base := liveHeap()
			f, tel := newFilter(t, tc.src, tc.mod)
			m := testMessage()
			m.Payload = strings.Repeat("p", tc.payload)
			calls := 0
			for !f.fail.Disabled() {
				if calls++; calls > tc.maxCalls {
					t.Fatalf("not disabled after %d messages: %d failures", tc.maxCalls, f.fail.Total(""))
				}
				err := f.Process(context.Background(), m, &recorder{})
				if err != nil {
					t.Logf("message %d: %v", calls, err)
					if sandbox.KindOf(err) != sandbox.KindMemory {
						t.Fatalf("want a memory_limit failure, got %v", err)
					}
				}
			}
			if f.fail.Total(sandbox.KindMemory) < 1 || tel.Errored("lua_memory_limit") < 1 || tel.Count("lua_disabled") != 1 {
				t.Fatalf("counted %d memory failures, errors %v, disabled gauge %v", f.fail.Total(sandbox.KindMemory), tel.Errors, tel.Count("lua_disabled"))
			}
			if err := f.Process(context.Background(), m, &recorder{}); err != nil || tel.Dropped("filter_disabled") != 1 {
				t.Fatalf("a message to the disabled script: %v, drops %v", err, tel.Drops)
			}
			if held := liveHeap() - base; held > 8<<20 {
				t.Errorf("the disabled filter still holds %d MiB", held>>20)
			}
			runtime.KeepAlive(f)
		})
	}
}

// A script disabled for consecutive failures of any kind gives its State
// back too (it held 1.6 GB ten minutes after being disabled before).
func TestDisabledScriptIsReleased(t *testing.T) {
	base := liveHeap()
	f, _ := newFilter(t, `
G = {}
for i = 1, `+strconv.Itoa(testscale.N(300_000, 300_000))+` do G[i] = "kept " .. i end
function process_message() error("always") end`, func(c *Config) {
		c.MaxFailures = 3
		c.InstructionLimit = 0
		c.Deadline = config.Duration(10 * time.Second)
	})
	for range 3 {
		f.Process(context.Background(), testMessage(), &recorder{})
	}
	if !f.fail.Disabled() {
		t.Fatal("want disabled after 3 failures")
	}
	if held := liveHeap() - base; held > 4<<20 {
		t.Errorf("the disabled filter still holds %d MiB", held>>20)
	}
	runtime.KeepAlive(f)
}

// Preserved data saved under a larger memory_limit than the script has
// now does not fit: it is not restored, and the script runs from its top
// level alone.
func TestPreservedDataOverTheLimit(t *testing.T) {
	src := `
n = n or 0
function process_message() n = n + 1 _G["g" .. n] = string.rep("x", 100000) .. n return 0 end
function timer_event() inject_message{Type = "n", Fields = {n = n}} return 0 end`
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f.lua"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	mk := func(limit config.Size) *Filter {
		cfg := DefaultConfig()
		cfg.Filename = "f.lua"
		cfg.PreserveData = true
		cfg.MemoryLimit = limit
		cfg.InstructionLimit = 0
		cfg.Deadline = config.Duration(10 * time.Second)
		set := pipelinetest.Settings(t, "filters.p")
		set.ConfigDir, set.DataDir = dir, filepath.Join(dir, "data")
		f, err := New(set, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	f := mk(64 << 20)
	for range 40 { // 40 globals of 100 KB
		if err := f.Process(context.Background(), testMessage(), &recorder{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	f = mk(2 << 20)
	if err := f.Process(context.Background(), testMessage(), &recorder{}); err != nil {
		t.Fatalf("the script must run without the data it cannot hold: %v", err)
	}
	rec := &recorder{}
	if err := f.Tick(context.Background(), time.Now(), rec); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(rec.jsonl()), `"name":"n","type":"double","value":[1.0]`) {
		t.Fatalf("want fresh globals: %s", rec.jsonl())
	}
	_ = f.Close(context.Background())
}
