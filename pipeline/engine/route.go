package engine

import (
	"context"
	"sync/atomic"
	"unsafe"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/matcher"
	"github.com/ternlog/tern/pipeline/queue"
)

// tracker follows one acknowledgement: the records of one Emit, and every
// message decoded or injected on their behalf. It holds one reference per
// queue entry still outstanding plus one for the router while it routes.
//
// Of those, users are the references that may read the input's batch: the
// router's and those of entries that share its messages (entries of copies
// hold a copyRef instead). Once the last user is gone the batch goes back
// to the engine's pool, unless a delivery failed (a runner stopped
// mid-lease may still read it).
type tracker struct {
	pending atomic.Int32
	users   atomic.Int32
	failed  atomic.Bool
	ack     pipeline.AckFunc
	e       *Engine
	batch   atomic.Pointer[pipeline.Batch] // taken once, by the last user
}

func (e *Engine) newTracker(ack pipeline.AckFunc) *tracker {
	t := &tracker{ack: ack, e: e}
	t.pending.Store(1)
	t.users.Store(1)
	e.inflight.Add(1)
	return t
}

// hold adds a reference that may read the batch (Done releases it).
func (t *tracker) hold() {
	t.pending.Add(1)
	t.users.Add(1)
}

// holdCopy adds a reference to messages of their own: the returned owner
// releases it without holding the batch.
func (t *tracker) holdCopy() copyRef {
	t.pending.Add(1)
	return copyRef{t}
}

// Done releases one reference; the last one acknowledges.
func (t *tracker) Done() {
	if t.users.Add(-1) == 0 && !t.failed.Load() {
		if b := t.batch.Swap(nil); b != nil {
			// Reset on the input's goroutine when it takes the batch
			// again (Emit): clearing here, on the output's, would leave
			// every cache line of the slabs modified in this core's cache
			// for the input to fetch back as it writes the next messages.
			b.Retire()
			t.e.batches.Put(b)
		}
	}
	t.release()
}

func (t *tracker) release() {
	if t.pending.Add(-1) != 0 {
		return
	}
	if t.ack != nil {
		if t.failed.Load() {
			t.ack(pipeline.ErrStopped)
		} else {
			t.ack(nil)
		}
	}
	t.e.inflight.Add(-1)
	t.e.changed()
}

// Abandon releases a reference whose messages will not be delivered.
func (t *tracker) Abandon() {
	t.failed.Store(true)
	t.Done()
}

// copyRef owns a queue entry of copies (route's selective destinations):
// it counts for the acknowledgement, not as a user of the batch.
type copyRef struct{ t *tracker }

func (c copyRef) Done() { c.t.release() }

func (c copyRef) Abandon() {
	c.t.failed.Store(true)
	c.t.release()
}

// ownerTracker is the tracker behind an entry's owner, or nil.
func ownerTracker(o queue.Owner) *tracker {
	switch o := o.(type) {
	case *tracker:
		return o
	case copyRef:
		return o.t
	}
	return nil
}

// dest is a filter or output as the router sees it.
type dest struct {
	id      string
	match   *matcher.Matcher
	q       queue.Queue
	mem     *queue.Memory // set for filters, which take overflow
	filter  *filterRunner // the filter itself, never routed its own injections
	dropped func(reason string, n int)
}

// selectiveShare: a destination taking at most 1/selectiveShare of a
// batch's bytes (as Message.Size counts them) gets copies of its messages
// (route), so what its queue holds stays within about selectiveShare times
// what it counts. Counting messages instead would miss a destination that
// takes many small messages out of a batch of large ones.
const selectiveShare = 4

// entryBytes is what a queue entry costs besides its messages: the Entry
// and the tracker it holds. A selective destination's entries often carry
// one message each, so this is a fair part of what its queue holds.
const entryBytes = int(unsafe.Sizeof(queue.Entry{}) + unsafe.Sizeof(tracker{}))

type routeMode int

const (
	// modeBlock waits for room in every queue (inputs).
	modeBlock routeMode = iota
	// modeInject waits for room in output queues but never in filter
	// queues (filters). A filter waiting on another filter's queue can
	// deadlock as soon as that filter injects back into its input path
	// (A waits on B's full queue while B waits on A's), and Heka's
	// max_message_loops bounds only the depth of such loops, not their
	// width. So an injection takes the room a filter queue has, then its
	// overflow allowance (queue_max_bytes again), and past that it is
	// dropped and counted as overflow_full. Output runners never wait on
	// filters, so waiting on output queues is safe.
	modeInject
	// modeDeadLetter never waits on a queue (dead letters raised by
	// output runners, tied to the lease they come from): a destination
	// whose queue and overflow allowance are full is counted
	// (overflow_full) and the dead letter goes to the fallback file
	// instead, which waits for room if its source can be told.
	modeDeadLetter
)

// stackMsgs covers the batches stream inputs emit (1024 records by
// default, up to twice that with the rest of a read), so that routing one
// allocates no scratch.
const stackMsgs = 2048

