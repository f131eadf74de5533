package tail

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fsnotify/fsnotify"

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
	requireExactlyOnce(t, s, w.all())
}

// A copytruncate between the reader's read of a file's first bytes and its
// second look at them (to extend the fingerprint of a file read from its
// start) must not give the file its successor's fingerprint: the copy
// would then be taken for a new file and read again. Driven by hand, so the
// rotation falls exactly between the two.
func TestFingerprintOfTheBytesRead(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	w := newLogWriter(t, dir, "app.log", 60)
	defer w.close()
	w.write(50)
	in := handDriven(t, data, testConfig(filepath.Join(dir, "app.log*")))
	s := newSink(0, 0)
	ctx := context.Background()
	in.scan(time.Now(), true)
	in.pumpAll(ctx, s)
	if !s.waitSeqs(0, 50, time.Second) {
		t.Fatal("the first file was not read")
	}
	// Rotated, and refilled with fewer lines: the reader starts over.
	w.copyTruncate(0)
	w.write(30)
	h := in.hs[0]
	if _, err := h.read(); !errors.Is(err, errRewritten) {
		t.Fatalf("read after the truncation: %v", err)
	}
	in.restart(h)
	if n, err := h.read(); n == 0 || err != nil {
		t.Fatalf("read from the start: %d, %v", n, err)
	}
	// Rotated again before the reader looks at the first bytes.
	w.copyTruncate(0)
	w.write(50)
	if err := h.growFingerprint(); err != nil {
		in.readFailed(h, err)
	}
	for range 4 {
		in.scan(time.Now(), false)
		in.pumpAll(ctx, s)
	}
	requireExactlyOnce(t, s, w.all())
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

// A file rotated between the scan that identifies it by its first bytes and
// the reader's first read from offset 0: the lines handed on must be those
// of the file identified. Otherwise the entry carries one content's
// fingerprint and another's position, and either the copy of the content
// identified waits for ever for an original that looks open (its lines are
// lost), or the copy of the content read matches nothing and is read again
// (duplicates). Found by R18 (TestR18Model); driven by hand so the rotation
// falls exactly between the two.
func TestFirstReadIsTheFingerprintedBytes(t *testing.T) {
	for _, copyFirst := range []bool{true, false} {
		name := map[bool]string{true: "copy_of_identified", false: "copy_of_read"}[copyFirst]
		t.Run(name, func(t *testing.T) {
			dir, data := t.TempDir(), t.TempDir()
			w := newLogWriter(t, dir, "app.log", 60)
			defer w.close()
			w.write(50)
			in := handDriven(t, data, testConfig(filepath.Join(dir, "app.log*")))
			s := newSink(0, 0)
			ctx := context.Background()
			if n := in.scan(time.Now(), true); n != 1 {
				t.Fatalf("scan opened %d files", n)
			}
			var lost []int
			if copyFirst {
				// The content identified survives in the copy only.
				w.copyTruncate(0)
				w.write(30)
			} else {
				// The content identified is gone; the one read instead
				// is then rotated by copytruncate.
				lost = w.all()
				w.truncate()
				w.write(30)
				in.pumpAll(ctx, s)
				w.copyTruncate(0)
				w.write(10)
			}
			for range 4 {
				in.scan(time.Now(), false)
				in.pumpAll(ctx, s)
			}
			missing, dups := s.report(w.all()[len(lost):])
			if len(missing)+len(dups) > 0 {
				t.Fatalf("missing %v, duplicates %v", head(missing), head(dups))
			}
		})
	}
}

// A copy made while the file it copies is open but not read since it was
// truncated: the file's entry has no fingerprint yet (it starts over at
// offset 0 with nothing read), so the copy matches no entry. It must still
// wait as a copy of an open file, or the copy and the original both hand
// on the same lines. Found by R18 (TestR18Model); driven by hand so the
// scan falls between the copy and the reader's first read.
func TestCopyOfAFileNotReadSinceItsTruncation(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	w := newLogWriter(t, dir, "app.log", 60)
	defer w.close()
	w.write(20)
	in := handDriven(t, data, testConfig(filepath.Join(dir, "app.log*")))
	s := newSink(0, 0)
	ctx := context.Background()
	in.scan(time.Now(), true)
	in.pumpAll(ctx, s)
	w.truncate()
	in.pumpAll(ctx, s) // the reader sees the truncation and starts over
	if len(in.hs) != 1 || in.hs[0].e.fpLen != 0 {
		t.Fatal("the reader did not start over")
	}
	w.write(50) // longer than a fingerprint
	b, err := os.ReadFile(w.path())
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, w.path()+".1", string(b)) // copytruncate's copy...
	in.scan(time.Now(), false)
	in.pumpAll(ctx, s)
	w.truncate() // ...and its truncation
	w.write(5)
	for range 4 {
		in.scan(time.Now(), false)
		in.pumpAll(ctx, s)
	}
	requireExactlyOnce(t, s, w.all())
}

