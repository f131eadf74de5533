// Package faultfs is an in-memory vfs.FS for crash-consistency and fault
// tests. It keeps two states of everything: what a running process sees
// (the page cache) and what a power loss would leave (the disk).
//
//   - Data written to a file reaches the disk only through File.Sync. A
//     failed Sync loses the writes it covered for good, as Linux does after
//     an fsync error: later Syncs do not bring them back.
//   - A created, renamed or removed name reaches the disk only through
//     SyncDir of its directory (both directories for a rename).
//   - Crash returns the filesystem as a restarted machine sees it: the disk
//     state plus, depending on the mode, some of the unsynced writes (torn
//     at 512-byte sector boundaries) and a prefix of the unsynced directory
//     operations, as in the ALICE model (OSDI '14). Handles and the old FS
//     value stop working.
//   - Fault lets a test fail chosen operations (EIO, ENOSPC), and
//     SetCapacity makes writes past a byte budget short with ENOSPC.
package faultfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/ternlog/tern/pipeline/vfs"
)

// Sector is the unit a torn write is cut at.
const Sector = 512

// Op names an operation for Fault.
type Op string

// Operations a fault can hit.
const (
	OpOpen     Op = "open"
	OpRead     Op = "read"
	OpWrite    Op = "write"
	OpSync     Op = "sync"
	OpTruncate Op = "truncate"
	OpSyncDir  Op = "syncdir"
	OpRename   Op = "rename"
	OpRemove   Op = "remove"
	OpMkdir    Op = "mkdir"
)

// Errors a test typically injects.
var (
	EIO    error = syscall.EIO
	ENOSPC error = syscall.ENOSPC
)

// ErrCrashed is returned by every operation of an FS or File from before a
// Crash.
var ErrCrashed = errors.New("faultfs: the machine crashed")

// CrashMode says which unsynced writes a Crash keeps.
type CrashMode int

const (
	// KeepNone drops every unsynced write and directory operation.
	KeepNone CrashMode = iota
	// KeepPrefix keeps, per file, a random prefix of the unsynced writes,
	// the last one possibly torn, and a random prefix of the unsynced
	// directory operations.
	KeepPrefix
	// KeepSubset keeps any subset of the unsynced writes of each file,
	// each possibly torn at sector boundaries (a disk that reorders), and
	// a random prefix of the directory operations.
	KeepSubset
	// KeepAll keeps everything: the process died (kill -9), the kernel and
	// its page cache did not.
	KeepAll
)

// FS is one generation of the simulated machine. The zero value is not
// usable; call New.
type FS struct {
	d   *disk
	gen int
}

var _ vfs.FS = (*FS)(nil)

type disk struct {
	mu       sync.Mutex
	gen      int
	live     map[string]*node // what the running system sees
	durable  map[string]*node // what survives a crash
	dirOps   []*dirOp         // unsynced namespace changes, in order
	fault    func(op Op, path string) error
	capacity int64 // 0: unlimited
	locks    map[string]bool
	stats    Stats
}

// Stats counts what happened, for tests that want to see the model at work.
type Stats struct {
	Syncs, DirSyncs, Crashes, Faults int
	DroppedWrites, TornWrites        int
}

type node struct {
	dir     bool
	data    []byte    // live content
	disk    []byte    // durable content
	pending []*dataOp // writes and truncations since the last Sync
}

type dataOp struct {
	off   int64
	data  []byte
	trunc bool // truncation to off
}

type dirOp struct {
	kind     string // create, remove, rename
	name     string
	newName  string // rename
	n        *node
	needSync map[string]bool // directories still to sync
}

// New returns an empty filesystem holding only the root directory.
func New() *FS {
	root := &node{dir: true}
	d := &disk{
		live:    map[string]*node{"/": root},
		durable: map[string]*node{"/": root},
		locks:   map[string]bool{},
	}
	return &FS{d: d}
}

