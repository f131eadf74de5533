package buffer

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ternlog/tern/internal/testutil/faultfs"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/pipelinetest"
	"github.com/ternlog/tern/pipeline/queue"
	"github.com/ternlog/tern/pipeline/vfs"
)

func TestPushReadCommit(t *testing.T) {
	b := open(t, t.TempDir(), testOptions(nil))
	defer b.Close()
	o := newOwner()
	require.NoError(t, b.Push(context.Background(), entry(o, 1, 2, 3)))
	require.True(t, o.wait(t, 5*time.Second))
	assert.Equal(t, 3, b.Len())
	assert.Positive(t, b.Bytes())
	l, err := b.Next(context.Background(), 2, 1<<20, 0, time.Second)
	require.NoError(t, err)
	require.Len(t, l.Msgs(), 2)
	assert.Equal(t, 1, idOf(t, l.Msgs()[0]))
	assert.Nil(t, l.Entries())
	l.Commit()
	assert.Equal(t, []int{3}, drain(t, b, 100*time.Millisecond))
	assert.Equal(t, 0, b.Len())
	assert.Equal(t, 0, b.Bytes())
	done, abd := o.state()
	assert.Equal(t, 1, done)
	assert.Equal(t, 0, abd)
}

func TestMessagesSurviveByteForByte(t *testing.T) {
	b := open(t, t.TempDir(), testOptions(nil))
	defer b.Close()
	m := msg(7, 300)
	m.Hostname, m.Logger, m.Pid, m.Severity = "h", "l", 42, 3
	m.AddBytes("bin", []byte{0, 1, 0xff})
	m.AddDouble("d", 1.5)
	m.AddBool("b", true)
	require.NoError(t, b.Push(context.Background(), &queue.Entry{Msgs: []*pipeline.Message{m}}))
	l, err := b.Next(context.Background(), 10, 1<<20, 0, 5*time.Second)
	require.NoError(t, err)
	require.Len(t, l.Msgs(), 1)
	assert.True(t, m.Equal(l.Msgs()[0]), "%+v\n%+v", m, l.Msgs()[0])
	l.Commit()
}

// An uncommitted lease is read again after a restart; a committed one is
// not.
func TestRestartReplaysUncommitted(t *testing.T) {
	dir := t.TempDir()
	b := open(t, dir, testOptions(nil))
	o := newOwner()
	require.NoError(t, b.Push(context.Background(), entry(o, seq(0, 10)...)))
	require.True(t, o.wait(t, 5*time.Second))
	l, err := b.Next(context.Background(), 4, 1<<20, 0, time.Second)
	require.NoError(t, err)
	l.Commit()
	l, err = b.Next(context.Background(), 4, 1<<20, 0, time.Second)
	require.NoError(t, err)
	require.Len(t, l.Msgs(), 4) // not committed
	require.NoError(t, b.Close())

	b = open(t, dir, testOptions(nil))
	defer b.Close()
	assert.Equal(t, 6, b.Len())
	assert.Equal(t, seq(4, 10), drain(t, b, 100*time.Millisecond))
}

// Many segments: they roll at max_file_size and are deleted once read.
func TestSegmentsRollAndGo(t *testing.T) {
	dir := t.TempDir()
	opt := testOptions(nil)
	opt.MaxFileSize = 4 << 10
	b := open(t, dir, opt)
	defer b.Close()
	var o *owner
	for i := range 50 {
		o = newOwner()
		require.NoError(t, b.Push(context.Background(), entry(o, seq(i*10, i*10+10)...)))
	}
	require.True(t, o.wait(t, 5*time.Second))
	segs := countSegments(t, dir)
	assert.Greater(t, segs, 10)
	assert.Equal(t, seq(0, 500), drain(t, b, 200*time.Millisecond))
	assert.LessOrEqual(t, countSegments(t, dir), 1)
	assert.Equal(t, 0, b.Bytes())
	assert.LessOrEqual(t, b.DiskBytes(), int64(4<<10))
}

