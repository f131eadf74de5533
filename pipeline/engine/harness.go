package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/queue"
)

// A Harness drives a built engine by hand, one step at a time and on one
// goroutine, for `tern test`: records enter through an input's decoder
// chain (the input itself never runs), filters process what reaches them
// and fire their timers on a simulated clock, and what reaches an output
// is kept instead of written. Decoders, filters and encoders are the real
// ones, routed by the real matchers.
//
// The engine must have been built with a clock the caller controls
// (Options.Now reading the time Harness.Advance sets) and is used for
// nothing else: not Run, not a second Harness.
type Harness struct {
	e        *Engine
	clock    *time.Time
	next     map[*filterRunner]time.Time // each ticking filter's next timer
	got      map[string][]Received
	injected map[string][]*pipeline.Message
	encFail  map[string][]Received
}

// Unrouted is the destination id under which a Harness keeps the dead
// letters that no output takes: those a running engine writes to
// <data_dir>/deadletter/unrouted.jsonl.
const Unrouted = "unrouted"

// Received is a message a destination received, with its encoding when the
// destination is an output.
type Received struct {
	Msg     *pipeline.Message
	Encoded []byte // the output's encoder's record; nil for filters
	EncErr  error  // why the encoder refused it (EncodeFailed only)
}

// NewHarness returns a harness over e; clock is the time e's Options.Now
// returns, which Advance moves.
func NewHarness(e *Engine, clock *time.Time) *Harness {
	h := &Harness{
		e: e, clock: clock, next: map[*filterRunner]time.Time{}, got: map[string][]Received{},
		injected: map[string][]*pipeline.Message{}, encFail: map[string][]Received{},
	}
	e.injected = func(id string, m *pipeline.Message) { h.injected[id] = append(h.injected[id], m) }
	e.dead.capture = func(m *pipeline.Message) { h.got[Unrouted] = append(h.got[Unrouted], Received{Msg: m}) }
	for _, r := range e.filters {
		if r.ticker != nil && r.interval > 0 {
			h.next[r] = clock.Add(r.interval)
		}
	}
	return h
}

// stopped is a context that is done: queue operations on it never block,
// so a full queue is an error here rather than a wait.
var stopped = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// Feed decodes records as input name's decoder chain would and routes the
// messages, then lets every filter process what reached it.
func (h *Harness) Feed(input string, records [][]byte) error {
	var r *inputRunner
	for _, in := range h.e.inputs {
		if in.name == input || in.id == input {
			r = in
		}
	}
	if r == nil {
		return fmt.Errorf("no input %q", input)
	}
	if r.dec == nil {
		return fmt.Errorf("input %q has no decoder", input)
	}
	b := pipeline.NewBatch()
	recs := make([]pipeline.Record, len(records))
	for i, rec := range records {
		recs[i] = pipeline.Record{Data: rec, Source: "test://" + r.name}
	}
	r.decodeAll(recs, b)
	now := h.e.now().UnixNano()
	for _, m := range b.Msgs {
		m.FillDefaults(h.e.uuid, now, r.name)
	}
	return h.route(b.Msgs, r.id)
}

// Route routes m as if an input had decoded it (Logger defaults to "test").
func (h *Harness) Route(m *pipeline.Message) error {
	m.FillDefaults(h.e.uuid, h.e.now().UnixNano(), "test")
	return h.route([]*pipeline.Message{m}, "test")
}

func (h *Harness) route(msgs []*pipeline.Message, from string) error {
	if err := h.e.route(stopped, msgs, nil, 0, nil, modeInject, from); err != nil && !errors.Is(err, queue.ErrFull) {
		if errors.Is(err, context.Canceled) {
			return errors.New("a queue is full: feed fewer records per step")
		}
		return err
	}
	return h.drain()
}

