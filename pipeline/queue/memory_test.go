package queue

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ternlog/tern/pipeline"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type owner struct{ done, abandoned atomic.Int32 }

func (o *owner) Done()    { o.done.Add(1) }
func (o *owner) Abandon() { o.abandoned.Add(1) }

func entry(n, bytes int, o *owner) *Entry {
	msgs := make([]*pipeline.Message, n)
	for i := range msgs {
		msgs[i] = pipeline.NewMessage()
	}
	e := &Entry{Msgs: msgs, Bytes: bytes}
	if o != nil {
		e.Owner = o
	}
	return e
}

func TestLeaseSplitsEntriesAndCommitsInOrder(t *testing.T) {
	q := NewMemory(1000, false)
	a, b := &owner{}, &owner{}
	ctx := context.Background()
	require.NoError(t, q.Push(ctx, entry(3, 100, a)))
	require.NoError(t, q.Push(ctx, entry(2, 100, b)))
	assert.Equal(t, 5, q.Len())
	assert.Equal(t, 200, q.Bytes())

	l1, err := q.Next(ctx, 2, 1<<20, 0, 0)
	require.NoError(t, err)
	assert.Len(t, l1.Msgs(), 2)
	l2, err := q.Next(ctx, 10, 1<<20, 0, 0)
	require.NoError(t, err)
	assert.Len(t, l2.Msgs(), 3, "rest of a, then all of b")
	assert.Equal(t, 0, q.Len())

	l2.Commit()
	assert.Equal(t, int32(1), b.done.Load())
	assert.Equal(t, int32(0), a.done.Load(), "a is done only when all its messages are")
	assert.Equal(t, 100, q.Bytes())
	l1.Commit()
	assert.Equal(t, int32(1), a.done.Load())
	assert.Equal(t, 0, q.Bytes())
}

func TestPushBlocksWhenFullAndResumes(t *testing.T) {
	q := NewMemory(150, false)
	ctx := context.Background()
	require.NoError(t, q.Push(ctx, entry(1, 100, nil)))
	pushed := make(chan error, 1)
	go func() { pushed <- q.Push(ctx, entry(1, 100, nil)) }()
	select {
	case <-pushed:
		t.Fatal("push over the cap should block")
	case <-time.After(50 * time.Millisecond):
	}
	l, _ := q.Next(ctx, 1, 1<<20, 0, 0)
	l.Commit()
	require.NoError(t, <-pushed)

	cctx, cancel := context.WithCancel(ctx)
	go func() { time.Sleep(20 * time.Millisecond); cancel() }()
	require.NoError(t, q.Push(ctx, entry(1, 10, nil)))
	assert.ErrorIs(t, q.Push(cctx, entry(1, 100, nil)), context.Canceled)
	require.NoError(t, q.Close())
}

// waiters waits until n pushers are blocked on q.
func waiters(t *testing.T, q *Memory, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		q.mu.Lock()
		defer q.mu.Unlock()
		return len(q.waiters) == n
	}, 5*time.Second, time.Millisecond)
}

// Pushers blocked on a full queue get in oldest first. With a broadcast the
// one the scheduler ran first won (in Go, the one woken last), so the
// oldest could starve: R8 saw one Kafka partition stall for seconds while
// the other five went on.
func TestBlockedPushersGetInOldestFirst(t *testing.T) {
	q := NewMemory(100, false)
	ctx := context.Background()
	require.NoError(t, q.Push(ctx, entry(1, 100, nil)))
	const n = 4
	order := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			assert.NoError(t, q.Push(ctx, entry(1, 100, nil)))
			order <- i
		})
		waiters(t, q, i+1)
	}
	for want := range n {
		l, err := q.Next(ctx, 1, 1<<20, 0, 0)
		require.NoError(t, err)
		l.Commit() // room for one
		assert.Equal(t, want, <-order)
	}
	wg.Wait()
	// A push that arrives while others wait queues behind them, even when
	// its entry would fit.
	q2 := NewMemory(100, false)
	require.NoError(t, q2.Push(ctx, entry(1, 60, nil)))
	big := make(chan error, 1)
	go func() { big <- q2.Push(ctx, entry(1, 60, nil)) }()
	waiters(t, q2, 1)
	small := make(chan error, 1)
	go func() { small <- q2.Push(ctx, entry(1, 10, nil)) }()
	waiters(t, q2, 2)
	l, err := q2.Next(ctx, 1, 1<<20, 0, 0)
	require.NoError(t, err)
	l.Commit()
	require.NoError(t, <-big)
	require.NoError(t, <-small, "the head got in and woke the next, which fits too")
	require.NoError(t, q2.Close())
}

// A waiter that gives up passes its turn on; Close releases every waiter.
func TestWaiterLeavesLine(t *testing.T) {
	q := NewMemory(100, false)
	ctx := context.Background()
	require.NoError(t, q.Push(ctx, entry(1, 100, nil)))
	cctx, cancel := context.WithCancel(ctx)
	first := make(chan error, 1)
	go func() { first <- q.Push(cctx, entry(1, 100, nil)) }()
	waiters(t, q, 1)
	second := make(chan error, 1)
	go func() { second <- q.Push(ctx, entry(1, 100, nil)) }()
	waiters(t, q, 2)
	cancel()
	assert.ErrorIs(t, <-first, context.Canceled)
	waiters(t, q, 1)
	l, err := q.Next(ctx, 1, 1<<20, 0, 0)
	require.NoError(t, err)
	l.Commit()
	require.NoError(t, <-second)

	third := make(chan error, 1)
	go func() { third <- q.Push(ctx, entry(1, 100, nil)) }()
	waiters(t, q, 1)
	require.NoError(t, q.Close())
	assert.ErrorIs(t, <-third, ErrClosed)
	waiters(t, q, 0)
}

