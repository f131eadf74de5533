package tail

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ternlog/tern/pipeline/config"
)

// The rotation scenarios of reliability.md §5.2 (R13–R15, R17) at CI scale:
// real files, a writer that stamps every line with a sequence number, and an
// oracle that counts what is missing or delivered twice. Acknowledgements
// come back out of order, late, from several goroutines.

func modes() []struct {
	name string
	poll bool
} {
	return []struct {
		name string
		poll bool
	}{{"notify", false}, {"poll", true}}
}

// writeAt writes lines at about rate lines/s in small bursts.
func writeAt(w *logWriter, lines, rate int) {
	const burst = 25
	pause := time.Duration(burst) * time.Second / time.Duration(rate)
	for done := 0; done < lines; done += burst {
		w.write(min(burst, lines-done))
		time.Sleep(pause)
	}
}

func finish(t *testing.T, s *sink, h *harness, w *logWriter) (missing, dups []int) {
	t.Helper()
	all := w.all()
	if !s.waitSeqs(0, len(all), 60*time.Second) {
		m, _ := s.report(all)
		t.Errorf("timeout: %d lines missing, first %v", len(m), m[:min(10, len(m))])
	}
	time.Sleep(300 * time.Millisecond) // room for late duplicates to show
	h.stop(true)
	s.stop()
	return s.report(all)
}

// R13: logrotate "create" — rename the file, create a new one — at 5k
// lines/s, 20 rotations, rotated files matched by the glob. The old file
// also receives a few lines after the rename (an application that reopens
// its log only after a signal).
func TestR13CreateRotation(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			dir, data := t.TempDir(), t.TempDir()
			w := newLogWriter(t, dir, "app.log", 60)
			s := newSink(3, 2*time.Millisecond)
			cfg := testConfig(filepath.Join(dir, "app.log*"))
			cfg.Poll = m.poll
			h := startInput(t, data, cfg, s)
			for range 20 {
				writeAt(w, 250, 5000)
				w.rotateCreateLate(5)
			}
			writeAt(w, 250, 5000)
			missing, dups := finish(t, s, h, w)
			t.Logf("R13 %s: %d lines, 20 rotations: missing %d, duplicates %d", m.name, w.seq, len(missing), len(dups))
			if len(missing)+len(dups) > 0 {
				t.Fatalf("missing %v, duplicates %v", head(missing), head(dups))
			}
		})
	}
}

// R14: copytruncate — copy the file, then truncate it in place — at 5k
// lines/s, 20 rotations. Lines the writer adds between the copy and the
// truncation are the documented loss window: the oracle excludes them and
// reports how many were lost. Everything in the copies and after each
// truncation is delivered exactly once.
func TestR14CopyTruncate(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			dir, data := t.TempDir(), t.TempDir()
			w := newLogWriter(t, dir, "app.log", 60)
			s := newSink(3, 2*time.Millisecond)
			cfg := testConfig(filepath.Join(dir, "app.log*"))
			cfg.Poll = m.poll
			h := startInput(t, data, cfg, s)
			window := map[int]bool{}
			for range 20 {
				writeAt(w, 250, 5000)
				for _, q := range w.copyTruncate(3) {
					window[q] = true
				}
			}
			writeAt(w, 250, 5000)
			all := w.all()
			var must []int
			for _, q := range all {
				if !window[q] {
					must = append(must, q)
				}
			}
			if !s.waitSeqs(all[len(all)-1], len(all), 60*time.Second) {
				t.Error("timeout")
			}
			deadline := time.Now().Add(30 * time.Second)
			for {
				if missing, _ := s.report(must); len(missing) == 0 || time.Now().After(deadline) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			time.Sleep(300 * time.Millisecond)
			h.stop(true)
			s.stop()
			missing, dups := s.report(must)
			lost, wdups := s.report(sortedKeys(window))
			t.Logf("R14 %s: %d lines, 20 rotations: missing %d, duplicates %d; copy→truncate window: %d lines, %d lost",
				m.name, len(all), len(missing), len(dups)+len(wdups), len(window), len(lost))
			if len(missing)+len(dups)+len(wdups) > 0 {
				t.Fatalf("missing %v, duplicates %v %v", head(missing), head(dups), head(wdups))
			}
		})
	}
}

