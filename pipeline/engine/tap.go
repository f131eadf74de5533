package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/matcher"
)

// TapOptions say what a tap receives.
type TapOptions struct {
	// Plugin names a filter or output, by id ("outputs.siem") or by name
	// when that is unambiguous ("siem"): the tap receives what the router
	// hands it. Empty: every message the router routes.
	Plugin string
	// Match keeps the messages it accepts; nil keeps all.
	Match *matcher.Matcher
	// Rate caps the messages handed to the tap per second (a token bucket
	// holding one second's worth, at least one message); messages over it
	// are skipped and counted. 0: no cap.
	Rate float64
	// Buffer and MaxBytes bound what waits for a slow reader, in messages
	// and in bytes (pipeline.Message.Size). Defaults: 1024 and 8 MiB.
	Buffer   int
	MaxBytes int
}

// TapStats count what a tap saw. Matched = Skipped + Dropped + delivered.
type TapStats struct {
	Matched uint64 // messages the matcher accepted
	Skipped uint64 // over the rate cap (sampling)
	Dropped uint64 // buffer full: the reader was too slow
}

// Errors of Engine.Tap.
var (
	ErrTooManyTaps = errors.New("too many taps")
	ErrTapStopped  = errors.New("the engine has stopped")
)

// DefaultMaxTaps is the number of taps an engine allows at once unless
// Options.MaxTaps says otherwise.
const DefaultMaxTaps = 8

// Tap is a subscription: the one way to observe what flows through a
// running engine (Engine.Tap opens one). It receives copies of the messages the router routes (TapOptions.Plugin
// empty) or of those one filter or output receives (Plugin set: the messages
// its queue accepted). `tern tap`, the dashboard's alert feed and `tern test`
// all read through taps. The rules, which the routing path depends on:
//
//   - Free when nobody listens: the router loads one atomic pointer per
//     routed batch and finds it nil.
//   - Never blocks or slows the pipeline: the matcher and the rate cap run on
//     the routing goroutine, then a copy goes into the tap's bounded buffer
//     (Buffer messages, MaxBytes bytes) without waiting; when the buffer is
//     full the message is dropped for this tap only, and counted (Dropped).
//     A tap never holds back an acknowledgement.
//   - Copies: a message belongs to its batch, and its strings are views into
//     chunks the batch shares (pipeline.Batch.Str), so the tap hands out
//     pipeline.Message.DeepClone copies that the reader owns.
//   - Ends with the engine: once Run has drained the pipeline (after the
//     last Tick of the filters and the last delivery), every tap is closed;
//     Next returns what is still buffered, then io.EOF. A test subscribes
//     before Run and reads everything the run routed.
//
// A tap sees a message when the router routes it: decoded records, messages
// filters inject (alerts among them), and dead letters. Messages read back
// from a disk buffer after a restart were routed by the previous process
// and are not seen again.
//
// Next and Close may be called from any goroutine.
type Tap struct {
	e        *Engine
	plugin   string // resolved destination id, "" for the router
	match    *matcher.Matcher
	maxBytes int64

	ch    chan tapped
	held  atomic.Int64 // bytes waiting in ch
	done  chan struct{}
	close sync.Once

	rate   float64
	mu     sync.Mutex // the token bucket, held by offer for a batch
	tokens float64
	last   time.Time

	matched, skipped, dropped atomic.Uint64
}

type tapped struct {
	m    *pipeline.Message
	size int
}

// tapSet is the immutable snapshot the router reads: taps on every routed
// message, and taps per destination (indexed like Engine.dests).
type tapSet struct {
	all    []*Tap
	byDest [][]*Tap
}

// Tap subscribes to the messages described by opt. It may be called before
// Run (a test that wants every message) or while the engine runs.
func (e *Engine) Tap(opt TapOptions) (*Tap, error) {
	if opt.Buffer <= 0 {
		opt.Buffer = 1024
	}
	if opt.MaxBytes <= 0 {
		opt.MaxBytes = 8 << 20
	}
	if opt.Rate < 0 {
		return nil, fmt.Errorf("tap: rate must be 0 (no cap) or more")
	}
	di := -1
	if opt.Plugin != "" {
		var err error
		if di, err = e.findDest(opt.Plugin); err != nil {
			return nil, err
		}
	}
	t := &Tap{
		e: e, match: opt.Match, maxBytes: int64(opt.MaxBytes),
		ch: make(chan tapped, opt.Buffer), done: make(chan struct{}),
		rate: opt.Rate, tokens: max(opt.Rate, 1), last: time.Now(),
	}
	if di >= 0 {
		t.plugin = e.dests[di].id
	}
	e.tapMu.Lock()
	defer e.tapMu.Unlock()
	if e.tapsStopped {
		return nil, ErrTapStopped
	}
	if len(e.tapList) >= e.maxTaps {
		return nil, fmt.Errorf("%w: %d are open", ErrTooManyTaps, len(e.tapList))
	}
	e.tapList = append(e.tapList, tapEntry{t, di})
	e.publishTaps()
	return t, nil
}