// Fault installs fn, called before each operation with the cleaned path; a
// non-nil error fails the operation without effect (except Sync, whose
// covered writes are then lost, as on Linux). nil removes the hook.
func (f *FS) Fault(fn func(op Op, path string) error) {
	f.d.mu.Lock()
	f.d.fault = fn
	f.d.mu.Unlock()
}

// SetCapacity limits the bytes all files may hold (0: no limit). Writes that
// would pass it are cut short and fail with ENOSPC.
func (f *FS) SetCapacity(n int64) {
	f.d.mu.Lock()
	f.d.capacity = n
	f.d.mu.Unlock()
}

// Used returns the bytes all live files hold.
func (f *FS) Used() int64 {
	f.d.mu.Lock()
	defer f.d.mu.Unlock()
	return f.d.used()
}

// Stats returns the counters.
func (f *FS) Stats() Stats {
	f.d.mu.Lock()
	defer f.d.mu.Unlock()
	return f.d.stats
}

func (d *disk) used() int64 {
	var n int64
	seen := map[*node]bool{}
	for _, nd := range d.live {
		if !nd.dir && !seen[nd] {
			seen[nd] = true
			n += int64(len(nd.data))
		}
	}
	return n
}

func clean(name string) string {
	if !filepath.IsAbs(name) {
		name = "/" + name
	}
	return filepath.Clean(name)
}

// check is called with d.mu held at the start of every operation.
func (f *FS) check(op Op, name string) error {
	if f.gen != f.d.gen {
		return ErrCrashed
	}
	if f.d.fault != nil {
		if err := f.d.fault(op, name); err != nil {
			f.d.stats.Faults++
			return err
		}
	}
	return nil
}

func pathErr(op Op, name string, err error) error {
	return &fs.PathError{Op: string(op), Path: name, Err: err}
}

func (d *disk) parentDir(name string) (*node, error) {
	p, ok := d.live[filepath.Dir(name)]
	if !ok {
		return nil, fs.ErrNotExist
	}
	if !p.dir {
		return nil, syscall.ENOTDIR
	}
	return p, nil
}

func (d *disk) addDirOp(op *dirOp, dirs ...string) {
	op.needSync = map[string]bool{}
	for _, dir := range dirs {
		op.needSync[dir] = true
	}
	d.dirOps = append(d.dirOps, op)
}

// OpenFile supports O_RDONLY, O_WRONLY, O_RDWR, O_CREATE, O_EXCL, O_TRUNC
// and O_APPEND.
func (f *FS) OpenFile(name string, flag int, perm fs.FileMode) (vfs.File, error) {
	name = clean(name)
	d := f.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := f.check(OpOpen, name); err != nil {
		return nil, pathErr(OpOpen, name, err)
	}
	n, ok := d.live[name]
	switch {
	case ok && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, pathErr(OpOpen, name, fs.ErrExist)
	case ok && n.dir:
		if flag&(os.O_WRONLY|os.O_RDWR) != 0 {
			return nil, pathErr(OpOpen, name, syscall.EISDIR)
		}
	case !ok && flag&os.O_CREATE == 0:
		return nil, pathErr(OpOpen, name, fs.ErrNotExist)
	case !ok:
		if _, err := d.parentDir(name); err != nil {
			return nil, pathErr(OpOpen, name, err)
		}
		n = &node{}
		d.live[name] = n
		d.addDirOp(&dirOp{kind: "create", name: name, n: n}, filepath.Dir(name))
	}
	if flag&os.O_TRUNC != 0 && !n.dir && len(n.data) > 0 {
		n.data = n.data[:0]
		n.pending = append(n.pending, &dataOp{off: 0, trunc: true})
	}
	return &file{fs: f, n: n, name: name, flag: flag}, nil
}