// R15: truncate and rewrite in place (an application that restarts and
// truncates its log): 10 lines, truncate, 100 lines, 50 times, with late
// acknowledgements so no stale position may be applied. Every fifth cycle
// the reader is blocked (backpressure) while the file is truncated and
// rewritten with 300 lines, longer than the reader's position, so only the
// anchor (not the file size) shows the rewrite.
func TestR15TruncateRewrite(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	w := newLogWriter(t, dir, "app.log", 40)
	s := newSink(3, 3*time.Millisecond)
	cfg := testConfig(filepath.Join(dir, "app.log"))
	h := startInput(t, data, cfg, s)
	for cycle := range 50 {
		lagging := cycle%5 == 4
		if lagging {
			s.setHold(true)
		}
		w.write(10)
		if lagging {
			time.Sleep(30 * time.Millisecond) // the reader took the lines, then blocked
		} else if !s.waitSeqs(0, w.seq, 10*time.Second) {
			t.Fatalf("cycle %d: timeout", cycle)
		}
		w.truncate()
		if lagging {
			w.write(300)
			s.setHold(false)
		} else {
			w.write(100)
		}
		if !s.waitSeqs(0, w.seq, 10*time.Second) {
			m, _ := s.report(w.all())
			t.Fatalf("cycle %d: missing %v", cycle, head(m))
		}
	}
	missing, dups := finish(t, s, h, w)
	t.Logf("R15: %d lines, 50 truncations (10 while the reader was blocked): missing %d, duplicates %d", w.seq, len(missing), len(dups))
	if len(missing)+len(dups) > 0 {
		t.Fatalf("missing %v, duplicates %v", head(missing), head(dups))
	}
	if bad := s.badLines; len(bad) > 0 {
		t.Fatalf("%d malformed lines (read from a stale offset), e.g. %q", len(bad), bad[0])
	}
}

// R15 across a restart: the file is truncated and rewritten while tern is
// down; the saved position must not be applied to the new content.
func TestR15TruncateWhileDown(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	w := newLogWriter(t, dir, "app.log", 40)
	s := newSink(2, time.Millisecond)
	cfg := testConfig(filepath.Join(dir, "app.log"))
	for range 10 {
		h := startInput(t, data, cfg, s)
		w.write(10)
		if !s.waitSeqs(0, w.seq, 10*time.Second) {
			t.Fatal("timeout")
		}
		s.waitAcked(t) // exactly once needs the position saved before the stop
		h.stop(true)
		w.truncate()
		w.write(100)
		h = startInput(t, data, cfg, s)
		if !s.waitSeqs(0, w.seq, 10*time.Second) {
			m, _ := s.report(w.all())
			t.Fatalf("missing %v", head(m))
		}
		s.waitAcked(t)
		h.stop(true)
	}
	s.stop()
	requireExactlyOnce(t, s, w.all())
}

// R14 across a restart, the original still empty: lines written while
// tern is down, then copytruncate, then tern starts before the application
// writes again (and the empty original is rotated away by create). The copy
// continues the original's position; an empty file at the original's inode
// shows the original was truncated, so the copy must not wait for it. Found
// by R18 (TestR18Model): the copy waited for ever.
func TestCopyTruncateWhileDownEmptyOriginal(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	w := newLogWriter(t, dir, "app.log", 40)
	defer w.close()
	s := newSink(0, 0)
	cfg := testConfig(filepath.Join(dir, "app.log*"))
	h := startInput(t, data, cfg, s)
	w.write(10)
	if !s.waitSeqs(0, w.seq, 10*time.Second) {
		t.Fatal("timeout")
	}
	h.stop(true)
	w.write(10)
	w.copyTruncate(0)
	w.rotateCreate()
	h = startInput(t, data, cfg, s)
	if !s.waitSeqs(0, w.seq, 10*time.Second) {
		m, _ := s.report(w.all())
		t.Errorf("missing %v", head(m))
	}
	h.stop(true)
	requireExactlyOnce(t, s, w.all())
}

