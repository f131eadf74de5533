// Package vfs is the small filesystem interface that tern's durable state
// (disk buffers, ledgers, checkpoints) goes through. OS is the real thing;
// internal/testutil/faultfs implements the same interface in memory with a crash
// model and fault injection, so tests can prove what survives a power loss,
// a full disk or an I/O error.
//
// The interface is deliberately POSIX-shaped: data written to a file is only
// durable after File.Sync, and a created, renamed or removed name is only
// durable after SyncDir on its directory. Code that needs durability must
// say so; the fault layer drops whatever it did not.
package vfs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
)

// FS is a filesystem.
type FS interface {
	// OpenFile opens name with os.O_* flags, like os.OpenFile.
	OpenFile(name string, flag int, perm fs.FileMode) (File, error)
	// Remove removes a file or an empty directory.
	Remove(name string) error
	// Rename renames oldpath to newpath, replacing newpath atomically.
	Rename(oldpath, newpath string) error
	// MkdirAll creates a directory and its parents.
	MkdirAll(path string, perm fs.FileMode) error
	// ReadDir returns the names in a directory, sorted.
	ReadDir(name string) ([]string, error)
	// Stat returns the size of a file and whether it is a directory.
	Stat(name string) (size int64, dir bool, err error)
	// SyncDir makes the directory's entries durable (fsync of the directory).
	SyncDir(name string) error
	// Lock takes an exclusive advisory lock on name (created if missing),
	// held until the returned Closer is closed or the process dies. It
	// fails at once if another process holds it.
	Lock(name string) (io.Closer, error)
}

// File is an open file.
type File interface {
	io.Reader
	io.ReaderAt
	io.Writer
	io.WriterAt
	io.Closer
	// Sync makes the file's data durable (fsync).
	Sync() error
	// Truncate changes the file's size.
	Truncate(size int64) error
	// Size returns the current size.
	Size() (int64, error)
}

// ErrLocked is returned by Lock when another process holds the lock.
var ErrLocked = errors.New("locked by another process")

// OS is the operating system's filesystem.
var OS FS = osFS{}

type osFS struct{}

type osFile struct{ *os.File }

func (f osFile) Size() (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func (osFS) OpenFile(name string, flag int, perm fs.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) Remove(name string) error                     { return os.Remove(name) }
func (osFS) Rename(oldpath, newpath string) error         { return os.Rename(oldpath, newpath) }
func (osFS) MkdirAll(path string, perm fs.FileMode) error { return os.MkdirAll(path, perm) }

func (osFS) ReadDir(name string) ([]string, error) {
	des, err := os.ReadDir(name)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(des))
	for i, d := range des {
		names[i] = d.Name()
	}
	sort.Strings(names)
	return names, nil
}

func (osFS) Stat(name string) (int64, bool, error) {
	st, err := os.Stat(name)
	if err != nil {
		return 0, false, err
	}
	return st.Size(), st.IsDir(), nil
}

func (osFS) SyncDir(name string) error {
	d, err := os.Open(name)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func (osFS) Lock(name string) (io.Closer, error) { return lockFile(name) }

// MkdirAllDurable creates dir and its missing parents and makes each new
// entry durable by syncing the directory that holds it.
func MkdirAllDurable(fsys FS, dir string) error {
	dir = filepath.Clean(dir)
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, isDir, err := fsys.Stat(d); err == nil {
			if !isDir {
				return &fs.PathError{Op: "mkdir", Path: d, Err: errors.New("not a directory")}
			}
			break
		}
		missing = append(missing, d)
		if p := filepath.Dir(d); p == d {
			break
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if err := fsys.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	for _, d := range missing {
		if err := fsys.SyncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

// WriteFileAtomic replaces name with data so that a crash leaves either the
// old or the new content, never a mix or an empty file: it writes a
// temporary file, syncs it, renames it over name and syncs the directory.
func WriteFileAtomic(fsys FS, name string, data []byte, perm fs.FileMode) error {
	tmp := name + ".tmp"
	f, err := fsys.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fsys.Rename(tmp, name)
	}
	if err == nil {
		err = fsys.SyncDir(filepath.Dir(name))
	}
	if err != nil {
		_ = fsys.Remove(tmp)
	}
	return err
}
