package queue

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/ternlog/tern/pipeline"
)

// Memory is an in-memory Queue bounded in bytes.
type Memory struct {
	mu      sync.Mutex
	entries []*memEntry // FIFO; head is entries[0]
	bytes   int         // bytes of entries not yet committed
	count   int         // messages not yet leased
	max     int
	dropNew bool
	closed  bool
	dataCh  chan struct{} // closed and replaced when data arrives
	// waiters are the pushers blocked on a full queue, oldest first; room
	// goes to them in that order and a new pusher queues behind them. (A
	// broadcast let whichever woke first win, and Go runs the goroutine
	// woken last first: the oldest waiter could starve for seconds, one
	// Kafka partition stalled behind the others.)
	waiters []chan struct{}
	// spare is the message slice of a committed lease of several entries,
	// for the next one to reuse (a queue has one reader, as a rule).
	spare []*pipeline.Message
}

// maxSpare bounds the slice a queue keeps for its next lease.
const maxSpare = 4096

type memEntry struct {
	*Entry
	next      int // first message not yet leased
	committed int // messages committed so far
}

// NewMemory returns a queue holding at most maxBytes (Entry.Bytes summed).
// dropNewest selects the drop_newest policy instead of blocking; blocked
// pushes get in in the order they started waiting.
func NewMemory(maxBytes int, dropNewest bool) *Memory {
	return &Memory{max: maxBytes, dropNew: dropNewest, dataCh: make(chan struct{})}
}

func (q *Memory) Push(ctx context.Context, e *Entry) error {
	return q.push(ctx, e, false)
}

// PushOverflow adds e without waiting: into the room under the cap, or
// else into an overflow allowance as large as the cap again (a queue that
// is empty takes any entry). Past that it returns ErrOverflow and the
// caller counts the drop. The engine uses it where waiting could deadlock:
// messages filters inject into filter queues (two filters may feed each
// other) and dead letters raised by output runners.
func (q *Memory) PushOverflow(e *Entry) error {
	return q.push(context.Background(), e, true)
}

func (q *Memory) push(ctx context.Context, e *Entry, force bool) error {
	q.mu.Lock()
	var turn chan struct{} // this push's place in line while it waits
	for {
		if q.closed {
			q.leave(turn)
			q.mu.Unlock()
			return ErrClosed
		}
		fits := q.bytes == 0 || q.bytes+e.Bytes <= q.max
		if force && !fits && q.bytes+e.Bytes > 2*q.max {
			q.mu.Unlock()
			return ErrOverflow
		}
		if force || (fits && (len(q.waiters) == 0 || q.waiters[0] == turn)) {
			q.entries = append(q.entries, &memEntry{Entry: e})
			q.bytes += e.Bytes
			q.count += len(e.Msgs)
			close(q.dataCh)
			q.dataCh = make(chan struct{})
			q.leave(turn) // the next in line may fit too
			q.mu.Unlock()
			return nil
		}
		if q.dropNew {
			q.mu.Unlock()
			return ErrFull
		}
		if turn == nil {
			turn = make(chan struct{}, 1)
			q.waiters = append(q.waiters, turn)
		}
		q.mu.Unlock()
		select {
		case <-turn:
		case <-ctx.Done():
			q.mu.Lock()
			q.leave(turn)
			q.mu.Unlock()
			return ctx.Err()
		}
		q.mu.Lock()
	}
}

// leave takes turn (nil: none) out of the line and wakes the head; q.mu is
// held.
func (q *Memory) leave(turn chan struct{}) {
	if turn == nil {
		return
	}
	if i := slices.Index(q.waiters, turn); i >= 0 {
		q.waiters = slices.Delete(q.waiters, i, i+1)
	}
	q.wakeHead()
}

// wakeHead tells the oldest waiter to look for room again; q.mu is held.
func (q *Memory) wakeHead() {
	if len(q.waiters) > 0 {
		select {
		case q.waiters[0] <- struct{}{}:
		default: // already told
		}
	}
}

