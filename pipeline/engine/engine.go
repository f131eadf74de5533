// Package engine runs a Plan: it builds the plugins, connects them through
// the router and per-destination queues, and owns their lifecycle, metrics and
// the delivery contract described in package pipeline.
package engine

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ternlog/tern/internal/ratelog"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/queue"
)

// Options are what the caller supplies beyond the plan.
type Options struct {
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// UUID generates message ids (default pipeline.NewUUID).
	UUID func() [16]byte
	// Metrics is the registry to register into (default: a new one).
	Metrics *prometheus.Registry
	// MaxTaps bounds the taps open at once (default DefaultMaxTaps).
	MaxTaps int
	// NewBuffer builds the disk queue of an output with use_buffering; dir
	// is the output's buffer directory. Nil disables disk buffering.
	NewBuffer func(o *config.Output, dir string, set pipeline.Settings) (queue.Queue, error)
}

// Engine is a built pipeline, ready to Run once.
type Engine struct {
	plan     *config.Plan
	log      *slog.Logger
	now      func() time.Time
	uuid     func() [16]byte
	hostname string
	dataDir  string
	maxLoops int
	metrics  *metrics
	logs     *ratelog.Keyed // keys: fixed strings and plugin ids, never from input
	dead     *fallbackFile
	// batches are input batches whose every message was delivered, kept
	// for reuse: no allocation per message or string in steady state.
	batches sync.Pool

	inputs  []*inputRunner
	filters []*filterRunner
	outputs []*outputRunner
	dests   []*dest
	closers []namedCloser
	budget  int64 // of the plugins' MemoryBudgets; 0: none has one
	checks  []checkable
	states  map[string]*pluginState

	inflight atomic.Int64 // trackers not yet acknowledged
	// draining is set while Run waits for queues to empty; then whatever
	// may end the wait (a commit, a last acknowledgement) sends on
	// drainKick. drainWakes counts the wake-ups.
	draining   atomic.Bool
	drainKick  chan struct{}
	drainWakes atomic.Int64
	running    atomic.Int32 // inputs that have not ended
	allEnded   chan struct{}

	finalMu  sync.Mutex
	finalCtx func() context.Context

	// taps is what the router reads (nil: nobody listens); tapMu guards
	// the rest (tap.go).
	taps        atomic.Pointer[tapSet]
	tapMu       sync.Mutex
	tapList     []tapEntry
	tapsStopped bool
	maxTaps     int
	adminAddr   atomic.Value // net.Addr, once the metrics address listens
	started     atomic.Int64 // Unix ms when Run began

	// injected, when set (only by a Harness), sees every message a filter
	// injects, before it is routed.
	injected func(filterID string, m *pipeline.Message)
}

// checkable is a built plugin that can validate the files it will read.
type checkable struct {
	sec *config.Section
	c   pipeline.Checker
}

type namedCloser struct {
	id string
	c  pipeline.Closer
	// life is the runner that calls the plugin: Close waits for it to
	// return, so no method runs after (or during) Close.
	life *lifetime
}

// lifetime tells whether a runner goroutine has returned.
type lifetime struct {
	started bool          // set by Run before the goroutine starts
	done    chan struct{} // closed when it returns
}

func newLifetime() *lifetime { return &lifetime{done: make(chan struct{})} }

