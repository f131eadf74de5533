package queue

import (
	"context"
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