// Advance moves the clock on by d, firing each ticking filter's timer at
// every ticker_interval it passes, in time order, and processing what the
// timers inject.
func (h *Harness) Advance(d time.Duration) error {
	end := h.clock.Add(d)
	for ticks := 0; ; ticks++ {
		var first *filterRunner
		for r, at := range h.next {
			if !at.After(end) && (first == nil || at.Before(h.next[first])) {
				first = r
			}
		}
		if first == nil {
			break
		}
		if ticks >= maxHarnessTicks {
			return fmt.Errorf("advance: more than %d timer events; advance in smaller steps", maxHarnessTicks)
		}
		*h.clock = h.next[first]
		h.next[first] = h.clock.Add(first.interval)
		first.tick(stopped)
		if err := h.drain(); err != nil {
			return err
		}
	}
	*h.clock = end
	return nil
}

// maxHarnessTicks bounds the timer events of one Advance.
const maxHarnessTicks = 100_000

// drain lets filters process their queues until none holds anything (what
// they inject is routed on), and moves what outputs received aside. A
// message an output's encoder refuses becomes a dead letter, routed as
// the output runner routes it, instead of a record.
func (h *Harness) drain() error {
	for rounds := 0; ; rounds++ {
		busy := false
		for _, r := range h.e.filters {
			for {
				lease, err := r.q.Next(stopped, 256, 1<<30, 0, 0)
				if err != nil || lease == nil {
					break
				}
				busy = true
				for _, sp := range lease.Entries() {
					inj := injector{r: r, ctx: stopped, loops: sp.Entry.Loops + 1}
					for _, m := range sp.Entry.Msgs[sp.Start:sp.End] {
						h.got[r.id] = append(h.got[r.id], Received{Msg: m})
						r.process(context.Background(), m, inj)
					}
				}
				lease.Commit()
			}
		}
		for _, o := range h.e.outputs {
			for {
				lease, err := o.q.Next(stopped, 256, 1<<30, 0, 0)
				if err != nil || lease == nil {
					break
				}
				var dlb *pipeline.Batch
				for _, m := range lease.Msgs() {
					enc, err := o.safeEncode(nil, m)
					if err != nil {
						h.encFail[o.id] = append(h.encFail[o.id], Received{Msg: m, EncErr: err})
						if dlb == nil {
							dlb = pipeline.NewBatch()
						}
						h.e.messageDeadLetter(dlb, m, "encode_error", o.encID, err, nil)
						continue
					}
					h.got[o.id] = append(h.got[o.id], Received{Msg: m, Encoded: enc})
				}
				lease.Commit()
				if dlb != nil {
					busy = true
					_ = h.e.route(stopped, dlb.Msgs, nil, 0, nil, modeDeadLetter, o.id)
				}
			}
		}
		if !busy {
			return nil
		}
		if rounds > 1000 {
			return errors.New("filters keep injecting: more than 1000 rounds")
		}
	}
}

// Received returns what the destination id ("filters.x", "outputs.y", or
// Unrouted) received so far, in order.
func (h *Harness) Received(id string) []Received { return h.got[id] }

// Injected returns the messages filter id ("filters.x") injected so far
// (alerts included), in order, wherever they were routed.
func (h *Harness) Injected(id string) []*pipeline.Message { return h.injected[id] }

// EncodeFailed returns the messages output id's encoder refused so far,
// with its errors; each became a dead letter.
func (h *Harness) EncodeFailed(id string) []Received { return h.encFail[id] }

// Destinations lists the ids of the filters and outputs.
func (h *Harness) Destinations() []string {
	var ids []string
	for _, d := range h.e.dests {
		ids = append(ids, d.id)
	}
	return ids
}

// Filters lists the ids of the filters.
func (h *Harness) Filters() []string {
	var ids []string
	for _, f := range h.e.filters {
		ids = append(ids, f.id)
	}
	return ids
}

// Now is the simulated clock.
func (h *Harness) Now() time.Time { return *h.clock }
