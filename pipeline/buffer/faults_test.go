package buffer

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ternlog/tern/internal/testutil/faultfs"
	"github.com/ternlog/tern/internal/testutil/testscale"
	"github.com/ternlog/tern/pipeline/queue"
)

// R6: a full disk. While writes fail with ENOSPC nothing is acknowledged
// and Push eventually holds back (backpressure, not drops); once space
// frees, writing resumes within seconds and every acknowledged record is
// delivered, none corrupt.
func TestDiskFull(t *testing.T) {
	fs := faultfs.New()
	opt := testOptions(fs)
	opt.MaxBufferSize = 4 << 20 // pending cap: 1 MiB
	opt.MaxFileSize = 64 << 10
	b, tel := openTel(t, "/buf", opt)
	defer b.Close()
	ctx := context.Background()

	first := newOwner()
	require.NoError(t, b.Push(ctx, entry(first, seq(0, 10)...)))
	require.True(t, first.wait(t, 5*time.Second))

	fs.SetCapacity(fs.Used() + 100) // nearly full
	var owners []*owner
	next := 10
	pushed := make(chan struct{})
	stop := make(chan struct{})
	var refused atomic.Bool
	go func() {
		defer close(pushed)
		for {
			select {
			case <-stop:
				return
			default:
			}
			o := newOwner()
			c, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
			err := b.Push(c, entry(o, seq(next, next+20)...))
			cancel()
			if err != nil {
				require.ErrorIs(t, err, context.DeadlineExceeded)
				refused.Store(true)
				return
			}
			owners = append(owners, o)
			next += 20
		}
	}()
	select {
	case <-pushed:
	case <-time.After(20 * time.Second):
		close(stop)
		<-pushed
		t.Fatal("pushes never held back on a full disk")
	}
	assert.True(t, refused.Load())
	for _, o := range owners {
		done, _ := o.state()
		assert.Zero(t, done, "acknowledged while the disk was full")
	}
	assert.Positive(t, tel.Count("buffer_io_errors_total"))

	fs.SetCapacity(0) // space frees
	t0 := time.Now()
	for _, o := range owners {
		require.True(t, o.wait(t, 5*time.Second), "not acknowledged within 5s of space freeing")
		done, abd := o.state()
		require.Equal(t, 1, done)
		require.Zero(t, abd)
	}
	t.Logf("%d entries acknowledged %v after space freed (%d io errors)", len(owners), time.Since(t0).Round(time.Millisecond), int(tel.Count("buffer_io_errors_total")))
	assert.Equal(t, seq(0, next), drain(t, b, 200*time.Millisecond))
	assert.Zero(t, tel.Dropped("corrupt_record"))
}

// R6: EIO on fsync. Linux may drop the pages of a failed fsync, so the
// buffer must not trust what it wrote since the last good one: it stops
// acknowledging, writes everything again into a new segment, and a power
// loss afterwards still keeps every acknowledged record.
func TestFsyncEIO(t *testing.T) {
	fs := faultfs.New()
	b, tel := openTel(t, "/buf", testOptions(fs))
	b.retryMin, b.retryMax = time.Millisecond, 10*time.Millisecond
	ctx := context.Background()
	var failing atomic.Bool
	fs.Fault(func(op faultfs.Op, path string) error {
		if failing.Load() && op == faultfs.OpSync && strings.HasSuffix(path, ".seg") {
			return faultfs.EIO
		}
		return nil
	})
	ok := newOwner()
	require.NoError(t, b.Push(ctx, entry(ok, 0, 1, 2)))
	require.True(t, ok.wait(t, 5*time.Second))

	failing.Store(true)
	o := newOwner()
	require.NoError(t, b.Push(ctx, entry(o, 3, 4, 5)))
	assert.False(t, o.wait(t, 100*time.Millisecond), "acknowledged although fsync fails")
	failing.Store(false)
	require.True(t, o.wait(t, 5*time.Second))
	done, _ := o.state()
	require.Equal(t, 1, done)
	assert.Positive(t, tel.Count("buffer_io_errors_total"))
	require.NoError(t, b.Close())

	// Power loss: the failed fsync's writes never reached the disk, the
	// rewritten ones did.
	fs2 := fs.Crash(rand.New(rand.NewPCG(9, 9)), faultfs.KeepNone)
	opt := testOptions(fs2)
	b = open(t, "/buf", opt)
	defer b.Close()
	assert.Equal(t, seq(0, 6), drain(t, b, 100*time.Millisecond))
}

// A write that keeps failing while tern stops: the entry is abandoned, so
// its source offers it again, never a false success.
func TestCloseAbandonsWhatCannotBeWritten(t *testing.T) {
	fs := faultfs.New()
	b := open(t, "/buf", testOptions(fs))
	b.retryMin, b.retryMax = time.Millisecond, 5*time.Millisecond
	fs.Fault(func(op faultfs.Op, path string) error {
		if op == faultfs.OpWrite && strings.HasSuffix(path, ".seg") {
			return faultfs.EIO
		}
		return nil
	})
	o := newOwner()
	require.NoError(t, b.Push(context.Background(), entry(o, 1)))
	time.Sleep(20 * time.Millisecond)
	require.NoError(t, b.Close())
	require.True(t, o.wait(t, 5*time.Second))
	done, abd := o.state()
	assert.Equal(t, 0, done)
	assert.Equal(t, 1, abd)
}

