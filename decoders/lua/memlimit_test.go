package lua

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/ternlog/tern/internal/sandbox"
	"github.com/ternlog/tern/pipeline"
)

func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// A decoder that keeps every record's bytes as numbers in a global is
// stopped by memory_limit, disabled, and what it held is freed; later
// records take the failure policy (deadletter: the error comes back).
func TestMemoryBombDecoderIsDisabled(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bomb.lua")
	if err := os.WriteFile(path, []byte(`
G = {}
function process_message()
  G[#G+1] = {string.byte(read_message("Payload"), 1, -1)}
  return 0
end`), 0o644); err != nil {
		t.Fatal(err)
	}
	base := liveHeap()
	d := newDecoder(t, path, func(c *Config) { c.MemoryLimit = 16 << 20 })
	rec := pipeline.Record{Data: []byte(strings.Repeat("r", 100_000))}
	n := 0
	for !d.Failures().Disabled() {
		if n++; n > 100 {
			t.Fatal("not disabled after 100 records")
		}
		err := d.Decode(rec, pipeline.NewBatch())
		if err != nil && sandbox.KindOf(err) != sandbox.KindMemory {
			t.Fatalf("record %d: %v", n, err)
		}
	}
	t.Logf("disabled at record %d: %d memory failures", n, d.Failures().Total(sandbox.KindMemory))
	if d.Failures().Total(sandbox.KindMemory) < 1 {
		t.Fatal("the memory failure is not counted")
	}
	if err := d.Decode(rec, pipeline.NewBatch()); err == nil {
		t.Fatal("a record to the disabled script takes the deadletter policy")
	}
	if held := liveHeap() - base; held > 4<<20 {
		t.Errorf("the disabled decoder still holds %d MiB", held>>20)
	}
	runtime.KeepAlive(d)
}