func countSegments(t testing.TB, dir string) int {
	t.Helper()
	names, err := os.ReadDir(dir)
	require.NoError(t, err)
	n := 0
	for _, e := range names {
		if _, ok := ParseSegmentName(e.Name()); ok {
			n++
		}
	}
	return n
}

// Concurrent pushers each waiting for their ack share fsyncs.
func TestGroupCommit(t *testing.T) {
	b, tel := openTel(t, t.TempDir(), testOptions(nil))
	defer b.Close()
	const pushers, rounds = 8, 20
	var wg sync.WaitGroup
	for p := range pushers {
		wg.Go(func() {
			for r := range rounds {
				o := newOwner()
				id := p*1000 + r
				assert.NoError(t, b.Push(context.Background(), entry(o, id)))
				assert.True(t, o.wait(t, 10*time.Second))
			}
		})
	}
	wg.Wait()
	ids := drain(t, b, 100*time.Millisecond)
	assert.Len(t, ids, pushers*rounds)
	syncs := tel.Count("buffer_fsyncs_total")
	assert.Less(t, syncs, float64(pushers*rounds), "every push had its own fsync")
	t.Logf("%d acknowledged pushes, %v fsync rounds", pushers*rounds, syncs)
}

// The buffer holds no more than max_buffer_size: a push waits, and goes
// through once the reader frees a segment.
func TestFullBlocks(t *testing.T) {
	opt := testOptions(nil)
	opt.MaxFileSize, opt.MaxBufferSize = 2<<10, 8<<10
	b := open(t, t.TempDir(), opt)
	defer b.Close()
	ctx := context.Background()
	n := 0
	for {
		c, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err := b.Push(c, entry(nil, n))
		cancel()
		if err != nil {
			require.ErrorIs(t, err, context.DeadlineExceeded)
			break
		}
		n++
		require.Less(t, n, 1000)
		assert.LessOrEqual(t, b.DiskBytes(), opt.MaxBufferSize)
	}
	assert.Greater(t, n, 10)
	done := make(chan error, 1)
	go func() { done <- b.Push(ctx, entry(nil, n)) }()
	select {
	case <-done:
		t.Fatal("push went through on a full buffer")
	case <-time.After(100 * time.Millisecond):
	}
	got := drain(t, b, 300*time.Millisecond)
	require.NoError(t, <-done)
	got = append(got, drain(t, b, 100*time.Millisecond)...)
	assert.Equal(t, seq(0, n+1), got)
}

func TestFullDropNewest(t *testing.T) {
	opt := testOptions(nil)
	opt.MaxFileSize, opt.MaxBufferSize, opt.FullAction = 2<<10, 8<<10, FullDropNewest
	b := open(t, t.TempDir(), opt)
	defer b.Close()
	n := 0
	for ; ; n++ {
		err := b.Push(context.Background(), entry(nil, n))
		if err != nil {
			require.ErrorIs(t, err, queue.ErrFull)
			break
		}
	}
	assert.Equal(t, seq(0, n), drain(t, b, 100*time.Millisecond))
}

func TestFullShutdown(t *testing.T) {
	opt := testOptions(nil)
	opt.MaxFileSize, opt.MaxBufferSize, opt.FullAction = 2<<10, 8<<10, FullShutdown
	var calls int
	opt.Shutdown = func() { calls++ }
	b := open(t, t.TempDir(), opt)
	defer b.Close()
	var err error
	for n := 0; err == nil; n++ {
		err = b.Push(context.Background(), entry(nil, n))
	}
	require.ErrorIs(t, err, ErrShutdown)
	require.ErrorIs(t, b.Push(context.Background(), entry(nil, 0)), ErrShutdown)
	assert.Equal(t, 1, calls)
}

// An empty buffer takes one entry however large, like the memory queue.
func TestEmptyTakesOversizeEntry(t *testing.T) {
	opt := testOptions(nil)
	opt.MaxFileSize, opt.MaxBufferSize = 1<<10, 2<<10
	b := open(t, t.TempDir(), opt)
	defer b.Close()
	require.NoError(t, b.Push(context.Background(), entry(nil, seq(0, 100)...)))
	assert.Equal(t, seq(0, 100), drain(t, b, 100*time.Millisecond))
}