type tapEntry struct {
	t    *Tap
	dest int // index in e.dests, -1 for the router
}

// publishTaps rebuilds the router's snapshot; e.tapMu is held.
func (e *Engine) publishTaps() {
	if len(e.tapList) == 0 {
		e.taps.Store(nil)
		return
	}
	s := &tapSet{}
	for _, te := range e.tapList {
		if te.dest < 0 {
			s.all = append(s.all, te.t)
			continue
		}
		if s.byDest == nil {
			s.byDest = make([][]*Tap, len(e.dests))
		}
		s.byDest[te.dest] = append(s.byDest[te.dest], te.t)
	}
	e.taps.Store(s)
}

// findDest resolves a filter or output by id or unambiguous name.
func (e *Engine) findDest(name string) (int, error) {
	found := -1
	for i, d := range e.dests {
		if d.id == name {
			return i, nil
		}
		if _, n, _ := strings.Cut(d.id, "."); n == name {
			if found >= 0 {
				return -1, fmt.Errorf("tap: %q names both %s and %s; give the id", name, e.dests[found].id, d.id)
			}
			found = i
		}
	}
	if found < 0 {
		ids := make([]string, len(e.dests))
		for i, d := range e.dests {
			ids[i] = d.id
		}
		sort.Strings(ids)
		return -1, fmt.Errorf("tap: no filter or output %q (there are: %s)", name, strings.Join(ids, ", "))
	}
	return found, nil
}

// Plugin is the id of the filter or output the tap watches, "" for the
// router.
func (t *Tap) Plugin() string { return t.plugin }

// Next returns the next message, waiting for one. After the tap is closed
// (Close, or the engine stopped) it returns what is still buffered, then
// io.EOF. The message is the reader's own.
func (t *Tap) Next(ctx context.Context) (*pipeline.Message, error) {
	select {
	case x := <-t.ch:
		return t.took(x), nil
	default:
	}
	select {
	case x := <-t.ch:
		return t.took(x), nil
	case <-t.done:
		select {
		case x := <-t.ch:
			return t.took(x), nil
		default:
			return nil, io.EOF
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (t *Tap) took(x tapped) *pipeline.Message {
	t.held.Add(-int64(x.size))
	return x.m
}

// Done is closed when the tap is closed.
func (t *Tap) Done() <-chan struct{} { return t.done }

// Stats returns the counts so far.
func (t *Tap) Stats() TapStats {
	return TapStats{Matched: t.matched.Load(), Skipped: t.skipped.Load(), Dropped: t.dropped.Load()}
}

// Close unsubscribes. Messages already buffered can still be read.
func (t *Tap) Close() {
	t.close.Do(func() {
		e := t.e
		e.tapMu.Lock()
		for i, te := range e.tapList {
			if te.t == t {
				e.tapList = append(e.tapList[:i:i], e.tapList[i+1:]...)
				break
			}
		}
		e.publishTaps()
		e.tapMu.Unlock()
		close(t.done)
	})
}

// stopTaps closes every tap for good; Run calls it once the pipeline has
// drained.
func (e *Engine) stopTaps() {
	e.tapMu.Lock()
	e.tapsStopped = true
	list := e.tapList
	e.tapMu.Unlock()
	for _, te := range list {
		te.t.Close()
	}
}

// offer runs on the routing goroutine: it must never wait. The rate
// bucket is locked once per batch, and only when a message matched.
func (t *Tap) offer(msgs []*pipeline.Message) {
	locked := false
	for _, m := range msgs {
		if t.match != nil && !t.match.Match(m) {
			continue
		}
		t.matched.Add(1)
		if t.rate > 0 {
			if !locked {
				t.mu.Lock()
				locked = true
				now := time.Now()
				t.tokens = min(max(t.rate, 1), t.tokens+now.Sub(t.last).Seconds()*t.rate)
				t.last = now
			}
			if t.tokens < 1 {
				t.skipped.Add(1)
				continue
			}
			t.tokens--
		}
		size := m.Size()
		if len(t.ch) == cap(t.ch) || t.held.Load()+int64(size) > t.maxBytes {
			t.dropped.Add(1)
			continue
		}
		t.held.Add(int64(size))
		select {
		case t.ch <- tapped{m.DeepClone(), size}:
		default: // filled by another routing goroutine meanwhile
			t.held.Add(-int64(size))
			t.dropped.Add(1)
		}
	}
	if locked {
		t.mu.Unlock()
	}
}
