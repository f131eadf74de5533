package buffer

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
	"github.com/ternlog/tern/pipeline/vfs"
)

// layout is where each record of a closed buffer lives.
type layout struct {
	segs []string      // paths, oldest first
	recs [][]placedRec // per segment
}

type placedRec struct {
	id       int
	seq      uint64
	off, len int64 // of the whole record
}

func readLayout(t *testing.T, dir string) layout {
	t.Helper()
	segs, err := Segments(vfs.OS, dir)
	require.NoError(t, err)
	l := layout{segs: segs}
	for _, p := range segs {
		f, err := os.Open(p)
		require.NoError(t, err)
		st, _ := f.Stat()
		r, err := NewSegmentReader(f, st.Size(), false)
		require.NoError(t, err)
		var recs []placedRec
		for {
			rec, err := r.Next()
			if err != nil {
				break
			}
			m := pipeline.NewMessage()
			require.NoError(t, codec.DecodeMsgpackBytes(rec.Payload, m, nil))
			recs = append(recs, placedRec{idOf(t, m), rec.Seq, rec.Offset, RecordHeaderSize + int64(len(rec.Payload))})
		}
		f.Close()
		l.recs = append(l.recs, recs)
	}
	return l
}

func (l layout) ids(seg int) []int {
	var out []int
	for _, r := range l.recs[seg] {
		out = append(out, r.id)
	}
	return out
}

// fill writes n records into a fresh buffer of small segments and closes it.
func fill(t *testing.T, dir string, n int) layout {
	t.Helper()
	opt := testOptions(nil)
	opt.MaxFileSize = 4 << 10
	b := open(t, dir, opt)
	var last *owner
	for i := 0; i < n; i += 5 {
		last = newOwner()
		require.NoError(t, b.Push(context.Background(), entry(last, seq(i, min(i+5, n))...)))
	}
	require.True(t, last.wait(t, 10*time.Second))
	require.NoError(t, b.Close())
	l := readLayout(t, dir)
	require.GreaterOrEqual(t, len(l.segs), n/40, "want several segments")
	return l
}

func without(all []int, drop ...[]int) []int {
	gone := map[int]bool{}
	for _, d := range drop {
		for _, id := range d {
			gone[id] = true
		}
	}
	var out []int
	for _, id := range all {
		if !gone[id] {
			out = append(out, id)
		}
	}
	return out
}

func quarantined(t *testing.T, dir string) []string {
	t.Helper()
	names, err := os.ReadDir(filepath.Join(dir, quarantineDir))
	require.NoError(t, err)
	var out []string
	for _, n := range names {
		out = append(out, n.Name())
	}
	return out
}

func mutate(t *testing.T, path string, fn func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, fn(b), 0o640))
}

// reopenDrain opens the corrupted buffer (in bounded time), drains it,
// reopens it once more (no crash loop) and returns the ids and the counter.
func reopenDrain(t *testing.T, dir string) (ids []int, corrupt int) {
	t.Helper()
	t0 := time.Now()
	b, tel := openTel(t, dir, testOptions(nil))
	assert.Less(t, time.Since(t0), 10*time.Second, "startup must be bounded")
	ids = drain(t, b, 200*time.Millisecond)
	assert.Equal(t, 0, b.Bytes())
	assert.Equal(t, 0, b.Len())
	require.NoError(t, b.Close())
	b = open(t, dir, testOptions(nil))
	assert.Empty(t, drain(t, b, 50*time.Millisecond), "a drained buffer stays drained")
	require.NoError(t, b.Close())
	return ids, tel.Dropped("corrupt_record")
}

