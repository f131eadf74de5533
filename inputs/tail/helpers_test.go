package tail

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

// sink is an Emitter that records every delivered line by its sequence
// number. With workers > 0 it acknowledges asynchronously, out of order,
// after a random delay, the way outputs of different speed do. Sinks made
// by fork share the oracle: one per process lifetime.
type sink struct {
	*oracle
	crashed  bool // guarded by oracle.mu
	hold     bool
	work     chan job
	wg       sync.WaitGroup
	maxDelay time.Duration
}

type oracle struct {
	mu        sync.Mutex
	count     map[int]int // seq -> deliveries
	recs      []delivered
	holdCond  *sync.Cond
	total     int
	notify    chan struct{}
	badLines  []string
	emitCalls int
	queued    int // jobs handed to workers and not yet through (acknowledged or dropped)
}

func newSink(workers int, maxDelay time.Duration) *sink {
	o := &oracle{count: map[int]int{}}
	o.holdCond = sync.NewCond(&o.mu)
	return o.sink(workers, maxDelay)
}

// fork returns a fresh sink (a new process) recording into the same oracle.
func (s *sink) fork(workers int, maxDelay time.Duration) *sink {
	return s.oracle.sink(workers, maxDelay)
}

func (o *oracle) sink(workers int, maxDelay time.Duration) *sink {
	s := &sink{oracle: o, maxDelay: maxDelay}
	if workers > 0 {
		s.work = make(chan job, 1024)
		for range workers {
			s.wg.Go(s.worker)
		}
	}
	return s
}

type delivered struct {
	seq    int
	source string
	fields []pipeline.Field
}

type job struct {
	recs []delivered
	ack  pipeline.AckFunc
}

func (s *sink) worker() {
	for j := range s.work {
		s.mu.Lock()
		gone := s.crashed
		s.mu.Unlock()
		if s.maxDelay > 0 && !gone {
			time.Sleep(rand.N(s.maxDelay))
		}
		if s.deliver(j.recs) && j.ack != nil {
			j.ack(nil)
		}
		s.mu.Lock()
		s.queued--
		s.mu.Unlock()
	}
}

// waitAcked waits until the workers have acknowledged every job: a
// delivered line is recorded just before its ack, and a test that stops
// the input in between would see it read again at the next start.
func (s *sink) waitAcked(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		n := s.queued
		s.mu.Unlock()
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d jobs not acknowledged", n)
		}
		time.Sleep(time.Millisecond)
	}
}

// stop ends the workers (after the input stopped emitting).
func (s *sink) stop() {
	if s.work != nil {
		close(s.work)
		s.wg.Wait()
		s.work = nil
	}
}

// crash stops every delivery and acknowledgement from now on, as if the
// process had died: what was not delivered yet never will be.
func (s *sink) crash() {
	s.mu.Lock()
	s.crashed = true
	s.hold = false
	s.holdCond.Broadcast()
	s.mu.Unlock()
}

func (s *sink) setHold(v bool) {
	s.mu.Lock()
	s.hold = v
	s.holdCond.Broadcast()
	s.mu.Unlock()
}

func parseSeq(b []byte) (int, bool) {
	if !bytes.HasPrefix(b, []byte("seq=")) {
		return 0, false
	}
	end := bytes.IndexByte(b, ' ')
	if end < 0 {
		end = len(b)
	}
	n, err := strconv.Atoi(string(b[4:end]))
	return n, err == nil
}

func (s *sink) Emit(ctx context.Context, recs []pipeline.Record, ack pipeline.AckFunc) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ds := make([]delivered, 0, len(recs))
	var bad []string
	for _, r := range recs {
		seq, ok := parseSeq(r.Data)
		if !ok {
			bad = append(bad, string(r.Data))
			continue
		}
		ds = append(ds, delivered{seq: seq, source: r.Source, fields: append([]pipeline.Field(nil), r.Fields...)})
	}
	s.mu.Lock()
	s.emitCalls++
	s.badLines = append(s.badLines, bad...)
	for s.hold && !s.crashed && ctx.Err() == nil {
		s.holdCond.Wait()
	}
	crashed := s.crashed
	s.mu.Unlock()
	if crashed {
		return nil // the process is gone: nothing is delivered or acknowledged
	}
	if s.work != nil {
		s.mu.Lock()
		s.queued++
		s.mu.Unlock()
		s.work <- job{ds, ack}
		return nil
	}
	if s.deliver(ds) && ack != nil {
		ack(nil)
	}
	return nil
}

func (s *sink) deliver(ds []delivered) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.crashed {
		return false
	}
	s.oracle.record(ds)
	return true
}

// record counts deliveries; o.mu is held.
func (o *oracle) record(ds []delivered) {
	s := o
	for _, d := range ds {
		s.count[d.seq]++
		s.recs = append(s.recs, d)
	}
	s.total += len(ds)
	if s.notify != nil {
		close(s.notify)
		s.notify = nil
	}
}

// waitSeqs waits until every seq in [from, to) was delivered.
func (s *oracle) waitSeqs(from, to int, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		s.mu.Lock()
		missing := 0
		for q := from; q < to; q++ {
			if s.count[q] == 0 {
				missing++
				break
			}
		}
		if missing == 0 {
			s.mu.Unlock()
			return true
		}
		if s.notify == nil {
			s.notify = make(chan struct{})
		}
		ch := s.notify
		s.mu.Unlock()
		select {
		case <-ch:
		case <-time.After(min(time.Until(deadline), 200*time.Millisecond)):
			if time.Now().After(deadline) {
				return false
			}
		}
	}
}