// R17: inode reuse. A file is deleted and a new one created that (usually)
// gets the same inode, first shorter, then longer than the old position;
// both while tern runs and while it is down. The new file is read from
// offset 0 every time.
func TestR17InodeReuse(t *testing.T) {
	for _, down := range []bool{false, true} {
		t.Run(map[bool]string{false: "live", true: "restart"}[down], func(t *testing.T) {
			dir, data := t.TempDir(), t.TempDir()
			p := filepath.Join(dir, "a.log")
			s := newSink(2, time.Millisecond)
			cfg := testConfig(filepath.Join(dir, "*.log"))
			seq := 0
			write := func(n int) {
				var b []byte
				for range n {
					b = fmt.Appendf(b, "seq=%09d %s\n", seq, "abcdefghijklmnopqrstuvwxyz")
					seq++
				}
				writeFile(t, p, string(b))
			}
			write(100)
			h := startInput(t, data, cfg, s)
			if !s.waitSeqs(0, seq, 10*time.Second) {
				t.Fatal("timeout")
			}
			reused := 0
			for _, n := range []int{10, 300, 5} {
				if down {
					h.stop(true)
				}
				old := inode(t, p)
				os.Remove(p)
				write(n)
				if inode(t, p) == old {
					reused++
				}
				if down {
					h = startInput(t, data, cfg, s)
				}
				if !s.waitSeqs(0, seq, 10*time.Second) {
					m, _ := s.report(seqs(seq))
					t.Fatalf("after recreating with %d lines: missing %v", n, head(m))
				}
			}
			time.Sleep(200 * time.Millisecond)
			h.stop(true)
			s.stop()
			missing, dups := s.report(seqs(seq))
			t.Logf("R17 %s: inode reused %d of 3 times: missing %d, duplicates %d", map[bool]string{false: "live", true: "restart"}[down], reused, len(missing), len(dups))
			if len(missing)+len(dups) > 0 {
				t.Fatalf("missing %v, duplicates %v", head(missing), head(dups))
			}
		})
	}
}

// A live file holding only the first bytes of a line, the same bytes
// another file starts with (a common prefix: a timestamp, a banner written
// before the program blocks): the longer file cannot be a copy of the
// shorter one, and nothing of the short one was handed on, so the longer
// one is read at once, not held back until the live file's line is
// finished. Found by R18 (TestR18Model), where the rotated file waited for
// ever.
func TestLongerFileIsNoCopyOfAShortLiveFile(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	var b strings.Builder
	for q := range 5 {
		fmt.Fprintf(&b, "seq=%d old file\n", q)
	}
	writeFile(t, filepath.Join(dir, "app.log.1"), b.String())
	writeFile(t, filepath.Join(dir, "app.log"), "seq")
	s := newSink(0, 0)
	h := startInput(t, data, testConfig(filepath.Join(dir, "app.log*")), s)
	defer h.stop(true)
	if !s.waitSeqs(0, 5, 5*time.Second) {
		m, _ := s.report(seqs(5))
		t.Fatalf("the rotated file waited for the live one: missing %v", m)
	}
	appendFile(t, filepath.Join(dir, "app.log"), "=5 new file\n")
	if !s.waitSeqs(5, 6, 5*time.Second) {
		t.Fatal("the live file's line was not delivered")
	}
	if missing, dups := s.report(seqs(6)); len(missing)+len(dups) > 0 {
		t.Fatalf("missing %v, duplicates %v", missing, dups)
	}
}

// After a create rotation, the new file is empty when the input rescans,
// so it is not opened; the first write to it must be noticed at once, not
// at the next scan_interval, although the rotated file, still open, was
// opened under the same name. Found by R18 (TestR18Model), where such
// lines waited for the periodic scan.
func TestWriteToNewFileAfterRotationNoticed(t *testing.T) {
	for _, m := range modes() {
		t.Run(m.name, func(t *testing.T) {
			dir, data := t.TempDir(), t.TempDir()
			w := newLogWriter(t, dir, "app.log", 20)
			defer w.close()
			s := newSink(0, 0)
			cfg := testConfig(filepath.Join(dir, "app.log*"))
			cfg.Poll = m.poll
			cfg.PollInterval = config.Duration(100 * time.Millisecond)
			cfg.ScanInterval = config.Duration(time.Minute)
			h := startInput(t, data, cfg, s)
			defer h.stop(true)
			w.write(10)
			if !s.waitSeqs(0, w.seq, 5*time.Second) {
				t.Fatal("timeout")
			}
			w.rotateCreate()
			waitFor(t, func() bool {
				for _, e := range h.in.snapshot() {
					if e.path == w.path()+".1" {
						return true
					}
				}
				return false
			}, "the scan after the rotation")
			w.write(1)
			if !s.waitSeqs(0, w.seq, 5*time.Second) {
				t.Fatal("the line written to the new file was not read within 5s")
			}
		})
	}
}

