package faultfs

import (
	"bytes"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ternlog/tern/pipeline/vfs"
)

func create(t *testing.T, f *FS, name string, data string, sync, syncDir bool) vfs.File {
	t.Helper()
	h, err := f.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o640)
	require.NoError(t, err)
	_, err = h.Write([]byte(data))
	require.NoError(t, err)
	if sync {
		require.NoError(t, h.Sync())
	}
	if syncDir {
		require.NoError(t, f.SyncDir("/d"))
	}
	return h
}

func setup(t *testing.T) *FS {
	f := New()
	require.NoError(t, f.MkdirAll("/d", 0o750))
	require.NoError(t, f.SyncDir("/"))
	return f
}

func TestSyncedDataAndNamesSurvive(t *testing.T) {
	f := setup(t)
	create(t, f, "/d/a", "hello", true, true)
	g := f.Crash(rand.New(rand.NewPCG(1, 2)), KeepNone)
	b, err := g.ReadFile("/d/a")
	require.NoError(t, err)
	assert.Equal(t, "hello", string(b))
}

// A file whose data was synced but whose directory entry was not vanishes:
// the bug class of Vector PR #25766.
func TestUnsyncedDirectoryEntryVanishes(t *testing.T) {
	f := setup(t)
	create(t, f, "/d/a", "hello", true, false)
	g := f.Crash(rand.New(rand.NewPCG(1, 2)), KeepNone)
	_, err := g.ReadFile("/d/a")
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

func TestUnsyncedDataDropped(t *testing.T) {
	f := setup(t)
	h := create(t, f, "/d/a", "hello", true, true)
	_, err := h.Write([]byte(" world"))
	require.NoError(t, err)
	g := f.Crash(rand.New(rand.NewPCG(1, 2)), KeepNone)
	b, _ := g.ReadFile("/d/a")
	assert.Equal(t, "hello", string(b))
	// The old handle and the old FS are dead.
	_, err = h.Write([]byte("x"))
	assert.ErrorIs(t, err, ErrCrashed)
	_, err = f.OpenFile("/d/a", os.O_RDONLY, 0)
	assert.ErrorIs(t, err, ErrCrashed)
}

// A failed fsync loses its writes for good (Linux after EIO): a later
// successful fsync does not bring them back, though reads still see them.
func TestFailedSyncLosesWrites(t *testing.T) {
	f := setup(t)
	h := create(t, f, "/d/a", "aaaa", true, true)
	_, err := h.Write([]byte("bbbb"))
	require.NoError(t, err)
	f.Fault(func(op Op, _ string) error {
		if op == OpSync {
			return EIO
		}
		return nil
	})
	assert.ErrorIs(t, h.Sync(), EIO)
	f.Fault(nil)
	require.NoError(t, h.Sync())
	live, _ := f.ReadFile("/d/a")
	assert.Equal(t, "aaaabbbb", string(live))
	g := f.Crash(rand.New(rand.NewPCG(1, 2)), KeepSubset)
	b, _ := g.ReadFile("/d/a")
	assert.Equal(t, "aaaa", string(b))
}

func TestCapacityShortWrite(t *testing.T) {
	f := setup(t)
	f.SetCapacity(10)
	h, err := f.OpenFile("/d/a", os.O_RDWR|os.O_CREATE, 0o640)
	require.NoError(t, err)
	n, err := h.Write([]byte("0123456789abc"))
	assert.Equal(t, 10, n)
	assert.True(t, errors.Is(err, ENOSPC))
	f.SetCapacity(0)
	_, err = h.Write([]byte("abc"))
	require.NoError(t, err)
	assert.Equal(t, int64(13), f.Used())
}

// Torn and reordered writes: whatever a crash keeps is, sector by sector,
// either the old or the new content, never anything else.
func TestCrashKeepsOnlyWrittenSectors(t *testing.T) {
	for seed := range uint64(200) {
		f := setup(t)
		h := create(t, f, "/d/a", "", true, true)
		want := make([]byte, 0, 8*Sector)
		for i := range 8 {
			p := bytes.Repeat([]byte{byte('A' + i)}, Sector+37)
			_, err := h.Write(p)
			require.NoError(t, err)
			want = append(want, p...)
		}
		mode := KeepPrefix
		if seed%2 == 1 {
			mode = KeepSubset
		}
		g := f.Crash(rand.New(rand.NewPCG(seed, 7)), mode)
		got, err := g.ReadFile("/d/a")
		require.NoError(t, err)
		require.LessOrEqual(t, len(got), len(want))
		for i, c := range got {
			if c != 0 && c != want[i] {
				t.Fatalf("seed %d: byte %d is %q, want %q or 0", seed, i, c, want[i])
			}
		}
	}
}

func TestRenameNeedsBothDirectories(t *testing.T) {
	f := setup(t)
	require.NoError(t, f.MkdirAll("/d/q", 0o750))
	require.NoError(t, f.SyncDir("/d"))
	create(t, f, "/d/a", "x", true, true)
	require.NoError(t, f.Rename("/d/a", "/d/q/a"))
	require.NoError(t, f.SyncDir("/d/q"))
	g := f.Crash(rand.New(rand.NewPCG(1, 2)), KeepNone)
	_, err := g.ReadFile("/d/q/a")
	assert.ErrorIs(t, err, fs.ErrNotExist, "only one of two directories synced")
	_, err = g.ReadFile("/d/a")
	assert.NoError(t, err)

	require.NoError(t, g.Rename("/d/a", "/d/q/a"))
	require.NoError(t, g.SyncDir("/d/q"))
	require.NoError(t, g.SyncDir("/d"))
	h := g.Crash(rand.New(rand.NewPCG(1, 2)), KeepNone)
	_, err = h.ReadFile("/d/q/a")
	assert.NoError(t, err)
	names, err := h.ReadDir("/d")
	require.NoError(t, err)
	assert.Equal(t, []string{"q"}, names)
}

func TestLock(t *testing.T) {
	f := setup(t)
	l, err := f.Lock("/d/lock")
	require.NoError(t, err)
	_, err = f.Lock("/d/lock")
	assert.ErrorIs(t, err, vfs.ErrLocked)
	require.NoError(t, l.Close())
	_, err = f.Lock("/d/lock")
	require.NoError(t, err)
	g := f.Crash(rand.New(rand.NewPCG(1, 2)), KeepNone)
	_, err = g.Lock("/d/lock")
	assert.NoError(t, err, "a crash releases locks")
}

func TestWriteFileAtomic(t *testing.T) {
	for seed := range uint64(50) {
		f := setup(t)
		require.NoError(t, vfs.WriteFileAtomic(f, "/d/cp", []byte("old"), 0o640))
		g := f
		func() {
			g.Fault(func(op Op, _ string) error {
				// Crash somewhere inside the second write.
				return nil
			})
			h, err := g.OpenFile("/d/cp.tmp", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
			require.NoError(t, err)
			_, _ = h.Write([]byte("new"))
			if seed%3 > 0 {
				require.NoError(t, h.Sync())
			}
			if seed%3 == 2 {
				require.NoError(t, g.Rename("/d/cp.tmp", "/d/cp"))
			}
		}()
		c := g.Crash(rand.New(rand.NewPCG(seed, 1)), KeepSubset)
		b, err := c.ReadFile("/d/cp")
		require.NoError(t, err)
		assert.Contains(t, []string{"old", "new"}, string(b), "seed %d", seed)
	}
}