// Remove removes a file or an empty directory.
func (f *FS) Remove(name string) error {
	name = clean(name)
	d := f.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := f.check(OpRemove, name); err != nil {
		return pathErr(OpRemove, name, err)
	}
	n, ok := d.live[name]
	if !ok {
		return pathErr(OpRemove, name, fs.ErrNotExist)
	}
	if n.dir {
		prefix := name + "/"
		for k := range d.live {
			if strings.HasPrefix(k, prefix) {
				return pathErr(OpRemove, name, syscall.ENOTEMPTY)
			}
		}
	}
	delete(d.live, name)
	d.addDirOp(&dirOp{kind: "remove", name: name, n: n}, filepath.Dir(name))
	return nil
}

// Rename moves a file (not a directory) and replaces newpath.
func (f *FS) Rename(oldpath, newpath string) error {
	oldpath, newpath = clean(oldpath), clean(newpath)
	d := f.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := f.check(OpRename, oldpath); err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	n, ok := d.live[oldpath]
	if !ok {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: fs.ErrNotExist}
	}
	if n.dir {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: errors.New("faultfs: renaming directories is not modelled")}
	}
	if _, err := d.parentDir(newpath); err != nil {
		return &os.LinkError{Op: "rename", Old: oldpath, New: newpath, Err: err}
	}
	if oldpath == newpath {
		return nil
	}
	delete(d.live, oldpath)
	d.live[newpath] = n
	d.addDirOp(&dirOp{kind: "rename", name: oldpath, newName: newpath, n: n}, filepath.Dir(oldpath), filepath.Dir(newpath))
	return nil
}

// MkdirAll creates directories.
func (f *FS) MkdirAll(path string, perm fs.FileMode) error {
	path = clean(path)
	d := f.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := f.check(OpMkdir, path); err != nil {
		return pathErr(OpMkdir, path, err)
	}
	var todo []string
	for p := path; ; p = filepath.Dir(p) {
		if n, ok := d.live[p]; ok {
			if !n.dir {
				return pathErr(OpMkdir, p, syscall.ENOTDIR)
			}
			break
		}
		todo = append(todo, p)
	}
	for i := len(todo) - 1; i >= 0; i-- {
		n := &node{dir: true}
		d.live[todo[i]] = n
		d.addDirOp(&dirOp{kind: "create", name: todo[i], n: n}, filepath.Dir(todo[i]))
	}
	return nil
}

// ReadDir lists the live names in a directory.
func (f *FS) ReadDir(name string) ([]string, error) {
	name = clean(name)
	d := f.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := f.check(OpRead, name); err != nil {
		return nil, pathErr(OpRead, name, err)
	}
	n, ok := d.live[name]
	if !ok {
		return nil, pathErr(OpRead, name, fs.ErrNotExist)
	}
	if !n.dir {
		return nil, pathErr(OpRead, name, syscall.ENOTDIR)
	}
	var out []string
	for k := range d.live {
		if k != name && filepath.Dir(k) == name {
			out = append(out, filepath.Base(k))
		}
	}
	sort.Strings(out)
	return out, nil
}

// Stat returns a file's live size.
func (f *FS) Stat(name string) (int64, bool, error) {
	name = clean(name)
	d := f.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if f.gen != d.gen {
		return 0, false, pathErr("stat", name, ErrCrashed)
	}
	n, ok := d.live[name]
	if !ok {
		return 0, false, pathErr("stat", name, fs.ErrNotExist)
	}
	return int64(len(n.data)), n.dir, nil
}

// SyncDir makes the directory operations that touch name durable once every
// directory they touch has been synced.
func (f *FS) SyncDir(name string) error {
	name = clean(name)
	d := f.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := f.check(OpSyncDir, name); err != nil {
		return pathErr(OpSyncDir, name, err)
	}
	if n, ok := d.live[name]; !ok || !n.dir {
		return pathErr(OpSyncDir, name, fs.ErrNotExist)
	}
	d.stats.DirSyncs++
	for _, op := range d.dirOps {
		delete(op.needSync, name)
	}
	// Apply, in order, the operations that no longer wait for a sync. A
	// journaled filesystem commits metadata in order, so an operation
	// waiting on another directory holds back those after it.
	k := 0
	for k < len(d.dirOps) && len(d.dirOps[k].needSync) == 0 {
		d.applyDirOp(d.dirOps[k])
		k++
	}
	d.dirOps = d.dirOps[k:]
	return nil
}