func TestLockedByAnotherProcess(t *testing.T) {
	dir := t.TempDir()
	b := open(t, dir, testOptions(nil))
	defer b.Close()
	c, err := New(dir, testOptions(nil), b.set)
	require.NoError(t, err)
	err = c.Open()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "in use")
}

func TestOptionsValidate(t *testing.T) {
	o := Options{MaxBufferSize: 10, MaxFileSize: 20, FullAction: "drop", Sync: "never"}
	err := o.Validate()
	require.Error(t, err)
	for _, key := range []string{"full_action:", "sync:", "max_file_size:", "max_buffer_size:", "sync_interval:"} {
		assert.Contains(t, err.Error(), key)
	}
}

// New does no I/O: `tern check` builds buffers in directories that do not
// exist.
func TestNewTouchesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	b, err := New(dir, testOptions(nil), pipelinetest.Settings(t, "outputs.test"))
	require.NoError(t, err)
	_, err = os.Stat(dir)
	assert.True(t, errors.Is(err, os.ErrNotExist))
	require.NoError(t, b.Close())
	assert.ErrorIs(t, b.Push(context.Background(), entry(nil, 1)), queue.ErrClosed)
}

// Next honours wait and ctx, and linger collects a fuller batch.
func TestNextWaitLingerCtx(t *testing.T) {
	b := open(t, t.TempDir(), testOptions(nil))
	defer b.Close()
	t0 := time.Now()
	l, err := b.Next(context.Background(), 10, 1<<20, 0, 50*time.Millisecond)
	assert.Nil(t, l)
	assert.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(t0), 50*time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = b.Next(ctx, 10, 1<<20, 0, 0)
	assert.ErrorIs(t, err, context.Canceled)

	require.NoError(t, b.Push(context.Background(), entry(nil, 1)))
	go func() {
		time.Sleep(30 * time.Millisecond)
		_ = b.Push(context.Background(), entry(nil, 2))
	}()
	l, err = b.Next(context.Background(), 2, 1<<20, 2*time.Second, 0)
	require.NoError(t, err)
	assert.Len(t, l.Msgs(), 2, "linger should wait for the second message")
	l.Commit()
}

// Close wakes a waiting reader with ErrClosed.
func TestCloseWakesReader(t *testing.T) {
	b := open(t, t.TempDir(), testOptions(nil))
	errc := make(chan error, 1)
	go func() {
		_, err := b.Next(context.Background(), 10, 1<<20, 0, 0)
		errc <- err
	}()
	time.Sleep(20 * time.Millisecond)
	require.NoError(t, b.Close())
	assert.ErrorIs(t, <-errc, queue.ErrClosed)
}

// sync = "interval" acknowledges after the write and fsyncs on the timer.
func TestIntervalSync(t *testing.T) {
	fs := faultfs.New()
	opt := testOptions(fs)
	opt.Sync = SyncInterval
	opt.SyncInterval = 20 * time.Millisecond
	b, tel := openTel(t, "/buf", opt)
	o := newOwner()
	require.NoError(t, b.Push(context.Background(), entry(o, 1, 2)))
	require.True(t, o.wait(t, 5*time.Second))
	require.Eventually(t, func() bool { return tel.Count("buffer_fsyncs_total") > 0 }, 5*time.Second, 10*time.Millisecond)
	// After the tick the data is durable: a power loss keeps it.
	time.Sleep(50 * time.Millisecond)
	require.NoError(t, b.Close())
	fs2 := fs.Crash(rand.New(rand.NewPCG(1, 1)), faultfs.KeepNone)
	opt.FS = fs2
	b = open(t, "/buf", opt)
	defer b.Close()
	assert.Equal(t, []int{1, 2}, drain(t, b, 100*time.Millisecond))
}

var _ vfs.FS = faultfs.New()
