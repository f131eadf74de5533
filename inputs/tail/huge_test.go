package tail

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"
)

// R19: a 100 MiB line without a newline inside the cap, then 1,000 normal
// lines. The long line is skipped and counted once, the others delivered,
// tailing goes on, and memory stays bounded: nothing close to the line's
// size is ever buffered. Then an unterminated last line is held until its
// newline arrives.
func TestR19HugeLine(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 100 MiB")
	}
	dir, data := t.TempDir(), t.TempDir()
	p := filepath.Join(dir, "a.log")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("seq=0 before\n")
	chunk := bytes.Repeat([]byte("x"), 1<<20)
	for range 100 {
		f.Write(chunk)
	}
	f.WriteString("\n")
	var b []byte
	for i := 1; i <= 1000; i++ {
		b = fmt.Appendf(b, "seq=%d normal line\n", i)
	}
	f.Write(b)
	f.Close()

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak uint64
	stopSampling := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var ms runtime.MemStats
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(5 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
	})

	s := newSink(0, 0)
	h := startInput(t, data, testConfig(p), s)
	if !s.waitSeqs(0, 1001, 60*time.Second) {
		t.Fatal("lines after the long one not delivered")
	}
	close(stopSampling)
	wg.Wait()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	grown := int64(peak) - int64(before.HeapAlloc)
	t.Logf("R19: 100 MiB line skipped; allocated %.1f MiB in total, heap peak +%.1f MiB", float64(allocated)/(1<<20), float64(grown)/(1<<20))
	if got := h.tel.Dropped("oversize"); got != 1 {
		t.Errorf("oversize drops = %d, want 1", got)
	}
	// Reading 100 MiB through a 1 MiB buffer: a few MiB of allocation at
	// most. Buffering the line would allocate over 100 MiB.
	if allocated > 32<<20 {
		t.Errorf("allocated %d bytes while skipping the line", allocated)
	}
	if grown > 3<<20+32<<20 {
		t.Errorf("heap grew by %d bytes (limit 3 × max_line_bytes + 32 MiB)", grown)
	}

	appendFile(t, p, "seq=1001 tailing goes on\nseq=1002 unterminated")
	if !s.waitSeqs(1001, 1002, 10*time.Second) {
		t.Fatal("tailing stopped after the long line")
	}
	time.Sleep(300 * time.Millisecond)
	if n, _ := s.report([]int{1002}); len(n) != 1 {
		t.Fatal("an unterminated line was delivered before its newline")
	}
	appendFile(t, p, " line\n")
	if !s.waitSeqs(1002, 1003, 10*time.Second) {
		t.Fatal("the completed line was not delivered")
	}
	h.stop(true)
	missing, dups := s.report(seqs(1003))
	if len(missing)+len(dups) > 0 {
		t.Fatalf("missing %v, duplicates %v", head(missing), head(dups))
	}
}

// A long line still being written when tern stops is read again from its
// start after a restart (never from its middle), and counted once more.
func TestLongLineAcrossRestart(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	p := filepath.Join(dir, "a.log")
	writeFile(t, p, "seq=0 a\n"+string(bytes.Repeat([]byte("y"), 3000)))
	cfg := testConfig(p)
	cfg.MaxLineBytes = 1000
	s := newSink(0, 0)
	h := startInput(t, data, cfg, s)
	if !s.waitSeqs(0, 1, 10*time.Second) {
		t.Fatal("timeout")
	}
	waitFor(t, func() bool { return h.tel.Dropped("oversize") == 1 }, "oversize counted")
	h.stop(true)
	appendFile(t, p, "yyy\nseq=1 b\n")
	h = startInput(t, data, cfg, s)
	if !s.waitSeqs(0, 2, 10*time.Second) {
		t.Fatal("timeout")
	}
	h.stop(true)
	if bad := s.badLines; len(bad) > 0 {
		t.Fatalf("a fragment of the long line was delivered: %q", bad[0][:min(40, len(bad[0]))])
	}
	missing, dups := s.report(seqs(2))
	if len(missing)+len(dups) > 0 {
		t.Fatalf("missing %v, duplicates %v", missing, dups)
	}
}