func TestEmptyQueueTakesOversizedEntry(t *testing.T) {
	q := NewMemory(10, false)
	require.NoError(t, q.Push(context.Background(), entry(1, 1000, nil)))
}

func TestDropNewest(t *testing.T) {
	q := NewMemory(150, true)
	ctx := context.Background()
	require.NoError(t, q.Push(ctx, entry(1, 100, nil)))
	assert.ErrorIs(t, q.Push(ctx, entry(1, 100, nil)), ErrFull)
}

func TestNextWaitsAndLingers(t *testing.T) {
	q := NewMemory(1000, false)
	ctx := context.Background()
	l, err := q.Next(ctx, 10, 1<<20, 0, 20*time.Millisecond)
	require.NoError(t, err)
	assert.Nil(t, l, "wait expired")

	require.NoError(t, q.Push(ctx, entry(1, 10, nil)))
	go func() { time.Sleep(10 * time.Millisecond); _ = q.Push(ctx, entry(1, 10, nil)) }()
	l, err = q.Next(ctx, 2, 1<<20, time.Second, 0)
	require.NoError(t, err)
	assert.Len(t, l.Msgs(), 2, "linger waits for a fuller batch")
}

func TestCloseAbandonsUncommitted(t *testing.T) {
	q := NewMemory(1000, false)
	ctx := context.Background()
	a, b := &owner{}, &owner{}
	require.NoError(t, q.Push(ctx, entry(1, 10, a)))
	require.NoError(t, q.Push(ctx, entry(1, 10, b)))
	l, _ := q.Next(ctx, 1, 1<<20, 0, 0)
	require.NoError(t, q.Close())
	l.Commit() // after Close: no double settlement
	assert.Equal(t, int32(1), a.abandoned.Load())
	assert.Equal(t, int32(0), a.done.Load())
	assert.Equal(t, int32(1), b.abandoned.Load())
	assert.ErrorIs(t, q.Push(ctx, entry(1, 1, nil)), ErrClosed)
	_, err := q.Next(ctx, 1, 1, 0, 0)
	assert.ErrorIs(t, err, ErrClosed)
}

// PushOverflow never waits: it takes the room under the cap, then an
// allowance as large as the cap, then refuses with ErrOverflow. An empty
// queue takes any entry.
func TestPushOverflowIsBounded(t *testing.T) {
	q := NewMemory(1000, false)
	require.NoError(t, q.PushOverflow(entry(1, 5000, nil)), "an empty queue takes any entry")
	q2 := NewMemory(1000, false)
	for range 4 {
		require.NoError(t, q2.PushOverflow(entry(1, 500, nil)))
	}
	assert.Equal(t, 2000, q2.Bytes())
	assert.ErrorIs(t, q2.PushOverflow(entry(1, 1, nil)), ErrOverflow)
	l, err := q2.Next(context.Background(), 1, 1<<20, 0, 0)
	require.NoError(t, err)
	l.Commit()
	assert.NoError(t, q2.PushOverflow(entry(1, 500, nil)), "room again once a lease is committed")
	require.NoError(t, q.Close())
	require.NoError(t, q2.Close())
}

// A lease of one entry hands out the entry's messages without a copy; one
// of several reuses the slice of the last such lease once it is committed,
// and never writes into an entry's slice.
func TestLeaseReusesItsSlice(t *testing.T) {
	q := NewMemory(1<<20, false)
	ctx := context.Background()
	one := entry(4, 10, nil)
	require.NoError(t, q.Push(ctx, one))
	l, err := q.Next(ctx, 100, 1<<20, 0, 0)
	require.NoError(t, err)
	assert.Same(t, &one.Msgs[0], &l.Msgs()[0], "a one-entry lease is the entry's own slice")
	l.Commit()

	a, b := entry(3, 10, nil), entry(3, 10, nil)
	wantA := slices.Clone(a.Msgs)
	cycle := func() {
		require.NoError(t, q.Push(ctx, a))
		require.NoError(t, q.Push(ctx, b))
		l, err := q.Next(ctx, 100, 1<<20, 0, 0)
		if err != nil || len(l.Msgs()) != 6 {
			t.Fatalf("lease of %d messages, %v", len(l.Msgs()), err)
		}
		l.Commit()
		// The entries may be pushed again: only their messages were read.
	}
	cycle() // leaves a spare slice
	// Each push allocates its queue record and renews the data channel;
	// the lease allocates itself, and nothing for its messages.
	if allocs := testing.AllocsPerRun(50, cycle); allocs > 5 {
		t.Errorf("two pushes and a lease of both allocate %.0f times, want 5", allocs)
	}
	assert.Equal(t, wantA, a.Msgs, "an entry's slice was written")
}