func (q *Memory) Next(ctx context.Context, maxCount, maxBytes int, linger, wait time.Duration) (Lease, error) {
	var deadline <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		deadline = t.C
	}
	var lingerC <-chan time.Time
	for {
		q.mu.Lock()
		if q.count > 0 && (lingerC != nil || linger <= 0 || q.count >= maxCount) {
			l := q.lease(maxCount, maxBytes)
			q.mu.Unlock()
			return l, nil
		}
		if q.closed {
			q.mu.Unlock()
			return nil, ErrClosed
		}
		if q.count > 0 && lingerC == nil {
			t := time.NewTimer(linger)
			defer t.Stop()
			lingerC = t.C
		}
		ch := q.dataCh
		q.mu.Unlock()
		select {
		case <-ch:
		case <-lingerC:
			q.mu.Lock()
			if q.count > 0 {
				l := q.lease(maxCount, maxBytes)
				q.mu.Unlock()
				return l, nil
			}
			q.mu.Unlock()
		case <-deadline:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// lease takes messages from the head; q.mu is held.
func (q *Memory) lease(maxCount, maxBytes int) Lease {
	l := &memLease{q: q}
	l.spans, l.mes = l.spanArr[:0], l.mesArr[:0]
	n, bytes := 0, 0
	for _, e := range q.entries {
		if e.next == len(e.Msgs) {
			continue // fully leased, awaiting commit
		}
		take := len(e.Msgs) - e.next
		if take > maxCount-n {
			take = maxCount - n
		}
		if n > 0 && e.next == 0 && bytes+e.Bytes > maxBytes {
			break
		}
		if l.msgs == nil {
			// The usual lease is one entry: its messages as they are,
			// capped, so that a second entry's append copies them rather
			// than writes into the entry.
			l.msgs = e.Msgs[e.next : e.next+take : e.next+take]
		} else {
			if len(l.spans) == 1 && cap(q.spare) > 0 {
				l.msgs, q.spare = append(q.spare[:0], l.msgs...), nil
			}
			l.msgs = append(l.msgs, e.Msgs[e.next:e.next+take]...)
			l.owned = true
		}
		l.spans = append(l.spans, Span{Entry: e.Entry, Start: e.next, End: e.next + take})
		l.mes = append(l.mes, e)
		e.next += take
		n += take
		bytes += e.Bytes
		if n >= maxCount {
			break
		}
	}
	q.count -= n
	return l
}

type memLease struct {
	q       *Memory
	msgs    []*pipeline.Message
	spans   []Span
	mes     []*memEntry
	done    bool
	owned   bool    // msgs is the lease's own, not an entry's
	spanArr [4]Span // spans and mes of a lease of a few entries, the usual one
	mesArr  [4]*memEntry
}

func (l *memLease) Msgs() []*pipeline.Message { return l.msgs }
func (l *memLease) Entries() []Span           { return l.spans }

func (l *memLease) Commit() {
	if l.done {
		return
	}
	l.done = true
	q := l.q
	var finishedArr [4]*Entry
	finished := finishedArr[:0]
	q.mu.Lock()
	if q.closed {
		// Close already abandoned these entries.
		q.mu.Unlock()
		return
	}
	for i, me := range l.mes {
		sp := l.spans[i]
		me.committed += sp.End - sp.Start
		if me.committed == len(me.Msgs) {
			q.bytes -= me.Bytes
			finished = append(finished, me.Entry)
		}
	}
	if l.owned && cap(l.msgs) <= maxSpare {
		clear(l.msgs)
		q.spare = l.msgs[:0]
	}
	l.msgs = nil
	// Drop fully committed entries from the head.
	k := 0
	for k < len(q.entries) && q.entries[k].committed == len(q.entries[k].Msgs) {
		q.entries[k] = nil
		k++
	}
	if k > 0 {
		q.entries = append(q.entries[:0], q.entries[k:]...)
	}
	if len(finished) > 0 {
		q.wakeHead()
	}
	q.mu.Unlock()
	for _, e := range finished {
		if e.Owner != nil {
			e.Owner.Done()
		}
	}
}

func (q *Memory) Bytes() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}

// Len is the number of messages not yet leased.
func (q *Memory) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.count
}

// Pending reports whether anything is queued or leased but not committed.
func (q *Memory) Pending() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.entries) > 0
}

func (q *Memory) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	var abandoned []*Entry
	for _, e := range q.entries {
		if e.committed < len(e.Msgs) {
			abandoned = append(abandoned, e.Entry)
		}
	}
	q.entries = nil
	q.bytes, q.count = 0, 0
	close(q.dataCh)
	q.dataCh = make(chan struct{})
	for _, w := range q.waiters { // each sees closed and leaves
		select {
		case w <- struct{}{}:
		default:
		}
	}
	q.mu.Unlock()
	for _, e := range abandoned {
		if e.Owner != nil {
			e.Owner.Abandon()
		}
	}
	return nil
}