// route hands msgs to every destination whose matcher accepts them. Messages
// are shared: a destination that takes every message gets msgs itself.
// tr may be nil for messages nobody waits for (timer injections).
func (e *Engine) route(ctx context.Context, msgs []*pipeline.Message, tr *tracker, loops int, origin *filterRunner, mode routeMode, from string) error {
	if len(msgs) == 0 {
		return nil
	}
	taps := e.taps.Load() // nil unless someone listens (tap.go)
	if taps != nil {
		for _, t := range taps.all {
			t.offer(msgs)
		}
	}
	var matchedArr [stackMsgs]bool
	var sizeArr [stackMsgs]int32
	var matched []bool
	var sizes []int32
	if len(msgs) <= stackMsgs {
		matched, sizes = matchedArr[:len(msgs)], sizeArr[:len(msgs)]
	} else {
		matched, sizes = make([]bool, len(msgs)), make([]int32, len(msgs))
	}
	total := 0
	for i, m := range msgs {
		s := m.Size()
		sizes[i] = int32(s)
		total += s
	}
	if mode == modeBlock && tr != nil {
		// An input's batch: what its messages count must cover the read
		// buffer they may point into, or they stop pointing into it.
		if b := tr.batch.Load(); b != nil {
			b.FitLent(total)
		}
	}
	var firstErr error
	var spill []bool // dead letters a full destination refused
	for di, d := range e.dests {
		if d.filter != nil && d.filter == origin {
			continue
		}
		sub := msgs
		all := true
		bytes := 0
		for i, m := range msgs {
			if d.match.Match(m) {
				matched[i] = true
				if !all {
					sub = append(sub, m)
					bytes += int(sizes[i])
				}
			} else if all {
				all = false
				sub = make([]*pipeline.Message, 0, len(msgs)-i)
				for j := 0; j < i; j++ {
					sub = append(sub, msgs[j])
					bytes += int(sizes[j])
				}
			}
		}
		if all {
			bytes = total
		}
		if len(sub) == 0 {
			continue
		}
		copied := false
		if !all && cap(sub) > 2*len(sub) {
			// sub was sized for the rest of the batch; a queue that keeps
			// a few messages for long should not keep room for hundreds.
			sub = append(make([]*pipeline.Message, 0, len(sub)), sub...)
		}
		if !all && bytes*selectiveShare <= total {
			// A destination that takes a small share of a batch's bytes
			// gets copies: the messages' strings are views into chunks the
			// whole batch shares, and a queue that keeps a few of them
			// for long (a stalled output) would keep every chunk alive,
			// far beyond the bytes it counts. Copies cost a little CPU
			// on selective routes only.
			for i, m := range sub {
				sub[i] = m.DeepClone()
			}
			copied = true
		}
		entry := &queue.Entry{Msgs: sub, Bytes: bytes + entryBytes, Loops: loops}
		if tr != nil {
			if copied {
				entry.Owner = tr.holdCopy() // the batch may be reused meanwhile
			} else {
				tr.hold()
				entry.Owner = tr
			}
		}
		var err error
		switch {
		case d.mem != nil && mode != modeBlock:
			err = d.mem.PushOverflow(entry)
		case mode == modeDeadLetter:
			if ov, ok := d.q.(interface{ PushOverflow(*queue.Entry) error }); ok {
				err = ov.PushOverflow(entry)
			} else {
				err = d.q.Push(ctx, entry)
			}
		default:
			err = d.q.Push(ctx, entry)
		}
		if err == nil && taps != nil && taps.byDest != nil {
			for _, t := range taps.byDest[di] {
				t.offer(sub)
			}
		}
		if err != nil {
			if err == queue.ErrFull || err == queue.ErrOverflow {
				// drop_newest, or a queue whose overflow allowance is full
				// too: counted, and acknowledged like a delivery, so
				// replayable sources do not stall (failing the ack would
				// hold their position until a restart).
				reason := "queue_full"
				if err == queue.ErrOverflow {
					reason = "overflow_full"
				}
				d.dropped(reason, len(sub))
				if mode == modeDeadLetter {
					// Keep the bytes: the fallback file takes what this
					// destination could not (once per dead letter).
					if spill == nil {
						spill = make([]bool, len(msgs))
					}
					for i, m := range msgs {
						if !spill[i] && d.match.Match(m) {
							spill[i] = true
						}
					}
				}
				if entry.Owner != nil {
					entry.Owner.Done()
				}
				continue
			}
			if entry.Owner != nil {
				entry.Owner.Abandon()
			}
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	for i, m := range msgs {
		if matched[i] && (spill == nil || !spill[i]) {
			continue
		}
		if m.Type == DeadLetterType {
			e.dead.write(ctx, m, tr)
			continue
		}
		if !matched[i] {
			e.metrics.dropped(from, "no_match", 1)
		}
	}
	return firstErr
}