// exited reports whether the runner returned or never started.
func (l *lifetime) exited() bool {
	if !l.started {
		return true
	}
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// waitExited waits until every runner of lives has returned or deadline
// passes. No goroutine is left behind when it gives up.
func waitExited(deadline time.Time, lives []*lifetime) {
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	for _, l := range lives {
		if !l.started {
			continue
		}
		select {
		case <-l.done:
		case <-t.C:
			return
		}
	}
}

// New builds every plugin of plan. Constructors do no I/O, so New is also
// what `tern check` runs. Errors name the file and line of the section.
func New(plan *config.Plan, reg *pipeline.Registry, opt Options) (*Engine, error) {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.UUID == nil {
		opt.UUID = pipeline.NewUUID
	}
	if opt.Metrics == nil {
		opt.Metrics = prometheus.NewRegistry()
	}
	host := plan.Global.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	dataDir := plan.Global.DataDir
	if !filepath.IsAbs(dataDir) {
		dataDir = filepath.Join(plan.Dir, dataDir)
	}
	e := &Engine{
		plan: plan, log: opt.Logger, now: opt.Now, uuid: opt.UUID, hostname: host, dataDir: dataDir,
		maxLoops: plan.Global.MaxMessageLoops, metrics: newMetrics(opt.Metrics),
		logs: ratelog.EveryKeyed(10 * time.Second), states: map[string]*pluginState{},
	}
	e.metrics.declare(plan)
	e.finalCtx = context.Background
	e.maxTaps = cmp.Or(opt.MaxTaps, DefaultMaxTaps)
	e.allEnded = make(chan struct{})
	e.drainKick = make(chan struct{}, 1)
	e.dead = newFallbackFile(filepath.Join(dataDir, "deadletter", "unrouted.jsonl"), e.log)
	e.dead.dropped = e.dropFn("engine")
	e.dead.logs = ratelog.EveryKeyed(10 * time.Second)
	waits := telemetry{m: e.metrics, plugin: "engine"}.Counter("deadletter_queue_waits_total",
		"Dead letters whose source can be told that waited for room in the fallback file's queue.")
	e.dead.waited = func() { waits(1) }
	var errs config.Errors
	fail := func(sec *config.Section, err error) { errs = append(errs, sec.Errors(err)...) }
	settings := func(id, kind, name string) pipeline.Settings {
		return pipeline.Settings{
			Name: id, Logger: e.log.With("plugin", id), Now: e.now, Hostname: host,
			ConfigDir: plan.Dir, DataDir: filepath.Join(dataDir, kind, name),
			Telemetry: telemetry{m: e.metrics, plugin: id},
		}
	}

	for _, o := range plan.Outputs {
		encSec := plan.Encoders[o.Encoder]
		if encSec == nil || o.Matcher == nil {
			continue // already reported by the loader
		}
		ef, ok := pipeline.Lookup(reg.Encoders, encSec.Type)
		if !ok {
			continue
		}
		enc, err := ef.Build(settings(encSec.ID(), "encoders", encSec.Name), encSec.Config)
		if err != nil {
			fail(encSec, err)
			continue
		}
		of, _ := pipeline.Lookup(reg.Outputs, o.Type)
		set := settings(o.ID(), "outputs", o.Name)
		set.Encoder = enc
		out, err := of.Build(set, o.Config)
		if err != nil {
			fail(&o.Section, err)
			continue
		}
		var q queue.Queue
		if o.UseBuffering {
			if opt.NewBuffer == nil {
				fail(&o.Section, errors.New("use_buffering: disk buffering is not available in this build"))
				continue
			}
			q, err = opt.NewBuffer(o, filepath.Join(dataDir, "buffer", o.Name), set)
			if err != nil {
				fail(&o.Section, err)
				continue
			}
		} else {
			q = queue.NewMemory(o.QueueMaxBytes, o.FullAction == "drop_newest")
		}
		r := &outputRunner{
			e: e, id: o.ID(), out: out, enc: enc, encID: encSec.ID(), q: q, cfg: o, set: set,
			m: e.metrics.output(o.ID()), state: e.state(o.ID()), life: newLifetime(),
		}
		if so, ok := out.(pipeline.Separated); ok {
			r.sep = bytes.Clone(so.Separator())
		}
		e.outputs = append(e.outputs, r)
		e.metrics.queueGauges(o.ID(), q.Bytes, q.Len)
		e.addCloser(o.ID(), out, r.life)
		e.addCloser(encSec.ID(), enc, r.life)
		e.addCheck(&o.Section, out)
		e.addCheck(encSec, enc)
	}
	for _, f := range plan.Filters {
		if f.Matcher == nil {
			continue
		}
		ff, _ := pipeline.Lookup(reg.Filters, f.Type)
		set := settings(f.ID(), "filters", f.Name)
		flt, err := ff.Build(set, f.Config)
		if err != nil {
			fail(&f.Section, err)
			continue
		}
		r := &filterRunner{
			e: e, id: f.ID(), name: f.Name, f: flt, interval: f.TickerInterval, set: set,
			q: queue.NewMemory(f.QueueMaxBytes, false), m: e.metrics.filter(f.ID()), state: e.state(f.ID()),
			life: newLifetime(),
		}
		r.ticker, _ = flt.(pipeline.Ticker)
		if f.TickerInterval > 0 && r.ticker == nil {
			errs = append(errs, &config.Error{File: f.File, Line: f.Line, Key: f.ID() + ".ticker_interval", Msg: "filter type " + f.Type + " has no timer (remove ticker_interval)"})
		}
		e.filters = append(e.filters, r)
		e.metrics.queueGauges(f.ID(), r.q.Bytes, r.q.Len)
		e.addCloser(f.ID(), flt, r.life)
		e.addCheck(&f.Section, flt)
		e.addBudget(flt)
	}
	for _, in := range plan.Inputs {
		if len(in.Decoders) == 0 {
			fail(&in.Section, errors.New("decoder: required (a [decoders.*] section or a decoder type)"))
			continue
		}
		inf, _ := pipeline.Lookup(reg.Inputs, in.Type)
		set := settings(in.ID(), "inputs", in.Name)
		r := &inputRunner{e: e, id: in.ID(), name: in.Name, set: set, m: e.metrics.input(in.ID()), state: e.state(in.ID()), life: newLifetime()}
		ok := true
		for i, dn := range in.Decoders {
			sec := plan.Decoders[dn]
			df, found := pipeline.Lookup(reg.Decoders, sec.Type)
			if !found {
				ok = false
				continue
			}
			d, err := df.Build(settings(sec.ID(), "decoders", sec.Name), sec.Config)
			if err != nil {
				fail(sec, err)
				ok = false
				continue
			}
			e.addCloser(sec.ID(), d, r.life)
			e.addCheck(sec, d)
			e.addBudget(d)
			if i == 0 {
				r.dec, r.decID = d, sec.ID()
				continue
			}
			t, isT := d.(pipeline.Transformer)
			if !isT {
				fail(&in.Section, fmt.Errorf("decoder: %s (type %s) cannot follow another decoder", sec.ID(), sec.Type))
				ok = false
				continue
			}
			r.transformers = append(r.transformers, t)
			r.trIDs = append(r.trIDs, sec.ID())
		}
		plug, err := inf.Build(set, in.Config)
		if err != nil {
			fail(&in.Section, err)
			continue
		}
		r.in = plug
		if ok {
			e.inputs = append(e.inputs, r)
			e.addCloser(in.ID(), plug, r.life)
			e.addCheck(&in.Section, plug)
		}
	}
	if len(errs) > 0 {
		for _, o := range e.outputs {
			_ = o.q.Close() // disk buffers hold files and a writer
		}
		e.closeAll(context.Background())
		return nil, errs
	}
	for _, f := range e.filters {
		sec := findFilter(plan, f.id)
		e.dests = append(e.dests, &dest{id: f.id, match: sec.Matcher, q: f.q, mem: f.q, filter: f, dropped: e.dropFn(f.id)})
	}
	for _, o := range e.outputs {
		e.dests = append(e.dests, &dest{id: o.id, match: o.cfg.Matcher, q: o.q, dropped: e.dropFn(o.id)})
	}
	return e, nil
}

func findFilter(plan *config.Plan, id string) *config.Filter {
	for _, f := range plan.Filters {
		if f.ID() == id {
			return f
		}
	}
	return nil
}

func (e *Engine) dropFn(id string) func(string, int) {
	return func(reason string, n int) { e.metrics.dropped(id, reason, n) }
}

func (e *Engine) state(id string) *pluginState {
	s := &pluginState{state: "built", since: time.Now()}
	e.states[id] = s
	return s
}

func (e *Engine) addCheck(sec *config.Section, p any) {
	if c, ok := p.(pipeline.Checker); ok {
		e.checks = append(e.checks, checkable{sec, c})
	}
}

// Check runs every plugin's Checker (scripts, definitions, certificates the
// config names) and reports the failures placed at their sections. It reads
// files but opens no socket and writes nothing; `tern check` calls it.
func (e *Engine) Check() error {
	var errs config.Errors
	for _, err := range e.checkAdmin() {
		errs = append(errs, &config.Error{File: e.plan.File, Key: "tern", Msg: err.Error()})
	}
	for _, c := range e.checks {
		if err := c.c.Check(); err != nil {
			errs = append(errs, c.sec.Errors(err)...)
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

func (e *Engine) addBudget(p any) {
	if b, ok := p.(pipeline.MemoryBudgeter); ok {
		e.budget += b.MemoryBudget()
	}
}

// MemoryBudget is a soft memory limit for the process (Go's GOMEMLIMIT)
// when its plugins bound what their scripts hold: their budgets, the
// filter and output queues (queue_max_bytes each; the overflow allowances
// beside them fill only when a destination stalls) and baseMemory for
// everything else. It is a target for the collector, not a cap: past it,
// Go collects more often (at most half the CPU), it never fails an
// allocation. ok is false when no plugin has a budget: the limit is then
// left to the operator.
func (e *Engine) MemoryBudget() (limit int64, ok bool) {
	if e.budget == 0 {
		return 0, false
	}
	limit = e.budget + baseMemory
	for _, f := range e.plan.Filters {
		limit += int64(f.QueueMaxBytes)
	}
	for _, o := range e.plan.Outputs {
		limit += int64(o.QueueMaxBytes)
	}
	return limit, true
}

// baseMemory is the working set of the router itself (batches in flight,
// buffers, the runtime), beside what MemoryBudget counts.
const baseMemory = 8 << 20

func (e *Engine) addCloser(id string, p any, life *lifetime) {
	if c, ok := p.(pipeline.Closer); ok {
		e.closers = append(e.closers, namedCloser{id, c, life})
	}
}

// Plan is the plan the engine runs.
func (e *Engine) Plan() *config.Plan { return e.plan }

// Hostname is the host name the engine stamps on messages it creates.
func (e *Engine) Hostname() string { return e.hostname }

// Run starts the pipeline and blocks until ctx ends, then drains and stops:
// inputs first, then filters once their queues are empty (with a last
// timer_event), then outputs once theirs are; anything still queued when
// the shutdown timeout passes is abandoned, so its sources are not
// acknowledged. Run returns nil after a clean stop.
func (e *Engine) Run(ctx context.Context) error {
	e.started.Store(e.now().UnixMilli())
	for _, id := range e.dataDirs() {
		if err := os.MkdirAll(id, 0o750); err != nil {
			return fmt.Errorf("data_dir: %w", err)
		}
	}
	var admin *http.Server
	if e.plan.Global.MetricsAddress != "" {
		var err error
		if admin, err = e.startAdmin(); err != nil {
			return err
		}
	}

	e.dead.start()
	outCtx, stopOutputs := context.WithCancel(context.Background())
	filtCtx, stopFilters := context.WithCancel(context.Background())
	inCtx, stopInputs := context.WithCancel(ctx)
	defer stopOutputs()
	defer stopFilters()
	defer stopInputs()

	var outLives, filtLives, inLives []*lifetime
	spawn := func(l *lifetime, run func()) {
		l.started = true
		go func() {
			defer close(l.done)
			run()
		}()
	}
	for _, o := range e.outputs {
		o.state.set("running", nil)
		outLives = append(outLives, o.life)
		spawn(o.life, func() { o.run(outCtx) })
	}
	for _, f := range e.filters {
		f.state.set("running", nil)
		filtLives = append(filtLives, f.life)
		spawn(f.life, func() { f.run(filtCtx) })
	}
	e.running.Store(int32(len(e.inputs)))
	for _, in := range e.inputs {
		inLives = append(inLives, in.life)
		spawn(in.life, func() { in.run(inCtx) })
	}
	progressDone := make(chan struct{})
	go e.progress(inCtx, progressDone)
	e.log.Info("tern started", "inputs", len(e.inputs), "filters", len(e.filters), "outputs", len(e.outputs))

	select {
	case <-ctx.Done():
	case <-e.allEnded:
		e.log.Info("every input has ended")
	}
	deadline := time.Now().Add(e.plan.Global.ShutdownTimeout.D())
	stopCtx, cancelStop := context.WithDeadline(context.Background(), deadline)
	defer cancelStop()
	e.log.Info("stopping: inputs first", "timeout", e.plan.Global.ShutdownTimeout.String())
	stopInputs()
	waitExited(deadline, inLives)
	<-progressDone

	// Filters drain first; their last timer_event may still inject.
	e.waitDrained(deadline, true)
	e.finalMu.Lock()
	e.finalCtx = func() context.Context { return stopCtx }
	e.finalMu.Unlock()
	stopFilters()
	waitExited(deadline, filtLives)
	e.waitDrained(deadline, false)
	e.draining.Store(false)
	stopOutputs()
	// A second of grace: a Write that honours its context returns now.
	waitExited(deadline.Add(time.Second), outLives)

	abandoned, kept := 0, 0
	for _, d := range e.dests {
		if dq, ok := d.q.(interface{ Durable() bool }); ok && dq.Durable() {
			kept += d.q.Len() // acknowledged once on disk; delivered after the restart
		} else {
			abandoned += d.q.Len()
		}
		_ = d.q.Close()
	}
	if abandoned > 0 {
		e.log.Warn("shutdown timeout: messages left undelivered; their sources were not acknowledged", "messages", abandoned)
	}
	if kept > 0 {
		e.log.Info("messages kept in disk buffers for the next start", "messages", kept)
	}
	e.stopTaps()
	e.closeAll(stopCtx)
	if admin != nil {
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_ = admin.Shutdown(sctx)
		cancel()
	}
	// The writer has written what drained; give a stalled file the same
	// grace as the outputs.
	deadEnd := deadline
	if now := time.Now(); now.After(deadEnd) {
		deadEnd = now
	}
	dctx, cancelDead := context.WithDeadline(context.Background(), deadEnd.Add(time.Second))
	e.dead.close(dctx)
	cancelDead()
	e.log.Info("tern stopped")
	return nil
}

// inputEnded is called once per input that returned ErrEndOfInput.
func (e *Engine) inputEnded() {
	if e.running.Add(-1) == 0 {
		close(e.allEnded)
	}
}

func (e *Engine) finalCtxNow() context.Context {
	e.finalMu.Lock()
	defer e.finalMu.Unlock()
	return e.finalCtx()
}

func (e *Engine) dataDirs() []string {
	var dirs []string
	for _, in := range e.inputs {
		dirs = append(dirs, in.set.DataDir)
	}
	for _, f := range e.filters {
		dirs = append(dirs, f.set.DataDir)
	}
	for _, o := range e.outputs {
		dirs = append(dirs, o.set.DataDir)
	}
	return dirs
}

// waitDrained waits until the filter queues (filters = true) or the output
// queues are empty, and, for outputs, every acknowledgement has been given.
// Once filters have stopped, what other filters' last ticks queued for them
// is not waited for: it would never be processed. It sleeps until a runner
// commits or an acknowledgement completes (changed), never polls.
func (e *Engine) waitDrained(deadline time.Time, filters bool) {
	e.draining.Store(true) // before looking: a change after this kicks
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	for !e.drained(filters) {
		select {
		case <-e.drainKick:
			e.drainWakes.Add(1)
		case <-t.C:
			return
		}
	}
}

func (e *Engine) drained(filters bool) bool {
	for _, d := range e.dests {
		if (d.filter != nil) != filters {
			continue
		}
		if d.q.Bytes() > 0 || d.q.Len() > 0 {
			return false
		}
	}
	return filters || e.inflight.Load() == 0 || e.onlyFiltersHold()
}

// changed wakes waitDrained after a queue shrank or an acknowledgement
// completed; outside shutdown it costs one atomic load.
func (e *Engine) changed() {
	if e.draining.Load() {
		select {
		case e.drainKick <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
}

// onlyFiltersHold reports whether every unacknowledged batch is held only by
// entries in (stopped) filter queues.
func (e *Engine) onlyFiltersHold() bool {
	for _, d := range e.dests {
		if d.filter != nil && d.q.Len() > 0 {
			return true
		}
	}
	return false
}

// closeAll closes every plugin whose runner has returned (or never ran).
// One still running after the shutdown timeout stays open: closing it
// under a running Write or Run would break the Closer contract. It is
// named in the log, and its goroutine lives on until the call returns.
func (e *Engine) closeAll(ctx context.Context) {
	for i := len(e.closers) - 1; i >= 0; i-- {
		c := e.closers[i]
		if c.life != nil && !c.life.exited() {
			e.log.Error("plugin not closed: its runner is still in a call after the shutdown timeout", "plugin", c.id)
			continue
		}
		if err := c.c.Close(ctx); err != nil {
			e.log.Warn("close failed", "plugin", c.id, "err", err)
		}
	}
	e.closers = nil
}