// drop_newest sheds instead of stalling inputs when the disk refuses writes.
func TestDropNewestWhileDiskFails(t *testing.T) {
	fs := faultfs.New()
	opt := testOptions(fs)
	opt.FullAction = FullDropNewest
	opt.MaxBufferSize = 4 << 20
	b := open(t, "/buf", opt)
	defer b.Close()
	fs.SetCapacity(fs.Used() + 10)
	var err error
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; err == nil && time.Now().Before(deadline); i++ {
		err = b.Push(context.Background(), entry(nil, seq(i*50, i*50+50)...))
	}
	assert.True(t, errors.Is(err, queue.ErrFull), "got %v", err)
	fs.SetCapacity(0)
}

// R16 for the ledger: many crashes at random moments while the reader
// commits. The ledger always parses, no acknowledged record is lost, and
// after a kill -9 (page cache intact) at most the lease in flight comes
// again.
func TestLedgerDurability(t *testing.T) {
	cycles := testscale.N(1000, 200)
	fs := faultfs.New()
	opt := testOptions(fs)
	opt.MaxFileSize = 2 << 10
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 16))
	next := 0
	acked := map[int]bool{}
	seen := map[int]int{}
	var dupsAfterKill, dupsAfterPowerLoss int
	for c := range cycles {
		b := open(t, "/buf", opt)
		// Write a little, acknowledged.
		o := newOwner()
		n := 1 + rng.IntN(20)
		require.NoError(t, b.Push(context.Background(), entry(o, seq(next, next+n)...)))
		require.True(t, o.wait(t, 5*time.Second))
		for _, id := range seq(next, next+n) {
			acked[id] = true
		}
		next += n
		// Read and commit in small leases while the crash comes.
		mode := []faultfs.CrashMode{faultfs.KeepAll, faultfs.KeepNone, faultfs.KeepPrefix, faultfs.KeepSubset}[rng.IntN(4)]
		crashAt := time.Duration(rng.IntN(300)) * time.Microsecond
		done := make(chan []int, 1)
		leaseRng := rand.New(rand.NewPCG(rng.Uint64(), 1)) // the reader's own
		// A killed process delivers nothing after the crash. The reader
		// here lives on (serving its read-ahead window from memory), so
		// it stops recording once the crash has happened: what it
		// recorded before is what a real process could have delivered.
		var crashMu sync.Mutex
		crashed := false
		go func() {
			var got []int
			for {
				l, err := b.Next(context.Background(), 1+leaseRng.IntN(4), 1<<20, 0, time.Millisecond)
				if err != nil || l == nil {
					break
				}
				crashMu.Lock()
				if crashed {
					crashMu.Unlock()
					break
				}
				for _, m := range l.Msgs() {
					got = append(got, idOf(t, m))
				}
				crashMu.Unlock()
				l.Commit()
			}
			done <- got
		}()
		time.Sleep(crashAt)
		crashMu.Lock()
		fs2 := fs.Crash(rng, mode)
		crashed = true
		crashMu.Unlock()
		b.Close()
		got := <-done
		for _, id := range got {
			seen[id]++
		}
		fs = fs2
		opt.FS = fs
		// The ledger parses after every crash (or, never written, is
		// absent).
		if c, ok := ReadLedger(fs, "/buf"); ok {
			require.Positive(t, c.Seq, "cycle %d", c)
		}
		// What the next run delivers first is what the crash left.
		b = open(t, "/buf", opt)
		again := drain(t, b, 5*time.Millisecond)
		require.NoError(t, b.Close())
		d := 0
		for _, id := range again {
			if seen[id] > 0 {
				d++
			}
			seen[id]++
		}
		if mode == faultfs.KeepAll {
			dupsAfterKill += d
			require.LessOrEqual(t, d, 4, "cycle %d: after a kill -9 only the lease in flight may come again", c)
		} else {
			dupsAfterPowerLoss += d
		}
	}
	var missing []int
	for id := range acked {
		if seen[id] == 0 {
			missing = append(missing, id)
		}
	}
	require.Empty(t, missing, "acknowledged records lost")
	t.Logf("%d crash cycles, %d records: duplicates %d after kill -9, %d after power loss", cycles, next, dupsAfterKill, dupsAfterPowerLoss)
}

// One batch spans two segments and only the second one's fsync fails: the
// first segment's part of the batch was synced, but the whole batch is
// written again, so that part must not stay readable too (it did: records
// 0..7 came out twice without any crash).
func TestFailedSyncOfASecondSegmentNoDuplicates(t *testing.T) {
	fs := faultfs.New()
	opt := testOptions(fs)
	opt.MaxFileSize = 1 << 10
	b := open(t, "/buf", opt)
	defer b.Close()
	b.retryMin, b.retryMax = time.Millisecond, 4*time.Millisecond
	var failed atomic.Bool
	fs.Fault(func(op faultfs.Op, path string) error {
		if op == faultfs.OpSync && strings.HasSuffix(path, "0000000000000002.seg") && failed.CompareAndSwap(false, true) {
			return faultfs.ENOSPC
		}
		return nil
	})
	o := newOwner()
	require.NoError(t, b.Push(context.Background(), entry(o, seq(0, 20)...)))
	require.True(t, o.wait(t, 5*time.Second))
	require.True(t, failed.Load(), "the fault never hit: the batch did not span two segments")
	assert.Equal(t, seq(0, 20), drain(t, b, 200*time.Millisecond))
}
