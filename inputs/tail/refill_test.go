package tail

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ternlog/tern/pipeline/pipelinetest"
)

// A file truncated and refilled to exactly the size already read shows the
// reader neither new bytes at its position nor a size below it. With
// fixed-length lines and as many lines per rotation, that is R14's last
// round when the reader sleeps through copy, truncate and refill (a busy
// machine): the new lines were never read, and the copy waited for ever on
// an original that still looked open and unchanged. Here the reader is held
// in Emit, having read the whole file, while the file is rotated, so the
// race is certain.
func TestSameSizeRefill(t *testing.T) {
	for _, m := range modes() {
		for _, copyFirst := range []bool{false, true} {
			name := m.name + map[bool]string{false: "/rewrite", true: "/copytruncate"}[copyFirst]
			t.Run(name, func(t *testing.T) {
				dir, data := t.TempDir(), t.TempDir()
				w := newLogWriter(t, dir, "app.log", 60)
				defer w.close()
				w.write(50)
				s := newSink(0, 0)
				s.setHold(true)
				cfg := testConfig(filepath.Join(dir, "app.log*"))
				cfg.Poll = m.poll
				h := startInput(t, data, cfg, s)
				waitFor(t, func() bool {
					s.mu.Lock()
					defer s.mu.Unlock()
					return s.emitCalls > 0
				}, "the first batch")
				// The reader has read all 50 lines and waits in Emit.
				before := fileSize(t, w.path())
				if copyFirst {
					w.copyTruncate(0)
				} else {
					w.truncate()
				}
				w.write(50)
				if after := fileSize(t, w.path()); after != before {
					t.Fatalf("refilled to %d bytes, want %d", after, before)
				}
				s.setHold(false)
				if !s.waitSeqs(0, w.seq, 10*time.Second) {
					m, _ := s.report(w.all())
					t.Errorf("the refilled file was not read: missing %v", head(m))
				}
				time.Sleep(200 * time.Millisecond) // room for late duplicates
				h.stop(true)
				s.stop()
				missing, dups := s.report(w.all())
				if len(missing)+len(dups) > 0 {
					t.Fatalf("missing %v, duplicates %v", head(missing), head(dups))
				}
			})
		}
	}
}

// The same rewrite landing after the reader's last look at a file and
// before the file is closed (close_inactive): the closed file must not be
// remembered as unchanged, or no scan ever opens it again. The loop is
// driven by hand so the rewrite falls exactly there.
func TestSameSizeRewriteBeforeClose(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	w := newLogWriter(t, dir, "app.log", 60)
	defer w.close()
	w.write(50)
	// An old modification time, so the rewrite's cannot fall in the same
	// tick of the file system's clock.
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(w.path(), old, old); err != nil {
		t.Fatal(err)
	}
	in := handDriven(t, data, testConfig(filepath.Join(dir, "app.log")))
	s := newSink(0, 0)
	ctx := context.Background()
	if n := in.scan(time.Now(), true); n != 1 {
		t.Fatalf("scan opened %d files", n)
	}
	in.pumpAll(ctx, s)
	in.pumpAll(ctx, s) // at the end: nothing new
	if len(in.hs) != 1 || !in.hs[0].atEOF || !s.waitSeqs(0, 50, time.Second) {
		t.Fatal("the first file was not read to its end")
	}
	before := fileSize(t, w.path())
	w.truncate()
	w.write(50)
	if after := fileSize(t, w.path()); after != before {
		t.Fatalf("refilled to %d bytes, want %d", after, before)
	}
	in.closeHarvester(in.hs[0]) // idle for close_inactive
	for range 3 {
		in.scan(time.Now(), false)
		in.pumpAll(ctx, s)
	}
	missing, dups := s.report(w.all())
	if len(missing)+len(dups) > 0 {
		t.Fatalf("missing %v, duplicates %v", head(missing), head(dups))
	}
}

// handDriven returns an input whose loop the test runs by hand.
func handDriven(t *testing.T, data string, cfg Config) *Input {
	t.Helper()
	set := pipelinetest.Settings(t, "inputs.tail")
	set.DataDir, set.ConfigDir = data, "/"
	in, err := New(set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := in.loadState(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, h := range append([]*harvester(nil), in.hs...) {
			in.closeHarvester(h)
		}
	})
	return in
}

func fileSize(t testing.TB, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}