// The race behind TestWriteToNewFileAfterRotationNoticed: the scan after a
// create rotation finds the new file still empty, and the first write to
// it is taken by the waker before the scan has published that the name no
// longer names the open file, so it only wakes the loop. The next round
// must rescan anyway. Found by R18 (TestR18Model); the event is handed to
// the waker by hand, as if it had come before the scan's publication.
func TestFirstWriteToNewFileDuringScanRescanned(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	w := newLogWriter(t, dir, "app.log", 20)
	defer w.close()
	w.write(5)
	in := handDriven(t, data, testConfig(filepath.Join(dir, "app.log*")))
	wk := &waker{t: in, wake: make(chan struct{}, 1), dirs: map[string]bool{}}
	s := newSink(0, 0)
	in.scan(time.Now(), true)
	in.pumpAll(context.Background(), s)
	before := in.held.Load() // app.log is the open file's name
	w.rotateCreate()
	in.needScan = false
	in.scan(time.Now(), false) // app.log is a new, empty file
	w.write(1)
	after := in.held.Load()
	in.held.Store(before)
	wk.event(fsnotify.Event{Name: w.path(), Op: fsnotify.Write})
	in.held.Store(after)
	if !wk.takeRescan() && !in.needScan {
		t.Fatal("the first write to the new file does not make the loop rescan")
	}
}

// A copy that waited for its original, in the same scan that then finds
// the original rewritten in place (a new file at its inode), must be looked
// at again at the next round, not at the next scan_interval. The order of
// the two in a scan depends on inode hints, so the copy's inode is made to
// hint at some other entry, as a reused inode does. Found by R18
// (TestR18Model).
func TestCopyReconsideredWhenItsOriginalTurnsOutRewritten(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	w := newLogWriter(t, dir, "app.log", 20)
	defer w.close()
	cfg := testConfig(filepath.Join(dir, "app.log*"))
	s := newSink(0, 0)
	h := startInput(t, data, cfg, s)
	w.write(10)
	if !s.waitSeqs(0, w.seq, 10*time.Second) {
		t.Fatal("timeout")
	}
	h.stop(true)
	// While tern is down: more lines, copytruncate, new lines in the
	// original, which is then rotated by create to a name after the copy's.
	w.write(10)
	w.copyTruncate(0) // app.log.1
	w.write(5)
	w.rotateCreate() // app.log.2 is the original, rewritten
	in := handDriven(t, data, cfg)
	gone := &entry{fp: sum16([]byte("x")), fpLen: 1, path: "gone", size: -1,
		ino: inode(t, w.path()+".1"), dev: in.entries[0].dev, nextAnchor: emptyAnchor}
	gone.ackedAt(0, emptyAnchor)
	in.entries = append(in.entries, gone)
	ctx := context.Background()
	in.needScan = false
	in.scan(time.Now(), true)
	in.pumpAll(ctx, s)
	for round := 0; in.needScan && round < 3; round++ {
		in.needScan = false
		in.scan(time.Now(), false)
		in.pumpAll(ctx, s)
	}
	requireExactlyOnce(t, s, w.all())
}

// The copy of TestCopyOfAFileNotReadSinceItsTruncation waits for the
// reader to read the file it copies. If that file is truncated and
// rewritten again before the reader gets to it, the reader reads other
// content from offset 0 (nothing shows a truncation at position 0) and the
// copy is a file of its own: its wait must end at that read, not at the
// next scan_interval. Found by R18 (TestR18Model).
func TestCopyWaitEndsAtTheFirstRead(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	w := newLogWriter(t, dir, "app.log", 20)
	defer w.close()
	w.write(5)
	in := handDriven(t, data, testConfig(filepath.Join(dir, "app.log*")))
	s := newSink(0, 0)
	ctx := context.Background()
	in.scan(time.Now(), true)
	in.pumpAll(ctx, s)
	w.truncate()
	in.pumpAll(ctx, s) // the reader starts over: no fingerprint
	w.write(1)
	b, err := os.ReadFile(w.path())
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, w.path()+".1", string(b))
	in.needScan = false
	in.scan(time.Now(), false) // the copy waits for the reader
	w.truncate()
	w.write(4)
	in.pumpAll(ctx, s) // the reader reads the new content from 0
	for round := 0; in.needScan && round < 3; round++ {
		in.needScan = false
		in.scan(time.Now(), false)
		in.pumpAll(ctx, s)
	}
	requireExactlyOnce(t, s, w.all())
}

// A file truncated and rewritten between two reads, the new content longer
// than the position and with the same 64 bytes just before it (lines of one
// length ending alike: padding, or JSON lines whose last fields are the
// same, as an application's first message after a restart): the anchor
// alone cannot tell, the file's first bytes do. The reader must start
// over, not resume at the old position past the new first line. Found by
// R18 (TestR18Model).
func TestRewriteWithTheSameAnchor(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	w := newLogWriter(t, dir, "app.log", 80)
	defer w.close()
	w.write(20) // longer than a fingerprint
	in := handDriven(t, data, testConfig(filepath.Join(dir, "app.log")))
	s := newSink(0, 0)
	ctx := context.Background()
	in.scan(time.Now(), true)
	in.pumpAll(ctx, s)
	w.truncate()
	w.write(30) // lines of the same length and tail
	for range 3 {
		in.scan(time.Now(), false)
		in.pumpAll(ctx, s)
	}
	missing, dups := s.report(w.all())
	if len(missing)+len(dups)+len(s.badLines) > 0 {
		t.Fatalf("missing %v, duplicates %v, malformed %q", head(missing), head(dups), s.badLines)
	}
}