func (d *disk) applyDirOp(op *dirOp) {
	switch op.kind {
	case "create":
		d.durable[op.name] = op.n
	case "remove":
		if d.durable[op.name] == op.n {
			delete(d.durable, op.name)
		}
	case "rename":
		if d.durable[op.name] == op.n {
			delete(d.durable, op.name)
		}
		d.durable[op.newName] = op.n
	}
}

// Lock is an in-memory exclusive lock, dropped by Crash.
func (f *FS) Lock(name string) (io.Closer, error) {
	name = clean(name)
	d := f.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if f.gen != d.gen {
		return nil, ErrCrashed
	}
	if d.locks[name] {
		return nil, vfs.ErrLocked
	}
	d.locks[name] = true
	return lockCloser{f, name}, nil
}

type lockCloser struct {
	f    *FS
	name string
}

func (l lockCloser) Close() error {
	l.f.d.mu.Lock()
	defer l.f.d.mu.Unlock()
	if l.f.gen == l.f.d.gen {
		delete(l.f.d.locks, l.name)
	}
	return nil
}

// Crash simulates a power loss and reboot and returns the new generation.
// rng decides which unsynced writes and directory operations survive.
func (f *FS) Crash(rng *rand.Rand, mode CrashMode) *FS {
	d := f.d
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stats.Crashes++
	// Namespace: the durable one plus a prefix of the pending operations.
	keepOps := 0
	switch {
	case mode == KeepAll:
		keepOps = len(d.dirOps)
	case mode != KeepNone && len(d.dirOps) > 0:
		keepOps = rng.IntN(len(d.dirOps) + 1)
	}
	for _, op := range d.dirOps[:keepOps] {
		d.applyDirOp(op)
	}
	d.dirOps = nil
	// Data: the durable content plus some of the pending writes.
	done := map[*node]bool{}
	for _, n := range d.durable {
		if done[n] || n.dir {
			continue
		}
		done[n] = true
		d.settle(n, rng, mode)
	}
	live := make(map[string]*node, len(d.durable))
	for k, n := range d.durable {
		if !n.dir {
			n.data = append([]byte(nil), n.disk...)
			n.pending = nil
		}
		live[k] = n
	}
	// Names whose parent did not survive are unreachable.
	for k := range live {
		for p := filepath.Dir(k); p != "/"; p = filepath.Dir(p) {
			if _, ok := live[p]; !ok {
				delete(live, k)
				break
			}
		}
	}
	durable := make(map[string]*node, len(live))
	for k, n := range live {
		durable[k] = n
	}
	d.live, d.durable = live, durable
	d.locks = map[string]bool{}
	d.gen++
	return &FS{d: d, gen: d.gen}
}

// settle applies to n.disk the pending writes that the crash keeps.
func (d *disk) settle(n *node, rng *rand.Rand, mode CrashMode) {
	ops := n.pending
	n.pending = nil
	if len(ops) == 0 || mode == KeepNone {
		d.stats.DroppedWrites += len(ops)
		return
	}
	keep := make([]bool, len(ops))
	switch mode {
	case KeepAll:
		for i := range ops {
			keep[i] = true
		}
	case KeepPrefix:
		k := rng.IntN(len(ops) + 1)
		for i := range k {
			keep[i] = true
		}
	case KeepSubset:
		for i := range ops {
			keep[i] = rng.IntN(2) == 0
		}
	}
	lastKept := -1
	for i := range ops {
		if keep[i] {
			lastKept = i
		}
	}
	for i, op := range ops {
		if !keep[i] {
			d.stats.DroppedWrites++
			continue
		}
		if op.trunc {
			n.disk = truncate(n.disk, op.off)
			continue
		}
		torn := mode == KeepSubset || (mode == KeepPrefix && i == lastKept)
		n.disk = d.applyWrite(n.disk, op, torn, rng)
	}
}