// report counts missing and duplicated seqs among want.
func (s *oracle) report(want []int) (missing, dups []int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, q := range want {
		switch n := s.count[q]; {
		case n == 0:
			missing = append(missing, q)
		case n > 1:
			dups = append(dups, q)
		}
	}
	return missing, dups
}

func (s *oracle) totalDelivered() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// logWriter appends seq-numbered lines to files the way applications do.
type logWriter struct {
	t    testing.TB
	dir  string
	name string
	f    *os.File
	seq  int
	pad  string
	// written lists every seq with the generation (file incarnation) it
	// went into and its byte offset there.
	gens    [][]byte // content of each generation, as written
	genOf   map[int]int
	offOf   map[int]int64
	mu      sync.Mutex
	rotated int
}

func newLogWriter(t testing.TB, dir, name string, pad int) *logWriter {
	w := &logWriter{t: t, dir: dir, name: name, pad: string(bytes.Repeat([]byte("x"), pad)),
		genOf: map[int]int{}, offOf: map[int]int64{}}
	w.open()
	return w
}

func (w *logWriter) path() string { return filepath.Join(w.dir, w.name) }

func (w *logWriter) open() {
	f, err := os.OpenFile(w.path(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		w.t.Fatal(err)
	}
	w.f = f
	w.gens = append(w.gens, nil)
}

func (w *logWriter) line(seq int) []byte {
	return fmt.Appendf(nil, "seq=%09d gen=%d %s\n", seq, len(w.gens)-1, w.pad)
}

// write appends n lines and returns the seqs written.
func (w *logWriter) write(n int) []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	var buf []byte
	var seqs []int
	g := len(w.gens) - 1
	for range n {
		w.genOf[w.seq] = g
		w.offOf[w.seq] = int64(len(w.gens[g]) + len(buf))
		buf = append(buf, w.line(w.seq)...)
		seqs = append(seqs, w.seq)
		w.seq++
	}
	if _, err := w.f.Write(buf); err != nil {
		w.t.Error(err)
	}
	w.gens[g] = append(w.gens[g], buf...)
	return seqs
}

// rotateCreate renames the file to name.<n> and starts a new one
// (logrotate's create mode).
func (w *logWriter) rotateCreate() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rotated++
	if err := os.Rename(w.path(), fmt.Sprintf("%s.%d", w.path(), w.rotated)); err != nil {
		w.t.Error(err)
	}
	w.f.Close()
	w.open()
}

// truncate empties the file in place; the writer keeps appending to it.
func (w *logWriter) truncate() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.f.Truncate(0); err != nil {
		w.t.Error(err)
	}
	w.gens = append(w.gens, nil)
}

func (w *logWriter) close() { w.f.Close() }

func (w *logWriter) all() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]int, w.seq)
	for i := range out {
		out[i] = i
	}
	return out
}

// harness runs one Input instance.
type harness struct {
	t      testing.TB
	in     *Input
	set    pipeline.Settings
	tel    *pipelinetest.Telemetry
	cancel context.CancelFunc
	done   chan error
}

func testConfig(patterns ...string) Config {
	c := DefaultConfig()
	c.Paths = patterns
	c.ScanInterval = config.Duration(2 * time.Second)
	c.CheckpointInterval = config.Duration(50 * time.Millisecond)
	return c
}

func startInput(t testing.TB, dataDir string, cfg Config, out pipeline.Emitter) *harness {
	t.Helper()
	set := pipelinetest.Settings(t, "inputs.tail")
	set.Now = time.Now
	set.DataDir = dataDir
	set.ConfigDir = "/"
	return startInputWith(t, set, cfg, out)
}

// startInputWith is startInput with the caller's settings (its own logger,
// no temporary directory per call: R18 starts thousands of inputs).
func startInputWith(t testing.TB, set pipeline.Settings, cfg Config, out pipeline.Emitter) *harness {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	in, err := New(set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h := &harness{t: t, in: in, set: set, tel: set.Telemetry.(*pipelinetest.Telemetry), cancel: cancel, done: make(chan error, 1)}
	go func() { h.done <- in.Run(ctx, out) }()
	return h
}

// stop cancels Run and waits for it; clean also calls Close.
func (h *harness) stop(clean bool) error {
	h.t.Helper()
	h.cancel()
	var err error
	select {
	case err = <-h.done:
	case <-time.After(30 * time.Second):
		h.t.Fatal("Run did not return")
	}
	if clean {
		if cerr := h.in.Close(context.Background()); cerr != nil {
			h.t.Error(cerr)
		}
	}
	return err
}

// newTextLogger logs text to w; writes are serialised.
func newTextLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(&lockedWriter{w: w}, nil))
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// requireExactlyOnce fails the test unless s got each of want once.
func requireExactlyOnce(t *testing.T, s *sink, want []int) {
	t.Helper()
	missing, dups := s.report(want)
	if len(missing)+len(dups) > 0 {
		t.Fatalf("missing %v, duplicates %v", head(missing), head(dups))
	}
}
