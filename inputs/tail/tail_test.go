package tail

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSample(t *testing.T) { pipelinetest.CheckSample(t, "inputs", Factory()) }

func TestValidate(t *testing.T) {
	c := DefaultConfig()
	c.ReadFrom = "middle"
	c.Paths = []string{"[bad"}
	c.MaxLineBytes = 0
	err := c.Validate()
	for _, want := range []string{"paths: ", "read_from: ", "max_line_bytes: "} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want an error about %q", err, want)
		}
	}
	if err := (Config{}).Validate(); err == nil || !strings.Contains(err.Error(), "paths: required") {
		t.Errorf("empty config: %v", err)
	}
}

// A pattern that selects no regular file is a warning (tern check and run
// print it), relative patterns start at the config's directory, and files
// the exclusions remove do not count.
func TestWarningsForGlobsMatchingNothing(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "logs", "sub.log"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"logs/a.log", "logs/a.log.bak"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := DefaultConfig()
	c.Paths = []string{"logs/*.log", "logs/*.txt", filepath.Join(dir, "logs", "*.bak"), "logs/sub*"}
	c.Exclude = []string{"*.bak"}
	var _ pipeline.Warner = c
	got := c.Warnings(dir)
	want := []string{
		fmt.Sprintf("paths: no file matches %q yet", filepath.Join(dir, "logs/*.txt")),
		fmt.Sprintf("paths: no file matches %q yet", filepath.Join(dir, "logs/*.bak")),
		fmt.Sprintf("paths: no file matches %q yet", filepath.Join(dir, "logs/sub*")), // a directory
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// New must do no I/O: a config pointing at nothing builds fine.
func TestNewDoesNoIO(t *testing.T) {
	set := pipelinetest.Settings(t, "inputs.tail")
	set.DataDir = filepath.Join(t.TempDir(), "does", "not", "exist")
	c := DefaultConfig()
	c.Paths = []string{"logs/*.log"}
	in, err := New(set, c)
	if err != nil {
		t.Fatal(err)
	}
	if in.patterns[0] != filepath.Join(set.ConfigDir, "logs/*.log") {
		t.Errorf("pattern not resolved against the config dir: %q", in.patterns[0])
	}
	if err := in.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(set.DataDir); !os.IsNotExist(err) {
		t.Errorf("New or Close touched the data dir: %v", err)
	}
}

func TestFollowAppendsAndHoldsPartialLine(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	p := filepath.Join(dir, "a.log")
	if err := os.WriteFile(p, []byte("seq=0 first\nseq=1 second\r\nseq=2 par"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newSink(0, 0)
	cfg := testConfig(filepath.Join(dir, "*.log"))
	cfg.PathField, cfg.OffsetField = "file", "offset"
	h := startInput(t, data, cfg, s)
	if !s.waitSeqs(0, 2, 10*time.Second) {
		t.Fatal("first lines not delivered")
	}
	time.Sleep(100 * time.Millisecond)
	if n := s.totalDelivered(); n != 2 {
		t.Fatalf("the unterminated line was delivered early: %d records", n)
	}
	appendFile(t, p, "tial\nseq=3 more\n")
	if !s.waitSeqs(0, 4, 10*time.Second) {
		t.Fatal("appended lines not delivered")
	}
	h.stop(true)
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.recs) != 4 {
		t.Fatalf("got %d records", len(s.recs))
	}
	r := s.recs[2]
	if r.source != p {
		t.Errorf("Source = %q, want %q", r.source, p)
	}
	if len(r.fields) != 2 || r.fields[0].Name != "file" || r.fields[0].Value(0).Str() != p ||
		r.fields[1].Name != "offset" || r.fields[1].Value(0).Int() != int64(len("seq=0 first\nseq=1 second\r\n")) {
		t.Errorf("fields = %+v", r.fields)
	}
}

func TestCRLFStripped(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	p := filepath.Join(dir, "a.log")
	writeFile(t, p, "seq=0 a\r\nseq=1 b\n")
	e := &pipelinetest.Emitter{}
	h := startInput(t, data, testConfig(p), e)
	if !e.WaitFor(2, 10*time.Second) {
		t.Fatal("timeout")
	}
	h.stop(true)
	if got := e.Lines(); got[0] != "seq=0 a" || got[1] != "seq=1 b" {
		t.Errorf("lines = %q", got)
	}
}

// A restart after a clean stop delivers nothing twice and misses nothing;
// the checkpoint is written on Close.
func TestRestartResumes(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	w := newLogWriter(t, dir, "app.log", 20)
	defer w.close()
	w.write(100)
	s := newSink(2, time.Millisecond)
	cfg := testConfig(filepath.Join(dir, "*.log"))
	h := startInput(t, data, cfg, s)
	if !s.waitSeqs(0, 100, 10*time.Second) {
		t.Fatal("timeout")
	}
	h.stop(true)
	w.write(50)
	h = startInput(t, data, cfg, s)
	if !s.waitSeqs(0, 150, 10*time.Second) {
		t.Fatal("timeout after restart")
	}
	h.stop(true)
	s.stop()
	missing, dups := s.report(w.all())
	if len(missing)+len(dups) > 0 {
		t.Fatalf("missing %v, duplicates %v", missing, dups)
	}
}

func TestReadFromEnd(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	p := filepath.Join(dir, "a.log")
	writeFile(t, p, "seq=0 old\nseq=1 old\nseq=2 being writ")
	s := newSink(0, 0)
	cfg := testConfig(filepath.Join(dir, "*.log"))
	cfg.ReadFrom = "end"
	h := startInput(t, data, cfg, s)
	waitFor(t, func() bool { return len(h.in.snapshot()) == 1 }, "file opened")
	appendFile(t, p, "ten\nseq=3 new\n")
	// A file created after the start is read from its beginning.
	writeFile(t, filepath.Join(dir, "b.log"), "seq=4 new file\n")
	if !s.waitSeqs(2, 5, 10*time.Second) {
		t.Fatal("new lines not delivered")
	}
	h.stop(true)
	missing, _ := s.report([]int{0, 1})
	if len(missing) != 2 {
		t.Errorf("read_from=end delivered old lines")
	}
	// The start position was saved: a restart does not read the old lines.
	s2 := newSink(0, 0)
	h = startInput(t, data, cfg, s2)
	time.Sleep(300 * time.Millisecond)
	h.stop(true)
	if n := s2.totalDelivered(); n != 0 {
		t.Errorf("restart delivered %d lines again", n)
	}
}

func TestExitAfterEOF(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(dir, "a.log"), "seq=0 a\nseq=1 b\nseq=2 no newline")
	writeGzip(t, filepath.Join(dir, "b.log.gz"), "seq=3 c\nseq=4 d\n")
	s := newSink(2, time.Millisecond)
	cfg := testConfig(filepath.Join(dir, "*"))
	cfg.ExitAfterEOF = true
	h := startInput(t, data, cfg, s)
	select {
	case err := <-h.done:
		if !errors.Is(err, pipeline.ErrEndOfInput) {
			t.Fatalf("Run = %v, want ErrEndOfInput", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not end")
	}
	s.stop()
	if err := h.in.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	missing, dups := s.report([]int{0, 1, 2, 3, 4})
	if len(missing)+len(dups) > 0 {
		t.Fatalf("missing %v, duplicates %v", missing, dups)
	}
	// Every position was acknowledged and saved before Run returned:
	// replaying again delivers nothing.
	s2 := newSink(0, 0)
	h = startInput(t, data, cfg, s2)
	if err := <-h.done; !errors.Is(err, pipeline.ErrEndOfInput) {
		t.Fatal(err)
	}
	h.in.Close(context.Background())
	if n := s2.totalDelivered(); n != 0 {
		t.Errorf("second replay delivered %d lines", n)
	}
}

// A compressed copy of a file already read (logrotate's compress) is
// recognised by the fingerprint of its decompressed content.
func TestGzipOfReadFileNotReread(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	w := newLogWriter(t, dir, "app.log", 40)
	w.write(200)
	s := newSink(0, 0)
	cfg := testConfig(filepath.Join(dir, "app.log*"))
	h := startInput(t, data, cfg, s)
	if !s.waitSeqs(0, 200, 10*time.Second) {
		t.Fatal("timeout")
	}
	w.rotateCreate()
	w.write(10)
	// Compress the rotated file, as logrotate does one rotation later.
	rotated := filepath.Join(dir, "app.log.1")
	content, _ := os.ReadFile(rotated)
	writeGzip(t, rotated+".gz", string(content))
	os.Remove(rotated)
	if !s.waitSeqs(0, 210, 10*time.Second) {
		t.Fatal("timeout")
	}
	time.Sleep(300 * time.Millisecond)
	h.stop(true)
	w.close()
	missing, dups := s.report(w.all())
	if len(missing)+len(dups) > 0 {
		t.Fatalf("missing %v, duplicates %v", missing, dups)
	}
}

// A rotated file compressed while the reader lagged behind: reading resumes
// inside the compressed stream.
func TestGzipResumesWhereThePlainFileStopped(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	p := filepath.Join(dir, "app.log")
	var all bytes.Buffer
	for i := range 300 {
		all.WriteString("seq=" + itoa(i) + " some text to make the file longer than the fingerprint\n")
	}
	half := bytes.Index(all.Bytes(), []byte("seq=150 "))
	writeFile(t, p, all.String()[:half])
	s := newSink(0, 0)
	cfg := testConfig(filepath.Join(dir, "app.log*"))
	h := startInput(t, data, cfg, s)
	if !s.waitSeqs(0, 150, 10*time.Second) {
		t.Fatal("timeout")
	}
	h.stop(true)
	// While tern is down the file grows, is rotated and compressed.
	appendFile(t, p, all.String()[half:])
	writeGzip(t, p+".1.gz", all.String())
	os.Remove(p)
	h = startInput(t, data, cfg, s)
	want := make([]int, 300)
	for i := range want {
		want[i] = i
	}
	if !s.waitSeqs(0, 300, 10*time.Second) {
		m, _ := s.report(want)
		t.Fatalf("missing %v", m)
	}
	time.Sleep(200 * time.Millisecond)
	h.stop(true)
	missing, dups := s.report(want)
	if len(missing)+len(dups) > 0 {
		t.Fatalf("missing %v, duplicates %v", missing, dups)
	}
}

func TestExcludeAndDirectoriesIgnored(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(dir, "a.log"), "seq=0 a\n")
	writeFile(t, filepath.Join(dir, "b.bak"), "seq=1 b\n")
	os.Mkdir(filepath.Join(dir, "c.log"), 0o755)
	s := newSink(0, 0)
	cfg := testConfig(filepath.Join(dir, "*"))
	cfg.Exclude = []string{"*.bak"}
	h := startInput(t, data, cfg, s)
	if !s.waitSeqs(0, 1, 10*time.Second) {
		t.Fatal("timeout")
	}
	time.Sleep(200 * time.Millisecond)
	h.stop(true)
	if n := s.totalDelivered(); n != 1 {
		t.Errorf("delivered %d lines, want 1", n)
	}
}

// close_eof delivers an unterminated last line and closes the file; it is
// reopened when it grows.
func TestCloseEOF(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	p := filepath.Join(dir, "a.log")
	writeFile(t, p, "seq=0 a\nseq=1 unterminated")
	s := newSink(0, 0)
	cfg := testConfig(p)
	cfg.CloseEOF = true
	h := startInput(t, data, cfg, s)
	if !s.waitSeqs(0, 2, 10*time.Second) {
		t.Fatal("timeout")
	}
	appendFile(t, p, "\nseq=2 c\n")
	if !s.waitSeqs(0, 3, 10*time.Second) {
		t.Fatal("growth after close_eof not read")
	}
	h.stop(true)
	_, dups := s.report([]int{0, 1, 2})
	if len(dups) > 0 {
		t.Fatalf("duplicates %v", dups)
	}
}

// With nothing happening the loop sleeps: no busy polling.
func TestIdleDoesNotSpin(t *testing.T) {
	for _, poll := range []bool{false, true} {
		t.Run(map[bool]string{false: "notify", true: "poll"}[poll], func(t *testing.T) {
			dir, data := t.TempDir(), t.TempDir()
			writeFile(t, filepath.Join(dir, "a.log"), "seq=0 a\n")
			s := newSink(0, 0)
			cfg := testConfig(filepath.Join(dir, "*.log"))
			cfg.Poll = poll
			cfg.PollInterval = config.Duration(500 * time.Millisecond)
			h := startInput(t, data, cfg, s)
			if !s.waitSeqs(0, 1, 10*time.Second) {
				t.Fatal("timeout")
			}
			before := h.in.rounds.Load()
			time.Sleep(1500 * time.Millisecond)
			n := h.in.rounds.Load() - before
			// Notifications: only the 2 s safety scan; polling: backs off
			// to 500ms, so a handful of rounds.
			limit := int64(3)
			if poll {
				limit = 12
			}
			if n > limit {
				t.Errorf("%d loop rounds in 1.5 s while idle (limit %d)", n, limit)
			}
			appendFile(t, filepath.Join(dir, "a.log"), "seq=1 b\n")
			if !s.waitSeqs(1, 2, 10*time.Second) {
				t.Fatal("line after idle period not delivered")
			}
			h.stop(true)
		})
	}
}

// ---- helpers

func writeFile(t testing.TB, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func appendFile(t testing.TB, p, s string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func writeGzip(t testing.TB, p, s string) {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	writeFile(t, p, b.String())
}

func waitFor(t testing.TB, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timeout waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestGolden replays testdata/<case>/: the files named by config.toml's
// globs (relative to the case folder) are read once with exit_after_eof;
// expected.txt holds one record a line: its fields, a tab, its data.
func TestGolden(t *testing.T) {
	for _, c := range pipelinetest.Cases(t, "") {
		t.Run(c.Name, func(t *testing.T) {
			cfg := pipelinetest.ConfigFor(t, Factory(), c).(*Config)
			set := pipelinetest.Settings(t, "inputs.tail")
			set.ConfigDir = c.Dir
			in, err := New(set, *cfg)
			if err != nil {
				t.Fatal(err)
			}
			e := &pipelinetest.Emitter{}
			if err := in.Run(context.Background(), e); !errors.Is(err, pipeline.ErrEndOfInput) {
				t.Fatalf("Run = %v", err)
			}
			in.Close(context.Background())
			var got []byte
			for _, r := range e.Records {
				for _, f := range r.Fields {
					v := f.Value(0)
					switch f.Type {
					case pipeline.TypeInteger:
						got = fmt.Appendf(got, "%s=%d ", f.Name, v.Int())
					default:
						got = fmt.Appendf(got, "%s=%s ", f.Name, filepath.Base(v.Str()))
					}
				}
				got = fmt.Appendf(got, "\t%s\n", r.Data)
			}
			pipelinetest.Golden(t, filepath.Join(c.Dir, "expected.txt"), got)
		})
	}
}

// A file written while the first scan is under way, after the scan found
// it empty: its write must be noticed (file notifications are set up
// before the scan), not left to the next scan_interval. Many other files
// make the scan long enough for the write to fall inside it. Found by R18
// (TestR18Model), where the lines a test wrote just after a start waited
// for the periodic scan.
func TestWriteDuringFirstScanNoticed(t *testing.T) {
	dir, data := t.TempDir(), t.TempDir()
	for i := range 300 {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("b%03d.log", i)), fmt.Sprintf("seq=%d other\n", 1+i))
	}
	p := filepath.Join(dir, "a.log") // first in the glob's order
	writeFile(t, p, "")
	cfg := testConfig(filepath.Join(dir, "*.log"))
	cfg.ScanInterval = config.Duration(time.Minute)
	s := newSink(0, 0)
	h := startInput(t, data, cfg, s)
	defer h.stop(true)
	time.Sleep(time.Millisecond) // the scan has begun
	appendFile(t, p, "seq=0 a\n")
	if !s.waitSeqs(0, 301, 10*time.Second) {
		m, _ := s.report(seqs(301))
		t.Fatalf("missing %v", head(m))
	}
}
