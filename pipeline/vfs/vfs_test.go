package vfs

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	require.NoError(t, MkdirAllDurable(OS, dir))
	require.NoError(t, MkdirAllDurable(OS, dir), "idempotent")
	p := filepath.Join(dir, "cp")
	require.NoError(t, WriteFileAtomic(OS, p, []byte("one"), 0o640))
	require.NoError(t, WriteFileAtomic(OS, p, []byte("two"), 0o640))
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	assert.Equal(t, "two", string(b))
	names, err := OS.ReadDir(dir)
	require.NoError(t, err)
	assert.Equal(t, []string{"cp"}, names, "no temporary file left")
	size, isDir, err := OS.Stat(p)
	require.NoError(t, err)
	assert.Equal(t, int64(3), size)
	assert.False(t, isDir)

	f, err := OS.OpenFile(p, os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("x"), 5)
	require.NoError(t, err)
	n, err := f.Size()
	require.NoError(t, err)
	assert.Equal(t, int64(6), n)
	require.NoError(t, f.Sync())
	require.NoError(t, f.Truncate(1))
	require.NoError(t, f.Close())
	require.NoError(t, OS.SyncDir(dir))
	require.NoError(t, OS.Rename(p, p+"2"))
	require.NoError(t, OS.Remove(p+"2"))

	// A file in the way of a directory is an error.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "f"), nil, 0o640))
	assert.Error(t, MkdirAllDurable(OS, filepath.Join(dir, "f", "g")))
}

func TestLockExcludes(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	l, err := OS.Lock(p)
	require.NoError(t, err)
	_, err = OS.Lock(p)
	assert.ErrorIs(t, err, ErrLocked)
	require.NoError(t, l.Close())
	l, err = OS.Lock(p)
	require.NoError(t, err)
	require.NoError(t, l.Close())
}