// R17: a rename over an existing name, and a new file that starts with the
// same bytes as the old one (a fixed banner longer than the fingerprint)
// but differs after it: the anchor tells them apart.
func TestR17RenameOverAndSamePrefix(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	banner := ""
	for i := range 30 {
		banner += fmt.Sprintf("# banner line %02d of a program that prints a long header\n", i)
	}
	writeFile(t, a, banner+"seq=0 a\nseq=1 a\n")
	writeFile(t, b, "seq=2 b\nseq=3 b\n")
	s := newSink(2, time.Millisecond)
	cfg := testConfig(filepath.Join(dir, "*.log"))
	h := startInput(t, data, cfg, s)
	if !s.waitSeqs(0, 4, 10*time.Second) {
		t.Fatal("timeout")
	}
	if err := os.Rename(b, a); err != nil {
		t.Fatal(err)
	}
	appendFile(t, a, "seq=4 b after rename\n")
	if !s.waitSeqs(0, 5, 10*time.Second) {
		t.Fatal("timeout after rename")
	}
	h.stop(true)
	// While down: a.log replaced by a file with the same banner and more,
	// different lines: longer than the old position, same fingerprint.
	os.Remove(a)
	writeFile(t, a, banner+"seq=5 new\nseq=6 new\nseq=7 new\n")
	h = startInput(t, data, cfg, s)
	if !s.waitSeqs(0, 8, 10*time.Second) {
		m, _ := s.report(seqs(8))
		t.Fatalf("missing %v", m)
	}
	time.Sleep(200 * time.Millisecond)
	h.stop(true)
	s.stop()
	missing, dups := s.report(seqs(8))
	if len(missing)+len(dups) > 0 {
		t.Fatalf("missing %v, duplicates %v", missing, dups)
	}
}

// ---- writer operations and helpers

// rotateCreateLate renames the file away, writes late more lines to the
// renamed file, then starts a new one.
func (w *logWriter) rotateCreateLate(late int) {
	w.mu.Lock()
	w.rotated++
	if err := os.Rename(w.path(), fmt.Sprintf("%s.%d", w.path(), w.rotated)); err != nil {
		w.t.Error(err)
	}
	w.mu.Unlock()
	w.write(late)
	w.mu.Lock()
	w.f.Close()
	w.open()
	w.mu.Unlock()
}

// copyTruncate copies the file to name.<n> in chunks, writes window lines
// (those logrotate's copytruncate loses by design), then truncates. It
// returns the seqs of the window lines.
func (w *logWriter) copyTruncate(window int) []int {
	w.mu.Lock()
	w.rotated++
	src, err := os.Open(w.path())
	if err != nil {
		w.t.Fatal(err)
	}
	dst, err := os.Create(fmt.Sprintf("%s.%d", w.path(), w.rotated))
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := io.CopyBuffer(dst, src, make([]byte, 8<<10)); err != nil {
		w.t.Error(err)
	}
	dst.Close()
	src.Close()
	w.mu.Unlock()
	lost := w.write(window)
	w.truncate()
	return lost
}

func inode(t testing.TB, p string) uint64 {
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

func seqs(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func head(s []int) []int { return s[:min(10, len(s))] }

func sortedKeys(m map[int]bool) []int {
	var out []int
	for k := range m {
		out = append(out, k)
	}
	return out
}

// A rotated file is read to its end before its successor: with a backlog
// larger than one round's budget, no line of the new file comes before the
// last line of the old one.
func TestRotatedFileFinishedFirst(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	w := newLogWriter(t, dir, "app.log", 60)
	defer w.close()
	w.write(40000) // ~3.6 MiB: several rounds
	s := newSink(0, 0)
	s.setHold(true)
	h := startInput(t, data, testConfig(filepath.Join(dir, "app.log*")), s)
	waitFor(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.emitCalls > 0
	}, "the first batch")
	w.rotateCreate()
	newSeqs := w.write(100)
	time.Sleep(100 * time.Millisecond) // the new file's events arrive
	s.setHold(false)
	if !s.waitSeqs(0, w.seq, 30*time.Second) {
		t.Fatal("timeout")
	}
	h.stop(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	lastOld, firstNew := -1, len(s.recs)
	for i, r := range s.recs {
		if r.seq < newSeqs[0] {
			lastOld = i
		} else if i < firstNew {
			firstNew = i
		}
	}
	if firstNew < lastOld {
		t.Fatalf("a line of the new file (record %d) came before the end of the rotated one (record %d)", firstNew, lastOld)
	}
}