// applyWrite writes op into b, or only some of its sectors when torn.
func (d *disk) applyWrite(b []byte, op *dataOp, torn bool, rng *rand.Rand) []byte {
	end := op.off + int64(len(op.data))
	if !torn || rng.IntN(3) != 0 { // most writes land whole
		return writeAt(b, op.off, op.data)
	}
	d.stats.TornWrites++
	// Cut into sector pieces; keep a prefix of them or a random subset.
	prefix := rng.IntN(2) == 0
	var cut int64 = -1
	if prefix {
		cut = op.off + rng.Int64N(int64(len(op.data))+1)
	}
	for s := op.off; s < end; {
		next := min((s/Sector+1)*Sector, end)
		keep := false
		if prefix {
			keep = next <= cut
		} else {
			keep = rng.IntN(2) == 0
		}
		if keep {
			b = writeAt(b, s, op.data[s-op.off:next-op.off])
		}
		s = next
	}
	return b
}

func writeAt(b []byte, off int64, p []byte) []byte {
	if need := off + int64(len(p)); need > int64(len(b)) {
		b = append(b, make([]byte, need-int64(len(b)))...)
	}
	copy(b[off:], p)
	return b
}

func truncate(b []byte, size int64) []byte {
	if size <= int64(len(b)) {
		return b[:size:size]
	}
	return append(b, make([]byte, size-int64(len(b)))...)
}

// ReadFile returns the live content of a file (a test helper).
func (f *FS) ReadFile(name string) ([]byte, error) {
	name = clean(name)
	f.d.mu.Lock()
	defer f.d.mu.Unlock()
	n, ok := f.d.live[name]
	if !ok || n.dir {
		return nil, pathErr(OpRead, name, fs.ErrNotExist)
	}
	return append([]byte(nil), n.data...), nil
}

// Mutate changes a file's content in place, live and durable alike, as bit
// rot or an operator's mistake would (a test helper for corrupt state).
func (f *FS) Mutate(name string, fn func([]byte) []byte) error {
	name = clean(name)
	f.d.mu.Lock()
	defer f.d.mu.Unlock()
	n, ok := f.d.live[name]
	if !ok || n.dir {
		return pathErr("mutate", name, fs.ErrNotExist)
	}
	n.data = fn(append([]byte(nil), n.data...))
	n.disk = append([]byte(nil), n.data...)
	n.pending = nil
	return nil
}

type file struct {
	fs     *FS
	n      *node
	name   string
	flag   int
	pos    int64
	closed bool
}

func (h *file) lockCheck(op Op) (*disk, error) {
	d := h.fs.d
	d.mu.Lock()
	if h.closed {
		d.mu.Unlock()
		return nil, pathErr(op, h.name, os.ErrClosed)
	}
	if err := h.fs.check(op, h.name); err != nil {
		d.mu.Unlock()
		return nil, pathErr(op, h.name, err)
	}
	return d, nil
}

func (h *file) Read(p []byte) (int, error) {
	d, err := h.lockCheck(OpRead)
	if err != nil {
		return 0, err
	}
	defer d.mu.Unlock()
	if h.pos >= int64(len(h.n.data)) {
		return 0, io.EOF
	}
	k := copy(p, h.n.data[h.pos:])
	h.pos += int64(k)
	return k, nil
}

func (h *file) ReadAt(p []byte, off int64) (int, error) {
	d, err := h.lockCheck(OpRead)
	if err != nil {
		return 0, err
	}
	defer d.mu.Unlock()
	if off < 0 {
		return 0, pathErr(OpRead, h.name, syscall.EINVAL)
	}
	if off >= int64(len(h.n.data)) {
		return 0, io.EOF
	}
	k := copy(p, h.n.data[off:])
	if k < len(p) {
		return k, io.EOF
	}
	return k, nil
}

