package file

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestSample(t *testing.T) { pipelinetest.CheckSample(t, "outputs", Factory()) }

func TestValidateConfinement(t *testing.T) {
	for _, c := range []struct{ path, base, want string }{
		{"%{Fields[path]}.log", "", "begins with a substitution"},
		{"%{Hostname}/x.log", "", "set base_dir"},
		{"/etc/%{Hostname}.log", "/var/log/tern", "not under base_dir"},
		{"/var/log/ternx/%{Hostname}.log", "/var/log/tern", "not under base_dir"},
		{"../%{Hostname}.log", "/var/log/tern", `".."`},
		{"out/%{Hostname}/../x.log", "", `".."`},
		{"out/%{Hostname}//x.log", "", "empty path component"},
		{"out/%{Hostname}/", "", "empty path component"},
		{"out/%{Nope}.log", "", "unknown name"},
		{"out/%{Hostname", "", "unterminated"},
	} {
		cfg := DefaultConfig()
		cfg.Path, cfg.BaseDir = c.path, c.base
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "path: ") {
			t.Errorf("path %q base %q: %v, want a path: error with %q", c.path, c.base, err, c.want)
		}
	}
	for _, c := range []struct{ path, base, wantBase, wantRest string }{
		{"out/%{Hostname}/%{Fields[path]}.log", "", "out", "%{Hostname}/%{Fields[path]}.log"},
		{"/var/log/tern/%{Hostname}.log", "/var/log/tern", "/var/log/tern", "%{Hostname}.log"},
		{"/var/log/tern/%{Hostname}.log", "", "/var/log/tern", "%{Hostname}.log"},
		{"%{Hostname}/x.log", "/srv/logs/", "/srv/logs", "%{Hostname}/x.log"},
		{"messages.jsonl", "", ".", "messages.jsonl"},
		{"out/messages.jsonl", "", "out", "messages.jsonl"},
		{"out/100%%.log", "", "out", "100%%.log"},
	} {
		base, rest, err := layout(c.path, c.base)
		if err != nil || base != c.wantBase || rest.String() != c.wantRest {
			t.Errorf("layout(%q, %q) = %q, %q, %v; want %q, %q", c.path, c.base, base, rest, err, c.wantBase, c.wantRest)
		}
	}
}

// ---- helpers

type testOut struct {
	*Output
	t   *testing.T
	dir string
	tel *pipelinetest.Telemetry
	now time.Time
	mu  sync.Mutex
}