// R5: corrupt local state. Every record not touched by the corruption is
// delivered, the lost ones are counted, evidence goes to quarantine/, and
// startup neither fails nor loops.
func TestCorruptState(t *testing.T) {
	const n = 200
	all := seq(0, n)
	flip := func(l layout, seg, rec int) func([]byte) []byte {
		r := l.recs[seg][rec]
		return func(b []byte) []byte {
			b[r.off+RecordHeaderSize+r.len/2-8] ^= 0x5a // in the payload
			return b
		}
	}

	t.Run("one flipped record", func(t *testing.T) {
		dir := t.TempDir()
		l := fill(t, dir, n)
		mutate(t, l.segs[2], flip(l, 2, 3))
		ids, corrupt := reopenDrain(t, dir)
		assert.Equal(t, without(all, []int{l.recs[2][3].id}), ids)
		assert.Equal(t, 1, corrupt)
		assert.NotEmpty(t, quarantined(t, dir))
	})

	t.Run("ten flipped records", func(t *testing.T) {
		dir := t.TempDir()
		l := fill(t, dir, n)
		rng := mrand.New(mrand.NewPCG(1, 2))
		var lost []int
		picked := map[[2]int]bool{}
		for len(lost) < 10 {
			s := rng.IntN(len(l.segs) - 1) // not the newest: that is the torn-tail case
			r := rng.IntN(len(l.recs[s]))
			if picked[[2]int{s, r}] {
				continue
			}
			picked[[2]int{s, r}] = true
			lost = append(lost, l.recs[s][r].id)
			mutate(t, l.segs[s], flip(l, s, r))
		}
		ids, corrupt := reopenDrain(t, dir)
		assert.Equal(t, without(all, lost), ids)
		assert.Equal(t, 10, corrupt)
	})

	t.Run("flipped length field", func(t *testing.T) {
		dir := t.TempDir()
		l := fill(t, dir, n)
		r := l.recs[1][4]
		mutate(t, l.segs[1], func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[r.off:], 0x00ffff00)
			return b
		})
		ids, corrupt := reopenDrain(t, dir)
		assert.Equal(t, without(all, []int{r.id}), ids)
		assert.Equal(t, 1, corrupt)
	})

	t.Run("truncated last record", func(t *testing.T) {
		dir := t.TempDir()
		l := fill(t, dir, n)
		last := len(l.segs) - 1
		r := l.recs[last][len(l.recs[last])-1]
		require.NoError(t, os.Truncate(l.segs[last], r.off+r.len/2))
		b, tel := openTel(t, dir, testOptions(nil))
		ids := drain(t, b, 200*time.Millisecond)
		require.NoError(t, b.Close())
		assert.Equal(t, without(all, []int{r.id}), ids)
		assert.Equal(t, 1, tel.Dropped("torn_tail"))
		assert.Equal(t, 0, tel.Dropped("corrupt_record"))
	})

	t.Run("zeroed middle segment", func(t *testing.T) {
		dir := t.TempDir()
		l := fill(t, dir, n)
		mutate(t, l.segs[2], func(b []byte) []byte { return make([]byte, len(b)) })
		ids, corrupt := reopenDrain(t, dir)
		assert.Equal(t, without(all, l.ids(2)), ids)
		assert.Equal(t, len(l.recs[2]), corrupt, "exact: the sequence numbers around it are known")
		assert.Len(t, quarantined(t, dir), 1)
	})

	t.Run("zeroed newest segment", func(t *testing.T) {
		dir := t.TempDir()
		l := fill(t, dir, n)
		last := len(l.segs) - 1
		mutate(t, l.segs[last], func(b []byte) []byte { return make([]byte, len(b)) })
		b, tel := openTel(t, dir, testOptions(nil))
		// Nothing follows it to bound the loss until something is written.
		require.NoError(t, b.Push(context.Background(), entry(nil, 1000)))
		ids := drain(t, b, 200*time.Millisecond)
		require.NoError(t, b.Close())
		assert.Equal(t, append(without(all, l.ids(last)), 1000), ids)
		assert.GreaterOrEqual(t, tel.Dropped("corrupt_record"), len(l.recs[last]), "an upper bound")
	})

	t.Run("deleted middle segment", func(t *testing.T) {
		dir := t.TempDir()
		l := fill(t, dir, n)
		require.NoError(t, os.Remove(l.segs[3]))
		ids, corrupt := reopenDrain(t, dir)
		assert.Equal(t, without(all, l.ids(3)), ids)
		assert.Equal(t, len(l.recs[3]), corrupt)
	})

	t.Run("broken segment header", func(t *testing.T) {
		dir := t.TempDir()
		l := fill(t, dir, n)
		mutate(t, l.segs[1], func(b []byte) []byte { b[20] ^= 1; return b })
		ids, corrupt := reopenDrain(t, dir)
		assert.Equal(t, without(all, l.ids(1)), ids)
		assert.Equal(t, len(l.recs[1]), corrupt)
		q := quarantined(t, dir)
		require.Len(t, q, 1)
		assert.Contains(t, q[0], filepath.Base(l.segs[1]))
	})

	for _, c := range []struct {
		name string
		data func() []byte
	}{
		{"garbage ledger", func() []byte { p := make([]byte, 700); _, _ = rand.Read(p); return p }},
		{"zero-length ledger", func() []byte { return nil }},
		{"NUL-filled ledger", func() []byte { return make([]byte, 1024) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			fill(t, dir, n)
			// Consume some first: the lost cursor makes them come again.
			b := open(t, dir, testOptions(nil))
			l, err := b.Next(context.Background(), 30, 1<<20, 0, time.Second)
			require.NoError(t, err)
			l.Commit()
			require.NoError(t, b.Close())
			require.NoError(t, os.WriteFile(filepath.Join(dir, ledgerName), c.data(), 0o640))
			ids, corrupt := reopenDrain(t, dir)
			assert.Equal(t, all, ids, "everything again: duplicates, never loss")
			assert.Equal(t, 0, corrupt)
		})
	}

	t.Run("ledger names a missing segment", func(t *testing.T) {
		dir := t.TempDir()
		l := fill(t, dir, n)
		b := open(t, dir, testOptions(nil))
		got := 0
		for got < len(l.recs[0])+2 { // into segment 1
			ls, err := b.Next(context.Background(), len(l.recs[0])+2-got, 1<<20, 0, time.Second)
			require.NoError(t, err)
			got += len(ls.Msgs())
			ls.Commit()
		}
		require.NoError(t, b.Close())
		c, ok := ReadLedger(vfs.OS, dir)
		require.True(t, ok)
		require.NoError(t, os.Remove(filepath.Join(dir, SegmentName(c.Segment))))
		ids, corrupt := reopenDrain(t, dir)
		assert.Equal(t, without(all, l.ids(0), l.ids(1)), ids)
		assert.Equal(t, len(l.recs[1])-2, corrupt)
	})

	t.Run("garbage everywhere", func(t *testing.T) {
		// Random bytes over every file, many times: Open must still
		// succeed, quickly, and the buffer must work afterwards.
		rng := mrand.New(mrand.NewPCG(3, 4))
		for round := range 20 {
			dir := t.TempDir()
			l := fill(t, dir, 60)
			for _, p := range append(slices.Clone(l.segs), filepath.Join(dir, ledgerName)) {
				mutate(t, p, func(b []byte) []byte {
					for range 1 + rng.IntN(8) {
						if len(b) == 0 {
							break
						}
						b[rng.IntN(len(b))] = byte(rng.Uint32())
					}
					if rng.IntN(4) == 0 {
						b = b[:rng.IntN(len(b)+1)]
					}
					return b
				})
			}
			t0 := time.Now()
			b := open(t, dir, testOptions(nil))
			require.Less(t, time.Since(t0), 10*time.Second, "round %d", round)
			got := drain(t, b, 50*time.Millisecond)
			for _, id := range got {
				require.Less(t, id, 60, "spurious record")
			}
			require.NoError(t, b.Push(context.Background(), entry(nil, 500)))
			assert.Equal(t, []int{500}, drain(t, b, 100*time.Millisecond))
			require.NoError(t, b.Close())
		}
	})
}

// A large newest segment full of garbage after a valid header: recovery
// scans it once, in bounded time and memory, and moves on.
func TestGarbageTailBoundedStartup(t *testing.T) {
	dir := t.TempDir()
	fill(t, dir, 50)
	segs, err := Segments(vfs.OS, dir)
	require.NoError(t, err)
	last := segs[len(segs)-1]
	head, err := os.ReadFile(last)
	require.NoError(t, err)
	junk := make([]byte, 8<<20)
	_, _ = rand.Read(junk)
	require.NoError(t, os.WriteFile(last, append(head, junk...), 0o640))
	t0 := time.Now()
	b := open(t, dir, testOptions(nil))
	took := time.Since(t0)
	defer b.Close()
	assert.Less(t, took, 10*time.Second)
	t.Logf("recovered past 8 MiB of garbage in %v", took)
	st, err := os.Stat(last)
	require.NoError(t, err)
	assert.Equal(t, int64(len(head)), st.Size(), "the torn tail is cut")
	ids := drain(t, b, 100*time.Millisecond)
	assert.Equal(t, seq(0, 50), ids)
}
