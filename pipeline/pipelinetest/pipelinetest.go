// Package pipelinetest holds the helpers plugin tests share: settings, a
// recording Emitter, golden files, table-driven decoder and encoder cases,
// and the convention checks every plugin directory must pass. Import it from
// tests only.
package pipelinetest

import (
	"bytes"
	"context"
	"flag"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ternlog/tern/pipeline"
)

var update = flag.Bool("update", false, "rewrite golden files with the current output")

// Now is the fixed clock of Settings.
var Now = time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)

// Settings returns plugin settings for a test: a logger that writes through
// t.Log, the fixed clock, a temporary data directory and no-op telemetry.
func Settings(t testing.TB, name string) pipeline.Settings {
	t.Helper()
	return pipeline.Settings{
		Name:      name,
		Logger:    slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:       func() time.Time { return Now },
		Hostname:  "test-host",
		ConfigDir: ".",
		DataDir:   t.TempDir(),
		Telemetry: &Telemetry{},
	}
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// Telemetry records drops and errors so tests can assert on them, and
// what the plugin declared (pipeline.Declarer).
type Telemetry struct {
	mu       sync.Mutex
	Drops    map[string]int
	Errors   map[string]int
	Counts   map[string]float64
	Declared map[string]bool // "drop:<reason>" and "error:<kind>"
	// Labeled holds counters and gauges by name and label values, as
	// "name{v1,v2}" (see CountWith).
	Labeled map[string]float64
}

var _ pipeline.Declarer = (*Telemetry)(nil)

func (t *Telemetry) DeclareDrops(reasons ...string) { t.declare("drop:", reasons) }
func (t *Telemetry) DeclareErrors(kinds ...string)  { t.declare("error:", kinds) }

func (t *Telemetry) declare(prefix string, names []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.Declared == nil {
		t.Declared = map[string]bool{}
	}
	for _, n := range names {
		t.Declared[prefix+n] = true
	}
}

// Undeclared lists the drop reasons and error kinds counted without being
// declared first, as "drop:<reason>" and "error:<kind>", sorted.
func (t *Telemetry) Undeclared() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []string
	for r := range t.Drops {
		if !t.Declared["drop:"+r] {
			out = append(out, "drop:"+r)
		}
	}
	for k := range t.Errors {
		if !t.Declared["error:"+k] {
			out = append(out, "error:"+k)
		}
	}
	sort.Strings(out)
	return out
}

func labeled(name string, lv []string) string { return name + "{" + strings.Join(lv, ",") + "}" }

func (t *Telemetry) Drop(reason string, n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.Drops == nil {
		t.Drops = map[string]int{}
	}
	t.Drops[reason] += n
}

func (t *Telemetry) Error(kind string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.Errors == nil {
		t.Errors = map[string]int{}
	}
	t.Errors[kind]++
}

func (t *Telemetry) Counter(name, _ string, _ ...string) func(float64, ...string) {
	return func(d float64, lv ...string) {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.Counts == nil {
			t.Counts, t.Labeled = map[string]float64{}, map[string]float64{}
		}
		t.Counts[name] += d
		t.Labeled[labeled(name, lv)] += d
	}
}

func (t *Telemetry) Gauge(name, _ string, _ ...string) func(float64, ...string) {
	return func(v float64, lv ...string) {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.Counts == nil {
			t.Counts, t.Labeled = map[string]float64{}, map[string]float64{}
		}
		t.Counts[name] = v
		t.Labeled[labeled(name, lv)] = v
	}
}

// Count returns the value of a counter or gauge the plugin reported.
func (t *Telemetry) Count(name string) float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.Counts[name]
}

// CountWith returns the value of a counter or gauge the plugin reported
// with these label values (in the order it named the labels).
func (t *Telemetry) CountWith(name string, labelValues ...string) float64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.Labeled[labeled(name, labelValues)]
}

// Dropped returns the drops counted for reason.
func (t *Telemetry) Dropped(reason string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.Drops[reason]
}

// Errored returns the errors counted for kind.
func (t *Telemetry) Errored(kind string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.Errors[kind]
}

// Build returns the plugin build makes, for a test, from the defaults
// changed by mod (when not nil), which must validate, and Settings(t,
// name); it fails the test on an error. The Telemetry is the settings':
// what the plugin counts. At cleanup it fails the test if the plugin
// counted a drop or error kind its constructor did not declare.
func Build[C, P any](t testing.TB, name string, defaults func() C, mod func(*C), build func(pipeline.Settings, C) (P, error)) (P, *Telemetry) {
	t.Helper()
	cfg := defaults()
	if mod != nil {
		mod(&cfg)
	}
	if v, ok := any(cfg).(pipeline.Validator); ok {
		if err := v.Validate(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	set := Settings(t, name)
	p, err := build(set, cfg)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	tel := set.Telemetry.(*Telemetry)
	t.Cleanup(func() {
		if u := tel.Undeclared(); len(u) > 0 {
			t.Errorf("%s counted without declaring first (Settings.DeclareDrops/DeclareErrors): %v", name, u)
		}
	})
	return p, tel
}

// SyncBuffer is a bytes.Buffer that goroutines may write to while the test
// reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Golden compares got with the file at path, or rewrites the file when the
// test runs with -update.
func Golden(t testing.TB, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden file: %v (run with -update to create it)", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s differs (run with -update after checking the change)\n--- want\n%s\n--- got\n%s", path, want, got)
	}
}

// Emitter records what an input emits. Ack decides each batch's fate
// (default: acknowledge at once with nil).
type Emitter struct {
	mu      sync.Mutex
	Records []pipeline.Record // copies
	Batches int
	Ack     func(recs []pipeline.Record, ack pipeline.AckFunc)
	notify  chan struct{}
}

var _ pipeline.Emitter = (*Emitter)(nil)

func (e *Emitter) Emit(ctx context.Context, recs []pipeline.Record, ack pipeline.AckFunc) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	cp := make([]pipeline.Record, len(recs))
	for i, r := range recs {
		cp[i] = r
		cp[i].Data = bytes.Clone(r.Data)
	}
	e.mu.Lock()
	e.Records = append(e.Records, cp...)
	e.Batches++
	if e.notify != nil {
		close(e.notify)
		e.notify = nil
	}
	ackFn := e.Ack
	e.mu.Unlock()
	if ackFn != nil {
		ackFn(cp, ack)
	} else if ack != nil {
		ack(nil)
	}
	return nil
}

// Lines returns the data of every record so far.
func (e *Emitter) Lines() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]string, len(e.Records))
	for i, r := range e.Records {
		out[i] = string(r.Data)
	}
	return out
}

// WaitFor waits until at least n records arrived or the timeout passes, and
// reports whether they did.
func (e *Emitter) WaitFor(n int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		e.mu.Lock()
		if len(e.Records) >= n {
			e.mu.Unlock()
			return true
		}
		if e.notify == nil {
			e.notify = make(chan struct{})
		}
		ch := e.notify
		e.mu.Unlock()
		select {
		case <-ch:
		case <-time.After(time.Until(deadline)):
			return false
		}
	}
}