func newOut(t *testing.T, cfg Config, enc pipeline.Encoder) *testOut {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	set := pipelinetest.Settings(t, "outputs.file")
	set.ConfigDir = dir
	set.Encoder = enc
	to := &testOut{t: t, dir: dir, tel: set.Telemetry.(*pipelinetest.Telemetry), now: time.Date(2023, 11, 14, 22, 13, 20, 0, time.UTC)}
	set.Now = func() time.Time {
		to.mu.Lock()
		defer to.mu.Unlock()
		return to.now
	}
	o, err := New(set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	to.Output = o
	t.Cleanup(func() { o.Close(context.Background()) })
	return to
}

func (to *testOut) advance(d time.Duration) {
	to.mu.Lock()
	to.now = to.now.Add(d)
	to.mu.Unlock()
}

func rec(host, path, data string) pipeline.Encoded {
	m := pipeline.NewMessage()
	m.Hostname = host
	if path != "" {
		m.AddString("path", path)
	}
	return pipeline.Encoded{Msg: m, Data: []byte(data)}
}

func (to *testOut) read(rel string) string {
	to.t.Helper()
	b, err := os.ReadFile(filepath.Join(to.dir, rel))
	if err != nil {
		to.t.Fatal(err)
	}
	return string(b)
}

// files lists every regular file under root, relative to it (symlinks are
// not followed).
func files(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			r, _ := filepath.Rel(root, p)
			out = append(out, r)
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// ---- behaviour

func TestStaticPath(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Path = "out/messages.jsonl"
	o := newOut(t, cfg, nil)
	if err := o.Write(context.Background(), []pipeline.Encoded{rec("h", "", "a"), rec("h", "", "b")}); err != nil {
		t.Fatal(err)
	}
	if err := o.Write(context.Background(), []pipeline.Encoded{rec("h", "", "c")}); err != nil {
		t.Fatal(err)
	}
	if got := o.read("out/messages.jsonl"); got != "a\nb\nc\n" {
		t.Errorf("content %q", got)
	}
	fi, _ := os.Stat(filepath.Join(o.dir, "out/messages.jsonl"))
	if fi.Mode().Perm() != 0o640&^umask() {
		t.Errorf("mode %v", fi.Mode().Perm())
	}
}

func umask() os.FileMode {
	m := syscall.Umask(0)
	syscall.Umask(m)
	return os.FileMode(m)
}

func TestTemplatePaths(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Path = "out/%{Hostname}/%{Fields[path]:-misc}.log"
	delim := "\n"
	cfg.Delimiter = &delim
	o := newOut(t, cfg, nil)
	batch := []pipeline.Encoded{
		rec("sensor-1", "conn", "c1"), rec("sensor-2", "dns", "d1"), rec("sensor-1", "dns", "d2"),
		rec("sensor-1", "conn", "c2"), rec("sensor-2", "", "m1"),
	}
	if err := o.Write(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"out/sensor-1/conn.log": "c1\nc2\n", "out/sensor-1/dns.log": "d2\n",
		"out/sensor-2/dns.log": "d1\n", "out/sensor-2/misc.log": "m1\n",
	}
	if got := files(t, o.dir); !slices.Equal(got, sortedKeys(want)) {
		t.Fatalf("files %v", got)
	}
	for f, w := range want {
		if got := o.read(f); got != w {
			t.Errorf("%s: %q, want %q", f, got, w)
		}
	}
}

func sortedKeys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// R25: hostile field values in the path template. Each message whose path
// would leave base_dir is refused for good (dead-letter route) and counted;
// the others are written; not a single file appears outside base_dir.
func TestR25HostileValues(t *testing.T) {
	outer := t.TempDir()
	base := filepath.Join(outer, "base")
	os.MkdirAll(filepath.Join(base, "h"), 0o755)
	// A symlink inside base_dir that leads out of it.
	os.Symlink(outer, filepath.Join(base, "h", "link"))
	cfg := DefaultConfig()
	cfg.BaseDir = base
	cfg.Path = "%{Hostname}/%{Fields[a]:-x}%{Fields[b]:-y}/f.log"
	o := newOut(t, cfg, nil)
	hostile := []struct{ host, a, b string }{
		{"../../etc/cron.d", "x", "y"},
		{"..", "x", "y"},
		{".", "x", "y"},
		{"/etc", "x", "y"},
		{"h", "../../../../tmp/evil", "y"},
		{"h", "a/b", "y"},
		{"h", `a\b`, "y"},
		{"h", "nul\x00byte", "y"},
		{"h", "crlf\r\nsplit", "y"},
		{"h", "tab\tx", "y"},
		{"h", ".", "."}, // "." + "." = ".."
		{"h", strings.Repeat("L", 300), "y"},
		{"h", "li", "nk"}, // "link": the symlink out of base_dir
	}
	benign := []struct{ host, a, b string }{
		{"h", "%2e%2e", "y"}, // a literal name, not a traversal
		{"h", "..x", "y"},
		{"h", "ünïcode", "y"},
		{"sensor-1", "conn", "y"},
	}
	var batch []pipeline.Encoded
	for _, v := range append(hostile, benign...) {
		m := pipeline.NewMessage()
		m.Hostname = v.host
		m.AddString("a", v.a)
		m.AddString("b", v.b)
		batch = append(batch, pipeline.Encoded{Msg: m, Data: []byte("rec")})
	}
	err := o.Write(context.Background(), batch)
	var pe *pipeline.PartialError
	if !errors.As(err, &pe) || len(pe.Errs) != len(batch) {
		t.Fatalf("Write = %v, want a PartialError for %d records", err, len(batch))
	}
	for i, e := range pe.Errs {
		if i < len(hostile) {
			if e == nil || !pipeline.IsPermanent(e) || !errors.Is(e, errConfinement) {
				t.Errorf("hostile %q/%q/%q: %v, want a permanent confinement error", hostile[i].host, hostile[i].a, hostile[i].b, e)
			}
		} else if e != nil {
			t.Errorf("benign %+v refused: %v", benign[i-len(hostile)], e)
		}
	}
	if n := o.tel.Counts["template_confinement_violations_total"]; int(n) != len(hostile) {
		t.Errorf("violations counted %v, want %d", n, len(hostile))
	}
	// Walk everything under the test's directory: only base_dir has files.
	for _, f := range files(t, outer) {
		if !strings.HasPrefix(f, "base/") {
			t.Errorf("file created outside base_dir: %s", f)
		}
	}
	want := []string{"base/h/%2e%2ey/f.log", "base/h/..xy/f.log", "base/h/ünïcodey/f.log", "base/sensor-1/conny/f.log"}
	if got := files(t, outer); !slices.Equal(got, want) {
		t.Errorf("files %q, want %q", got, want)
	}
}

func TestMaxOpenFiles(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Path = "out/%{Hostname}.log"
	cfg.MaxOpenFiles = 2
	o := newOut(t, cfg, nil)
	for round := range 3 {
		var batch []pipeline.Encoded
		for h := range 5 {
			batch = append(batch, rec(fmt.Sprintf("h%d", h), "", fmt.Sprintf("r%d", round)))
		}
		if err := o.Write(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
		if n := o.lru.Len(); n > 2 {
			t.Fatalf("%d files open", n)
		}
	}
	for h := range 5 {
		if got := o.read(fmt.Sprintf("out/h%d.log", h)); got != "r0\nr1\nr2\n" {
			t.Errorf("h%d: %q", h, got)
		}
	}
}

// A file that ends inside a record (a crash in the middle of a write) gets
// its record terminated before anything is appended.
func TestResyncAfterTornRecord(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Path = "out/m.log"
	o := newOut(t, cfg, nil)
	os.MkdirAll(filepath.Join(o.dir, "out"), 0o755)
	os.WriteFile(filepath.Join(o.dir, "out/m.log"), []byte("whole\nhal"), 0o644)
	if err := o.Write(context.Background(), []pipeline.Encoded{rec("h", "", "next")}); err != nil {
		t.Fatal(err)
	}
	if got := o.read("out/m.log"); got != "whole\nhal\nnext\n" {
		t.Errorf("content %q", got)
	}
}

// ---- rotation

func TestRotateSize(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Path = "out/conn.log"
	cfg.RotateSize = 100
	o := newOut(t, cfg, nil)
	var all []string
	for b := range 10 {
		var batch []pipeline.Encoded
		for r := range 7 {
			s := fmt.Sprintf("record-%02d-%d", b, r) // 12 bytes + newline
			all = append(all, s)
			batch = append(batch, rec("h", "", s))
		}
		if err := o.Write(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
		o.advance(time.Second)
	}
	fs := files(t, filepath.Join(o.dir, "out"))
	var got []string
	for _, f := range fs {
		if f == "conn.log" {
			continue
		}
		if !strings.HasPrefix(f, "conn.2023-11-14-22-") || !strings.HasSuffix(f, ".log") {
			t.Errorf("rotated name %q", f)
		}
	}
	for _, f := range fs { // rotated names sort by time, before the live file
		c := o.read("out/" + f)
		if len(c) > 100 {
			t.Errorf("%s has %d bytes", f, len(c))
		}
		got = append(got, strings.Fields(c)...)
	}
	if !slices.Equal(got, all) {
		t.Errorf("records across files:\n%v\nwant\n%v", got, all)
	}
}

// zeekish is a framing encoder like the zeek one: a header when a file
// starts, a trailer before it is closed or rotated.
type zeekish struct{}

func (zeekish) Encode(dst []byte, m *pipeline.Message) ([]byte, error) {
	return append(dst, m.Payload...), nil
}

func (zeekish) Header(dst []byte, first *pipeline.Message, open time.Time) []byte {
	return fmt.Appendf(dst, "#open\t%s\n#fields\tmsg\n", open.UTC().Format(rotateLayout))
}

func (zeekish) Trailer(dst []byte, close time.Time) []byte {
	return fmt.Appendf(dst, "#close\t%s\n", close.UTC().Format(rotateLayout))
}

func TestRotateIntervalWithFramer(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Path = "logs/%{Fields[path]}.log"
	cfg.RotateInterval = config.Duration(time.Hour)
	o := newOut(t, cfg, zeekish{})
	o.advance(46*time.Minute + 30*time.Second) // 22:59:50
	w := func(recs ...string) {
		var batch []pipeline.Encoded
		for _, r := range recs {
			e := rec("h", "conn", r)
			batch = append(batch, e)
		}
		if err := o.Write(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}
	w("a", "b")
	o.advance(20 * time.Second) // 23:00:10: past the hour
	w("c")
	if got := files(t, filepath.Join(o.dir, "logs")); !slices.Equal(got, []string{"conn.2023-11-14-22-59-50.log", "conn.log"}) {
		t.Fatalf("files %v", got)
	}
	if got := o.read("logs/conn.2023-11-14-22-59-50.log"); got != "#open\t2023-11-14-22-59-50\n#fields\tmsg\na\nb\n#close\t2023-11-14-23-00-10\n" {
		t.Errorf("rotated file %q", got)
	}
	if got := o.read("logs/conn.log"); got != "#open\t2023-11-14-23-00-10\n#fields\tmsg\nc\n" {
		t.Errorf("live file %q", got)
	}
	// Close writes the trailer and rotates, as Zeek does at shutdown.
	o.advance(time.Minute)
	if err := o.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := files(t, filepath.Join(o.dir, "logs")); !slices.Equal(got, []string{"conn.2023-11-14-22-59-50.log", "conn.2023-11-14-23-00-10.log"}) {
		t.Fatalf("after Close: files %v", got)
	}
	if got := o.read("logs/conn.2023-11-14-23-00-10.log"); !strings.HasSuffix(got, "c\n#close\t2023-11-14-23-01-10\n") {
		t.Errorf("closed file %q", got)
	}
}

// rotateNow runs the due rotations at the test clock's time, as the
// background timer does.
func (o *testOut) rotateNow() {
	now := o.set.Now()
	o.Output.mu.Lock()
	defer o.Output.mu.Unlock()
	o.rotateDue(now)
}

// With write_empty, an interval without records still leaves a file with
// the header and the trailer, as Zeek rotates a log nobody wrote to; without
// it, no file.
func TestWriteEmpty(t *testing.T) {
	for _, empty := range []bool{false, true} {
		cfg := DefaultConfig()
		cfg.Path = "logs/conn.log"
		cfg.RotateInterval = config.Duration(time.Hour)
		cfg.WriteEmpty = empty
		o := newOut(t, cfg, zeekish{})
		o.advance(46*time.Minute + 40*time.Second) // 23:00:00
		if err := o.Write(context.Background(), []pipeline.Encoded{rec("h", "", "a")}); err != nil {
			t.Fatal(err)
		}
		o.advance(time.Hour) // 00:00:00: the first file rotates
		o.rotateNow()
		o.advance(time.Hour) // 01:00:00: an hour without records
		o.rotateNow()
		want := []string{"conn.2023-11-14-23-00-00.log"}
		if empty {
			want = append(want, "conn.2023-11-15-00-00-00.log")
		}
		if got := files(t, filepath.Join(o.dir, "logs")); !slices.Equal(got, want) {
			t.Fatalf("write_empty = %v: files %v, want %v", empty, got, want)
		}
		if empty {
			if got := o.read("logs/conn.2023-11-15-00-00-00.log"); got != "#open\t2023-11-15-00-00-00\n#fields\tmsg\n#close\t2023-11-15-01-00-00\n" {
				t.Errorf("empty interval's file %q", got)
			}
		}
		if err := o.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	cfg := DefaultConfig()
	cfg.Path, cfg.WriteEmpty = "x.log", true
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "write_empty") {
		t.Errorf("write_empty without rotate_interval: %v", err)
	}
}

// A file a crashed run left behind (no trailer) is set aside before a
// framing encoder starts a new one, so no file has two headers.
func TestFramerSetsLeftoverAside(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Path = "logs/conn.log"
	o := newOut(t, cfg, zeekish{})
	os.MkdirAll(filepath.Join(o.dir, "logs"), 0o755)
	left := filepath.Join(o.dir, "logs/conn.log")
	os.WriteFile(left, []byte("#open\tx\n#fields\tmsg\nold\n"), 0o644)
	mt := time.Date(2023, 11, 14, 20, 0, 0, 0, time.UTC)
	os.Chtimes(left, mt, mt)
	if err := o.Write(context.Background(), []pipeline.Encoded{rec("h", "", "new")}); err != nil {
		t.Fatal(err)
	}
	if got := files(t, filepath.Join(o.dir, "logs")); !slices.Equal(got, []string{"conn.2023-11-14-20-00-00.log", "conn.log"}) {
		t.Fatalf("files %v", got)
	}
	if got := o.read("logs/conn.log"); !strings.HasPrefix(got, "#open\t2023-11-14-22-13-20\n") || !strings.HasSuffix(got, "\nnew\n") {
		t.Errorf("new file %q", got)
	}
}

// With no writes, a due rotation still happens (the background timer).
func TestIdleFileRotates(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Path = "logs/conn.log"
	cfg.RotateInterval = config.Duration(time.Second)
	cfg.Sync = "interval"
	cfg.SyncInterval = config.Duration(50 * time.Millisecond)
	o := newOut(t, cfg, zeekish{})
	if err := o.Write(context.Background(), []pipeline.Encoded{rec("h", "", "x")}); err != nil {
		t.Fatal(err)
	}
	o.advance(2 * time.Second)
	deadline := time.Now().Add(10 * time.Second)
	for len(files(t, filepath.Join(o.dir, "logs"))) != 1 || files(t, filepath.Join(o.dir, "logs"))[0] == "conn.log" {
		if time.Now().After(deadline) {
			t.Fatalf("not rotated: %v", files(t, filepath.Join(o.dir, "logs")))
		}
		time.Sleep(20 * time.Millisecond)
	}
	f := files(t, filepath.Join(o.dir, "logs"))[0]
	if got := o.read("logs/" + f); !strings.Contains(got, "#close") {
		t.Errorf("rotated idle file has no trailer: %q", got)
	}
}

func TestRotatedNameCollision(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Path = "out/a.log"
	cfg.RotateSize = 4
	o := newOut(t, cfg, nil)
	for _, r := range []string{"one", "two", "six"} { // same second: counters
		if err := o.Write(context.Background(), []pipeline.Encoded{rec("h", "", r)}); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{"a.2023-11-14-22-13-20-1.log", "a.2023-11-14-22-13-20.log", "a.log"}
	if got := files(t, filepath.Join(o.dir, "out")); !slices.Equal(got, want) {
		t.Fatalf("files %v, want %v", got, want)
	}
}

// ---- durability and failures on a real, small file system

// mountTmpfs mounts a tmpfs of size bytes (needs root; skipped otherwise).
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	return dir
}

// ENOSPC in the middle of a batch: the write is cut back to the last whole
// record, the failed records are reported for retry (not as permanent), and
// once space is freed the retry appends them. No half record, nothing lost,
// nothing twice, order kept.
func TestDiskFullPartialWrite(t *testing.T) {
	for _, tc := range []struct {
		sync string
		laid bool // records laid out as the engine does: written as runs (addRun)
	}{{"none", false}, {"always", false}, {"none", true}, {"always", true}} {
		sync := tc.sync
		t.Run(fmt.Sprintf("%s/laid=%v", sync, tc.laid), func(t *testing.T) {
			fsdir := mountTmpfs(t, 256<<10)
			filler := filepath.Join(fsdir, "filler")
			if err := os.WriteFile(filler, bytes.Repeat([]byte("f"), 128<<10), 0o644); err != nil {
				t.Fatal(err)
			}
			cfg := DefaultConfig()
			cfg.BaseDir = fsdir
			cfg.Path = "out/%{Hostname}.log"
			cfg.Sync = sync
			o := newOut(t, cfg, nil)
			out := filepath.Join(fsdir, "out/h.log")
			var all []string
			var pending []pipeline.Encoded
			failures := 0
			for b := 0; len(all) < 4000 || len(pending) > 0; b++ {
				if len(all) < 4000 {
					var fresh []pipeline.Encoded
					for r := range 50 {
						s := fmt.Sprintf("%05d-%02d-%s", b, r, strings.Repeat("z", 50))
						all = append(all, s)
						fresh = append(fresh, rec("h", "", s))
					}
					if tc.laid {
						layOut(fresh, "\n")
					}
					pending = append(pending, fresh...)
				}
				err := o.Write(context.Background(), pending)
				var pe *pipeline.PartialError
				switch {
				case err == nil:
					pending = pending[:0]
				case errors.As(err, &pe):
					failures++
					if failures > 20 {
						t.Fatalf("still failing after space was freed: %v", err)
					}
					var retry []pipeline.Encoded
					for i, e := range pe.Errs {
						if e == nil {
							continue
						}
						if pipeline.IsPermanent(e) {
							t.Fatalf("disk full reported as permanent: %v", e)
						}
						retry = append(retry, pending[i])
					}
					pending = retry
					if c, _ := os.ReadFile(out); len(c) > 0 && c[len(c)-1] != '\n' {
						t.Fatal("a half record is left after the failed write")
					}
					os.Remove(filler) // the operator frees space
				default:
					t.Fatalf("Write = %v", err)
				}
			}
			if failures == 0 {
				t.Fatal("the file system never filled up")
			}
			c, _ := os.ReadFile(out)
			if got := strings.Fields(string(c)); !slices.Equal(got, all) {
				t.Fatalf("got %d records, want %d (lost, duplicated or reordered)", len(got), len(all))
			}
		})
	}
}

// The ack comes only after the data reached the file: with sync = always
// the bytes are on disk when Write returns (checked through a second
// descriptor), and a created file's directory entry was synced.
func TestWriteReturnsAfterDataIsInTheFile(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Path = "out/%{Hostname}/m.log"
	cfg.Sync = "always"
	o := newOut(t, cfg, nil)
	for i := range 20 {
		s := fmt.Sprintf("r%d", i)
		if err := o.Write(context.Background(), []pipeline.Encoded{rec("h", "", s)}); err != nil {
			t.Fatal(err)
		}
		if got := o.read("out/h/m.log"); !strings.HasSuffix(got, s+"\n") {
			t.Fatalf("after Write returned, the file ends with %q", got[max(0, len(got)-10):])
		}
	}
}

func TestCloseWithoutWrite(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Path = "out/x.log"
	o := newOut(t, cfg, nil)
	if err := o.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(o.dir, "out")); !os.IsNotExist(err) {
		t.Error("Close without a write created the directory")
	}
}

// TestGolden runs testdata/<case>/: input.jsonl holds canonical JSON
// messages whose payloads are the records; expected.txt lists every file
// written (relative to the config directory) with its content, then the
// records refused.
func TestGolden(t *testing.T) {
	for _, c := range pipelinetest.Cases(t, "") {
		t.Run(c.Name, func(t *testing.T) {
			cfg := pipelinetest.ConfigFor(t, Factory(), c).(*Config)
			o := newOut(t, *cfg, nil)
			in, err := os.ReadFile(filepath.Join(c.Dir, "input.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			var batch []pipeline.Encoded
			for _, line := range strings.Split(strings.TrimSpace(string(in)), "\n") {
				m := pipeline.NewMessage()
				if err := codec.DecodeJSON([]byte(line), m, nil); err != nil {
					t.Fatal(err)
				}
				batch = append(batch, pipeline.Encoded{Msg: m, Data: []byte(m.Payload)})
			}
			werr := o.Write(context.Background(), batch)
			var got []byte
			for _, f := range files(t, o.dir) {
				got = fmt.Appendf(got, "== %s\n%s", f, o.read(f))
			}
			var pe *pipeline.PartialError
			if errors.As(werr, &pe) {
				for i, e := range pe.Errs {
					if e != nil {
						got = fmt.Appendf(got, "== refused: record %d (permanent: %v)\n%v\n", i+1, pipeline.IsPermanent(e), e)
					}
				}
			} else if werr != nil {
				t.Fatal(werr)
			}
			pipelinetest.Golden(t, filepath.Join(c.Dir, "expected.txt"), got)
		})
	}
}

// A rotation that fails (the trailer cannot be written: disk full) fails
// the batch's records for that file; once space is free the retry rotates
// and writes them. The failure must not stick to the file.
func TestRotationFailureIsRetried(t *testing.T) {
	fsdir := mountTmpfs(t, 64<<10)
	cfg := DefaultConfig()
	cfg.BaseDir = fsdir
	cfg.Path = "logs/conn.log"
	cfg.RotateSize = 4096
	o := newOut(t, cfg, zeekish{})
	head := zeekish{}.Header(nil, nil, o.now)
	// Fill exactly one page, so the trailer needs a new one.
	first := rec("h", "", strings.Repeat("a", 4096-len(head)-1))
	if err := o.Write(context.Background(), []pipeline.Encoded{first}); err != nil {
		t.Fatal(err)
	}
	filler, err := os.Create(filepath.Join(fsdir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := filler.Write(make([]byte, 4096)); err != nil {
			break
		}
	}
	filler.Close()
	second := []pipeline.Encoded{rec("h", "", "b")}
	var pe *pipeline.PartialError
	if err := o.Write(context.Background(), second); !errors.As(err, &pe) || pipeline.IsPermanent(pe.Errs[0]) {
		t.Fatalf("Write on a full disk = %v, want a retriable error", err)
	}
	os.Remove(filepath.Join(fsdir, "filler"))
	if err := o.Write(context.Background(), second); err != nil {
		t.Fatalf("retry after space was freed: %v", err)
	}
	got := files(t, filepath.Join(fsdir, "logs"))
	if len(got) != 2 {
		t.Fatalf("files %v", got)
	}
	old, _ := os.ReadFile(filepath.Join(fsdir, "logs", got[0]))
	live, _ := os.ReadFile(filepath.Join(fsdir, "logs", "conn.log"))
	if strings.Count(string(old), "#close") != 1 || !strings.HasSuffix(string(live), "#fields\tmsg\nb\n") {
		t.Errorf("rotated %q…, live %q", old[len(old)-30:], live)
	}
}

// blockFirstSync makes the output's next fsync wait until release is
// closed, and tells entered when it starts; later fsyncs pass through.
func blockFirstSync(o *testOut) (entered, release chan struct{}) {
	entered, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	o.mu.Lock()
	o.Output.mu.Lock()
	o.fsync = func(f *os.File) error {
		first := false
		once.Do(func() { first = true })
		if first {
			close(entered)
			<-release
		}
		return f.Sync()
	}
	o.Output.mu.Unlock()
	o.mu.Unlock()
	return entered, release
}

// The interval fsync runs without the output's lock: a Write (here one
// that opens, evicts and rotates files) completes while an fsync of the
// background loop is still in progress, and the files that Write closed
// meanwhile were synced by Write itself, without errors.
func TestIntervalFsyncDoesNotStallWrite(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Path = "out/%{Hostname}.log"
	cfg.Sync = "interval"
	cfg.SyncInterval = config.Duration(10 * time.Millisecond)
	cfg.MaxOpenFiles = 1
	cfg.RotateSize = 64
	o := newOut(t, cfg, nil)
	entered, release := blockFirstSync(o)
	defer func() {
		select {
		case <-release:
		default:
			close(release)
		}
	}()
	if err := o.Write(context.Background(), []pipeline.Encoded{rec("a", "", "first")}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the background fsync never ran")
	}
	// a.log is being synced. Write to b (evicting a, max_open_files = 1)
	// and then to a past rotate_size (closing and renaming it).
	done := make(chan error, 1)
	go func() {
		err := o.Write(context.Background(), []pipeline.Encoded{rec("b", "", "second")})
		if err == nil {
			err = o.Write(context.Background(), []pipeline.Encoded{rec("a", "", strings.Repeat("x", 80))})
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Write waited for the background fsync")
	}
	close(release)
	// The loop finishes its round and, in the next ones, syncs what is
	// left dirty.
	dirty := func() []string {
		o.Output.mu.Lock()
		defer o.Output.mu.Unlock()
		var names []string
		for name, lf := range o.files {
			if lf.dirty || lf.newEntry {
				names = append(names, name)
			}
		}
		return names
	}
	for deadline := time.Now().Add(10 * time.Second); len(dirty()) > 0; {
		if time.Now().After(deadline) {
			t.Fatalf("%v still not synced", dirty())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := o.tel.Errored("fsync"); n != 0 {
		t.Errorf("%d fsync errors: a file closed during the background fsync is not a failure", n)
	}
	if got := files(t, filepath.Join(o.dir, "out")); len(got) != 3 {
		t.Errorf("files %v, want a.log, its rotated copy and b.log", got)
	}
}

// layOut places the records' data one after the other in one buffer, each
// followed by sep within its capacity, as the engine does for a Separated
// output.
func layOut(batch []pipeline.Encoded, sep string) {
	var buf []byte
	ends := make([]int, len(batch))
	for i := range batch {
		buf = append(buf, batch[i].Data...)
		ends[i] = len(buf)
		buf = append(buf, sep...)
	}
	start := 0
	for i := range batch {
		batch[i].Data = buf[start : ends[i] : ends[i]+len(sep)]
		start = ends[i] + len(sep)
	}
}

// Records laid out by the engine are written from its buffer, without a
// copy, and the files hold what copying writes: batches over several files
// (so runs break and resume), rotation inside a batch, records from
// elsewhere between laid-out ones, and empty records.
func TestRunsWriteWhatCopiesWrite(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	cfg := DefaultConfig()
	cfg.Path = "out/%{Hostname}.log"
	cfg.RotateSize = 12000 // a rotation in some batches, at most one (names are by the second)
	o := newOut(t, cfg, nil)
	want := map[string][]string{}
	for b := range 40 {
		var batch []pipeline.Encoded
		hosts := 1 + r.IntN(3)
		for i := range 50 + r.IntN(100) {
			host := fmt.Sprintf("h%d", r.IntN(hosts))
			data := fmt.Sprintf("b%02d-r%03d-%s", b, i, strings.Repeat("x", r.IntN(60)))
			if r.IntN(20) == 0 {
				data = ""
			}
			batch = append(batch, rec(host, "", data))
			want[host] = append(want[host], data)
		}
		layOut(batch, "\n")
		for range r.IntN(3) { // records of their own
			i := r.IntN(len(batch))
			batch[i].Data = append([]byte(nil), batch[i].Data...)
		}
		if err := o.Write(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
		o.advance(time.Second)
	}
	for host, w := range want {
		var got []string
		for _, f := range files(t, filepath.Join(o.dir, "out")) {
			if strings.HasPrefix(f, host+".") {
				c := o.read("out/" + f)
				if len(c) > 12000 {
					t.Errorf("%s has %d bytes", f, len(c))
				}
				got = append(got, strings.Split(strings.TrimSuffix(c, "\n"), "\n")...)
			}
		}
		if !slices.Equal(got, w) {
			for i := range min(len(got), len(w)) {
				if got[i] != w[i] {
					t.Errorf("%s: record %d reads %q, want %q", host, i, got[i], w[i])
					break
				}
			}
			t.Errorf("%s: %d records, want %d", host, len(got), len(w))
		}
	}

	// One file, one laid-out batch: one write from the engine's buffer.
	cfg.Path, cfg.RotateSize = "one.log", 0
	o = newOut(t, cfg, nil)
	batch := []pipeline.Encoded{rec("h", "", "a"), rec("h", "", "bb"), rec("h", "", "ccc")}
	layOut(batch, "\n")
	if err := o.Write(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	if got := o.read("one.log"); got != "a\nbb\nccc\n" {
		t.Errorf("one.log: %q", got)
	}
	if lf := o.staticFile; lf == nil || cap(lf.pending) != 0 {
		t.Error("a laid-out batch for one file was copied")
	}
}
