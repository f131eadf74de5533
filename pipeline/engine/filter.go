package engine

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/queue"
)

// filterRunner feeds one filter from its queue and drives its ticker, both on
// one goroutine as the Filter contract promises.
type filterRunner struct {
	e        *Engine
	id, name string
	f        pipeline.Filter
	ticker   pipeline.Ticker
	interval time.Duration
	q        *queue.Memory
	set      pipeline.Settings
	m        *filterMetrics
	state    *pluginState
	life     *lifetime
}

// injector ties injected messages to the acknowledgement of the message
// being processed (tr is nil for timer injections).
type injector struct {
	r     *filterRunner
	ctx   context.Context
	tr    *tracker
	loops int
}

func (in injector) Inject(m *pipeline.Message) error {
	r := in.r
	e := r.e
	if in.loops > e.maxLoops {
		e.metrics.dropped(r.id, "loop", 1)
		return fmt.Errorf("message loop limit %d reached", e.maxLoops)
	}
	m.FillDefaults(e.uuid, e.now().UnixNano(), r.name)
	if m.Hostname == "" {
		m.Hostname = e.hostname
	}
	r.m.injected.Inc()
	if e.injected != nil {
		e.injected(r.id, m)
	}
	if m.Type == DeadLetterType {
		// A filter giving up on a message (a Lua failure_policy of
		// "deadletter"): counted like the engine's own dead letters.
		e.metrics.deadLetter(r.id, "filter_failed")
	}
	return e.route(in.ctx, []*pipeline.Message{m}, in.tr, in.loops, r, modeInject, r.id)
}

func (r *filterRunner) run(ctx context.Context) {
	var next time.Time
	if r.ticker != nil && r.interval > 0 {
		next = time.Now().Add(r.interval)
	}
	for {
		wait := time.Duration(0)
		if !next.IsZero() {
			wait = max(time.Until(next), time.Millisecond)
		}
		lease, err := r.q.Next(ctx, 256, 1<<30, 0, wait)
		if err != nil {
			// Stopping: one last timer_event so aggregating filters can
			// flush, on this goroutine as the contract promises.
			r.tick(r.e.finalCtxNow())
			return
		}
		if lease != nil {
			for _, sp := range lease.Entries() {
				tr := ownerTracker(sp.Entry.Owner)
				inj := injector{r: r, ctx: ctx, tr: tr, loops: sp.Entry.Loops + 1}
				for _, m := range sp.Entry.Msgs[sp.Start:sp.End] {
					r.process(ctx, m, inj)
				}
			}
			lease.Commit()
			r.e.changed()
		}
		if !next.IsZero() && !time.Now().Before(next) {
			r.tick(ctx)
			next = time.Now().Add(r.interval)
		}
	}
}

func (r *filterRunner) process(ctx context.Context, m *pipeline.Message, inj injector) {
	r.m.processed.Inc()
	err := func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				r.e.log.Error("filter panic", "plugin", r.id, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				err = fmt.Errorf("panic: %v", p)
			}
		}()
		return r.f.Process(ctx, m, inj)
	}()
	if err != nil {
		r.m.errors.Inc()
		r.e.logs.For(r.id+"/process").Warn(r.e.log, "filter failed on a message", "plugin", r.id, "err", err)
	}
}

func (r *filterRunner) tick(ctx context.Context) {
	if r.ticker == nil {
		return
	}
	err := func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				r.e.log.Error("filter panic in Tick", "plugin", r.id, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
				err = fmt.Errorf("panic: %v", p)
			}
		}()
		return r.ticker.Tick(ctx, r.e.now(), injector{r: r, ctx: ctx, loops: 1})
	}()
	if err != nil {
		r.m.errors.Inc()
		r.e.logs.For(r.id+"/tick").Warn(r.e.log, "filter tick failed", "plugin", r.id, "err", err)
	}
}
