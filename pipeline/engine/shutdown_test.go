package engine_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/engine"
)

// logBuf collects an engine's log lines.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// running is an engine a test started with its own shutdown timeout and a
// log it can read.
type running struct {
	e     *engine.Engine
	names func(string) string
	log   *logBuf
	dir   string // data_dir
	reg   *prometheus.Registry
	stop  func() time.Duration // cancels, waits for Run, returns how long that took
}

func runEngine(t *testing.T, reg *pipeline.Registry, cfg, shutdownTimeout string) *running {
	t.Helper()
	id := fmt.Sprintf("t%d", seq.Add(1))
	dir := t.TempDir()
	r := &running{names: func(s string) string { return id + "-" + s }, log: &logBuf{}, dir: dir, reg: prometheus.NewRegistry()}
	cfg = strings.ReplaceAll(cfg, "@", id+"-")
	cfg = fmt.Sprintf("[tern]\nmetrics_address = \"\"\nprogress_interval = \"0s\"\nshutdown_timeout = %q\ndata_dir = %q\n%s",
		shutdownTimeout, dir, cfg)
	plan, err := config.Parse(filepath.Join(dir, "t.toml"), []byte(cfg), reg, config.Options{})
	require.NoError(t, err)
	logger := slog.New(slog.NewTextHandler(r.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r.e, err = engine.New(plan, reg, engine.Options{Logger: logger, Metrics: r.reg})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.e.Run(ctx) }()
	var once sync.Once
	var took time.Duration
	r.stop = func() time.Duration {
		once.Do(func() {
			t0 := time.Now()
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(20 * time.Second):
				t.Fatal("engine did not stop")
			}
			took = time.Since(t0)
		})
		return took
	}
	t.Cleanup(func() { r.stop() })
	return r
}

// stuckOut is an output whose Write ignores its context until released,
// as a plugin stuck in a system call would; Close notes whether a Write
// was still running.
type stuckOut struct {
	entered, release  chan struct{}
	once              sync.Once
	writing, closed   atomic.Bool
	closedDuringWrite atomic.Bool
}

func newStuckOut() *stuckOut {
	return &stuckOut{entered: make(chan struct{}), release: make(chan struct{})}
}

func (s *stuckOut) Write(context.Context, []pipeline.Encoded) error {
	s.writing.Store(true)
	defer s.writing.Store(false)
	s.once.Do(func() { close(s.entered) })
	<-s.release
	return nil
}

func (s *stuckOut) Close(context.Context) error {
	if s.writing.Load() {
		s.closedDuringWrite.Store(true)
	}
	s.closed.Store(true)
	return nil
}

// stubbornIn emits one record, then ignores its context until released.
type stubbornIn struct {
	release         chan struct{}
	running, closed atomic.Bool
	closedWhileRun  atomic.Bool
}

func (s *stubbornIn) Run(ctx context.Context, out pipeline.Emitter) error {
	s.running.Store(true)
	defer s.running.Store(false)
	_ = out.Emit(ctx, []pipeline.Record{{Data: []byte("x:stuck")}}, nil)
	<-s.release
	return nil
}

func (s *stubbornIn) Close(context.Context) error {
	if s.running.Load() {
		s.closedWhileRun.Store(true)
	}
	s.closed.Store(true)
	return nil
}

// The engine closes a plugin only after its runner has returned: an output
// stuck in Write past the shutdown timeout (plus its grace second) and an
// input whose Run ignores the stop are left open and named in the log,
// never closed under a running call. Waiting for them leaks no goroutine.
func TestShutdownNeverClosesARunningPlugin(t *testing.T) {
	base := goleak.IgnoreCurrent()
	so, si := newStuckOut(), &stubbornIn{release: make(chan struct{})}
	defer close(si.release)
	defer close(so.release)
	reg := registry()
	reg.Outputs = append(reg.Outputs, pipeline.NewFactory("stuck", "", func() struct{} { return struct{}{} },
		func(pipeline.Settings, struct{}) (pipeline.Output, error) { return so, nil }).WithDefaultEncoder("payload"))
	reg.Inputs = append(reg.Inputs, pipeline.NewFactory("stubborn", "", func() struct{} { return struct{}{} },
		func(pipeline.Settings, struct{}) (pipeline.Input, error) { return si, nil }))
	r := runEngine(t, reg, `
[inputs.in]
type = "stubborn"
decoder = "line"
[outputs.slow]
type = "stuck"
message_matcher = "TRUE"
[outputs.fine]
type = "sink"
name = "@fine"
message_matcher = "TRUE"
`, "300ms")
	select {
	case <-so.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no Write")
	}
	getSink(r.names("fine")).waitFor(t, 1)
	took := r.stop()
	assert.Less(t, took, 10*time.Second)
	assert.False(t, so.closedDuringWrite.Load(), "Close ran while Write was in progress")
	assert.False(t, so.closed.Load(), "an output whose runner has not returned is not closed")
	assert.False(t, si.closedWhileRun.Load(), "Close ran while Run was in progress")
	assert.False(t, si.closed.Load())
	logs := r.log.String()
	for _, id := range []string{"outputs.slow", "inputs.in"} {
		assert.Regexp(t, `not closed.*plugin=`+id, logs)
	}
	// Only the two stuck calls remain: no goroutine waits on their behalf.
	assert.NoError(t, goleak.Find(base,
		goleak.IgnoreAnyFunction("github.com/ternlog/tern/pipeline/engine_test.(*stuckOut).Write"),
		goleak.IgnoreAnyFunction("github.com/ternlog/tern/pipeline/engine_test.(*stubbornIn).Run")))
}

// Draining waits on signals, not a poll: a 300 ms drain wakes the stopping
// goroutine a handful of times, not once every few milliseconds.
func TestDrainIsSignalled(t *testing.T) {
	r := runEngine(t, registry(), twoOutputsNamed, "10s")
	b := getSink(r.names("b"))
	b.fail = func([]pipeline.Encoded) error { time.Sleep(300 * time.Millisecond); return nil }
	ack := getFeed(r.names("in")).send("web:w")
	time.Sleep(50 * time.Millisecond) // the write is under way
	r.stop()
	require.NoError(t, waitAck(t, ack))
	assert.Less(t, engine.DrainWakeups(r.e), int64(10))
}

const twoOutputsNamed = `
[inputs.in]
type = "feed"
name = "@in"
decoder = "line"
[outputs.a]
type = "sink"
name = "@a"
message_matcher = "Type == 'auth'"
[outputs.b]
type = "sink"
name = "@b"
message_matcher = "Type == 'auth' || Type == 'web'"
`

// metric is the value of the series name{labels} (0 when absent).
func (r *running) metric(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := r.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, lp := range m.GetLabel() {
				have[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	return 0
}