func (h *file) Write(p []byte) (int, error) {
	d, err := h.lockCheck(OpWrite)
	if err != nil {
		return 0, err
	}
	defer d.mu.Unlock()
	if h.flag&os.O_APPEND != 0 {
		h.pos = int64(len(h.n.data))
	}
	k, err := h.write(d, p, h.pos)
	h.pos += int64(k)
	return k, err
}

func (h *file) WriteAt(p []byte, off int64) (int, error) {
	d, err := h.lockCheck(OpWrite)
	if err != nil {
		return 0, err
	}
	defer d.mu.Unlock()
	return h.write(d, p, off)
}

// write applies p at off, cut short by the capacity; d.mu is held.
func (h *file) write(d *disk, p []byte, off int64) (int, error) {
	if h.flag&(os.O_WRONLY|os.O_RDWR) == 0 {
		return 0, pathErr(OpWrite, h.name, syscall.EBADF)
	}
	var werr error
	if d.capacity > 0 {
		grow := off + int64(len(p)) - int64(len(h.n.data))
		if free := max(d.capacity-d.used(), 0); grow > 0 && grow > free {
			keep := min(max(int64(len(p))-(grow-free), 0), int64(len(p)))
			p = p[:keep]
			werr = pathErr(OpWrite, h.name, ENOSPC)
		}
	}
	if len(p) > 0 {
		h.n.data = writeAt(h.n.data, off, p)
		h.n.pending = append(h.n.pending, &dataOp{off: off, data: append([]byte(nil), p...)})
	}
	return len(p), werr
}

// Sync moves the pending writes to the disk; when it fails they are lost.
func (h *file) Sync() error {
	d := h.fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if h.closed {
		return pathErr(OpSync, h.name, os.ErrClosed)
	}
	if err := h.fs.check(OpSync, h.name); err != nil {
		// Linux marks the pages clean after a failed writeback: the data
		// stays readable but never reaches the disk.
		d.stats.DroppedWrites += len(h.n.pending)
		h.n.pending = nil
		return pathErr(OpSync, h.name, err)
	}
	d.stats.Syncs++
	for _, op := range h.n.pending {
		if op.trunc {
			h.n.disk = truncate(h.n.disk, op.off)
		} else {
			h.n.disk = writeAt(h.n.disk, op.off, op.data)
		}
	}
	h.n.pending = nil
	return nil
}

func (h *file) Truncate(size int64) error {
	d, err := h.lockCheck(OpTruncate)
	if err != nil {
		return err
	}
	defer d.mu.Unlock()
	if size < 0 {
		return pathErr(OpTruncate, h.name, syscall.EINVAL)
	}
	h.n.data = truncate(h.n.data, size)
	h.n.pending = append(h.n.pending, &dataOp{off: size, trunc: true})
	return nil
}

func (h *file) Size() (int64, error) {
	d := h.fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if h.closed {
		return 0, pathErr("stat", h.name, os.ErrClosed)
	}
	if h.fs.gen != d.gen {
		return 0, pathErr("stat", h.name, ErrCrashed)
	}
	return int64(len(h.n.data)), nil
}

func (h *file) Close() error {
	d := h.fs.d
	d.mu.Lock()
	defer d.mu.Unlock()
	if h.closed {
		return pathErr("close", h.name, os.ErrClosed)
	}
	h.closed = true
	return nil
}

// String describes the filesystem's live names and sizes (for failure
// messages).
func (f *FS) String() string {
	f.d.mu.Lock()
	defer f.d.mu.Unlock()
	names := make([]string, 0, len(f.d.live))
	for k := range f.d.live {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		n := f.d.live[k]
		if n.dir {
			fmt.Fprintf(&b, "%s/\n", k)
		} else {
			fmt.Fprintf(&b, "%s %d bytes (%d on disk, %d pending writes)\n", k, len(n.data), len(n.disk), len(n.pending))
		}
	}
	return b.String()
}
