package buffer

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/queue"
)

// waiters waits until n pushes are blocked on b.
func waiters(t *testing.T, b *Buffer, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.waiters) == n
	}, 5*time.Second, time.Millisecond)
}

// stepBuffer opens a buffer that holds five entries of mk, one per segment,
// and fills it: each entry the reader then commits frees one segment, room
// for exactly one more. Two small entries (one short message each) still
// fit in the full buffer.
func stepBuffer(t *testing.T) (b *Buffer, mk func(id int, msgs int) *queue.Entry, small func(id int) *queue.Entry) {
	t.Helper()
	mk = func(id, msgs int) *queue.Entry {
		e := &queue.Entry{}
		for range msgs {
			e.Msgs = append(e.Msgs, msg(id, 600))
		}
		return e
	}
	small = func(id int) *queue.Entry {
		return &queue.Entry{Msgs: []*pipeline.Message{msg(id, 10)}}
	}
	size := func(e *queue.Entry) int64 { return int64(len(encode(nil, e.Msgs))) }
	rec := size(mk(0, 1))
	require.Equal(t, rec, size(mk(127, 1)), "ids below 128 must encode alike")
	seg := rec + SegmentHeaderSize
	require.Greater(t, 2*rec+SegmentHeaderSize, int64(1<<10), "one record per segment")
	require.Less(t, 2*(size(small(127))+SegmentHeaderSize), seg/2, "two small entries fit in the full buffer")
	opt := testOptions(nil)
	opt.MaxFileSize, opt.MaxBufferSize = 1<<10, 5*seg+seg/2
	b = open(t, t.TempDir(), opt)
	ctx := context.Background()
	var o *owner
	for i := range 5 {
		o = newOwner()
		e := mk(100+i, 1)
		e.Owner = o
		require.NoError(t, b.Push(ctx, e))
	}
	require.True(t, o.wait(t, 5*time.Second))
	return b, mk, small
}

// readOne reads and commits the oldest entry of a stepBuffer, freeing room
// for one more.
func readOne(t *testing.T, b *Buffer) int {
	t.Helper()
	l, err := b.Next(context.Background(), 1, 1<<20, 0, 5*time.Second)
	require.NoError(t, err)
	require.NotNil(t, l)
	require.Len(t, l.Msgs(), 1)
	id := idOf(t, l.Msgs()[0])
	l.Commit()
	return id
}

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("timed out")
		panic("unreachable")
	}
}

// Pushes blocked on a full buffer get in oldest first. With a broadcast the
// one the scheduler ran first won (in Go, the one woken last), so the
// oldest could starve: one Kafka partition stalled for seconds while the
// other five went on. Room frees one entry at a time here, so the order in
// which the pushes return is the order they were let in.
func TestBlockedPushesGetInOldestFirst(t *testing.T) {
	b, mk, _ := stepBuffer(t)
	defer b.Close()
	ctx := context.Background()
	const n = 6
	order := make(chan int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			assert.NoError(t, b.Push(ctx, mk(i, 1)))
			order <- i
		})
		waiters(t, b, i+1)
	}
	var got []int
	for range n {
		readOne(t, b)
		got = append(got, recv(t, order))
	}
	wg.Wait()
	assert.Equal(t, seq(0, n), got)
	assert.Equal(t, seq(1, n), drain(t, b, 200*time.Millisecond), "written in the order let in")
}

// A push that arrives while others wait queues behind them, even when its
// entry would fit; once the head gets in, so does the next if it fits.
// PushOverflow, which cannot wait, still takes room that is there.
func TestNewPushQueuesBehindWaiters(t *testing.T) {
	b, mk, small := stepBuffer(t)
	defer b.Close()
	ctx := context.Background()
	big := make(chan error, 1)
	go func() { big <- b.Push(ctx, mk(0, 2)) }() // needs two segments freed
	waiters(t, b, 1)
	late := make(chan error, 1)
	go func() { late <- b.Push(ctx, small(1)) }()
	waiters(t, b, 2)
	require.NoError(t, b.PushOverflow(small(2)), "no line for a push that cannot wait")
	assert.Equal(t, 100, readOne(t, b))
	// One segment freed: not enough for the head, and the one behind it,
	// which would fit, still waits its turn.
	select {
	case err := <-late:
		t.Fatalf("the newer push went in ahead of the head: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	waiters(t, b, 2)
	assert.Equal(t, 101, readOne(t, b))
	require.NoError(t, recv(t, big))
	require.NoError(t, recv(t, late), "the head got in, and the next, which fits too")
	waiters(t, b, 0)
	assert.Equal(t, []int{102, 103, 104, 2, 0, 0, 1}, drain(t, b, 200*time.Millisecond))
}

// A waiter that gives up passes its turn on; Close releases every waiter.
func TestWaiterLeavesLine(t *testing.T) {
	b, mk, _ := stepBuffer(t)
	ctx := context.Background()
	cctx, cancel := context.WithCancel(ctx)
	first := make(chan error, 1)
	go func() { first <- b.Push(cctx, mk(0, 1)) }()
	waiters(t, b, 1)
	second := make(chan error, 1)
	go func() { second <- b.Push(ctx, mk(1, 1)) }()
	waiters(t, b, 2)
	cancel()
	assert.ErrorIs(t, recv(t, first), context.Canceled)
	waiters(t, b, 1)
	readOne(t, b)
	require.NoError(t, recv(t, second))

	third := make(chan error, 1)
	go func() { third <- b.Push(ctx, mk(2, 1)) }()
	waiters(t, b, 1)
	fourth := make(chan error, 1)
	go func() { fourth <- b.Push(ctx, mk(3, 1)) }()
	waiters(t, b, 2)
	require.NoError(t, b.Close())
	assert.ErrorIs(t, recv(t, third), queue.ErrClosed)
	assert.ErrorIs(t, recv(t, fourth), queue.ErrClosed)
	waiters(t, b, 0)
}

// A push let in by whoever freed room reports success even if its ctx
// ended meanwhile: its entry is in and its owner will be settled, so an
// error would have the source settle it twice.
func TestAdmittedPushIgnoresLateCancel(t *testing.T) {
	for range 5 {
		b, mk, _ := stepBuffer(t)
		ctx, cancel := context.WithCancel(context.Background())
		o := newOwner()
		e := mk(0, 1)
		e.Owner = o
		res := make(chan error, 1)
		go func() { res <- b.Push(ctx, e) }()
		waiters(t, b, 1)
		b.mu.Lock()
		cancel()
		time.Sleep(10 * time.Millisecond) // the push sees ctx end and waits for mu
		// Room for it, as a commit would make, then back to the real cap.
		max := b.opt.MaxBufferSize
		b.opt.MaxBufferSize = 1 << 30
		b.admitWaiting()
		b.opt.MaxBufferSize = max
		b.mu.Unlock()
		require.NoError(t, recv(t, res))
		waiters(t, b, 0)
		assert.True(t, o.wait(t, 5*time.Second))
		assert.Equal(t, []int{100, 101, 102, 103, 104, 0}, drain(t, b, 100*time.Millisecond))
		require.NoError(t, b.Close())
	}
}
