package tail

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

type devIno struct{ dev, ino uint64 }

type found struct {
	path         string
	id           devIno
	size, mtime  int64
	hintedByNode bool
}

// glob lists the regular files the patterns match now, without duplicates.
func (t *Input) glob() []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range t.patterns {
		ms, _ := filepath.Glob(p) // patterns were validated
		for _, m := range ms {
			if seen[m] || t.excluded(m) {
				continue
			}
			seen[m] = true
			out = append(out, m)
		}
	}
	return out
}

func (t *Input) excluded(path string) bool { return t.cfg.excluded(path) }

// matches reports whether path is one the globs select.
func (t *Input) matches(path string) bool {
	for _, p := range t.patterns {
		if ok, _ := filepath.Match(p, path); ok {
			return !t.excluded(path)
		}
	}
	return false
}

// scan evaluates the globs and opens the files that have something to read:
// files already open are recognised by inode (so a rename only updates the
// path), the others by fingerprint. It returns how many files it opened.
func (t *Input) scan(now time.Time, first bool) int {
	held := t.held.Load() // the names the waker takes for open files
	live := make(map[devIno]*harvester, len(t.hs))
	for _, h := range t.hs {
		live[devIno{h.dev, h.ino}] = h
		h.inGlob = false
	}
	t.mu.Lock()
	hint := make(map[devIno]*entry, len(t.entries))
	for _, e := range t.entries {
		if e.h == nil && e.ino != 0 {
			hint[devIno{e.dev, e.ino}] = e
		}
	}
	t.mu.Unlock()

	var rest []found
	present := map[devIno]int64{} // the files found, by node: their sizes
	for _, p := range t.glob() {
		fi, err := os.Stat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		dev, ino, _ := fileID(fi)
		id := devIno{dev, ino}
		present[id] = fi.Size()
		if h := live[id]; h != nil {
			if !h.inGlob {
				h.inGlob = true
				t.mu.Lock()
				h.e.path, h.e.seen = p, now
				t.mu.Unlock()
			}
			continue
		}
		f := found{path: p, id: id, size: fi.Size(), mtime: fi.ModTime().UnixNano()}
		if e := hint[id]; e != nil {
			f.hintedByNode = true
			if e.size == f.size && e.mtime == f.mtime {
				// Unchanged since we closed it: nothing to read.
				t.mu.Lock()
				e.path, e.seen = p, now
				t.mu.Unlock()
				continue
			}
			if f.size == 0 && e.next > 0 {
				// Emptied (truncated while closed or while tern was
				// down): the content e read is no longer at this inode.
				// An empty file is not opened, so say it here, or a copy
				// of that content (copytruncate) waits for it for ever.
				t.mu.Lock()
				e.dev, e.ino, e.truncated = 0, 0, true
				t.markDirty()
				t.mu.Unlock()
			}
		}
		rest = append(rest, f)
	}
	// Files whose inode we know go first, so a copy never claims the
	// position of an original that is still there.
	sort.SliceStable(rest, func(i, j int) bool { return rest[i].hintedByNode && !rest[j].hintedByNode })
	opened := 0
	for _, f := range rest {
		if f.size == 0 {
			if held != nil && (*held)[f.path] {
				// A new, empty file under the name of an open one (a
				// create rotation). Until the end of this scan the waker
				// takes a write to it for a write to the open file,
				// which only wakes the loop: rescan at that wake-up.
				t.needScan = true
			}
			continue
		}
		if live[f.id] != nil {
			continue // opened under another name during this scan
		}
		c, err := t.openCandidate(f.path)
		if err != nil {
			t.set.Error("open")
			t.warnLimited("open:"+f.path, "cannot open file", "path", f.path, "err", err)
			continue
		}
		if live[c.id] != nil || len(c.prefix) == 0 {
			c.close()
			continue
		}
		if h := t.adopt(c, now, first, present); h != nil {
			live[c.id] = h
			h.inGlob = true
			opened++
		}
	}
	if first {
		t.mu.Lock()
		t.fresh = false
		t.mu.Unlock()
	}
	t.publishPaths()
	return opened
}

// candidate is a file opened to be identified.
type candidate struct {
	path        string
	f           *os.File
	zr          *gzip.Reader
	id          devIno
	size, mtime int64
	prefix      []byte // first fingerprint bytes (decompressed for gzip)
	gzPartial   bool   // the gzip stream is not complete yet
}

func (c *candidate) close() {
	if c.f != nil {
		c.f.Close()
		c.f = nil
	}
}

func (t *Input) openCandidate(path string) (*candidate, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	dev, ino, _ := fileID(fi)
	c := &candidate{path: path, f: f, id: devIno{dev, ino}, size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	n := int(t.cfg.FingerprintBytes)
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(f)
		switch {
		case err == nil:
			c.zr = zr
			c.prefix = make([]byte, n)
			k, err := io.ReadFull(zr, c.prefix)
			c.prefix = c.prefix[:k]
			if err == io.ErrUnexpectedEOF && k == 0 {
				c.gzPartial = true
			}
			return c, nil
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			// The compressor has not written the header yet.
			c.prefix = nil
			return c, nil
		default:
			// Not gzip after all: read it as a plain file.
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				f.Close()
				return nil, err
			}
		}
	}
	c.prefix = make([]byte, min(int64(n), c.size))
	k, err := f.ReadAt(c.prefix, 0)
	c.prefix = c.prefix[:k]
	if err != nil && err != io.EOF {
		f.Close()
		return nil, err
	}
	return c, nil
}

// adopt finds the entry c continues, or makes a new one, and starts a
// harvester on it. It returns nil when c is left alone for now.
func (t *Input) adopt(c *candidate, now time.Time, first bool, present map[devIno]int64) *harvester {
	L := int64(len(c.prefix))
	sums := map[int64]hash16{}
	t.mu.Lock()
	var cands []*entry
	for _, e := range t.entries {
		if e.fpLen <= 0 || e.fpLen > L {
			continue
		}
		s, ok := sums[e.fpLen]
		if !ok {
			s = sum16(c.prefix[:e.fpLen])
			sums[e.fpLen] = s
		}
		if s == e.fp {
			cands = append(cands, e)
		}
	}
	t.mu.Unlock()
	sort.SliceStable(cands, func(i, j int) bool {
		a, b := cands[i], cands[j]
		ai, bi := devIno{a.dev, a.ino} == c.id, devIno{b.dev, b.ino} == c.id
		if ai != bi {
			return ai
		}
		if a.fpLen != b.fpLen {
			return a.fpLen > b.fpLen
		}
		return a.seen.After(b.seen)
	})
	for _, e := range cands {
		hint := devIno{e.dev, e.ino}
		size, there := present[hint]
		if e.h != nil || (e.ino != 0 && hint != c.id && there) {
			// Same content as a file that is still there under another
			// inode: a copy (copytruncate in progress, a compressed
			// archive of a live file). It continues that file once the
			// original is truncated or gone; until then, wait.
			if e.h != nil {
				size = -1
				if fi, err := e.h.f.Stat(); err == nil {
					size = fi.Size()
				}
			}
			if e.next == 0 && c.zr == nil && !e.gz && size >= 0 && c.size > size {
				// But a copy is never longer than its original. While
				// nothing of e was handed on, a longer file that only
				// starts like it (e holds the first bytes of a line) is
				// read on its own: nothing is repeated or lost.
				continue
			}
			c.close()
			return nil
		}
		h, v, err := t.resume(c, e, now)
		if err != nil {
			c.close()
			t.set.Error("read")
			t.warnLimited("open:"+c.path, "cannot read file", "path", c.path, "err", err)
			return nil
		}
		switch v {
		case resumed:
			return h
		case olderCopy:
			return nil
		}
		if c.zr != nil || c.f == nil {
			// The stream was consumed while checking: start over.
			c.close()
			nc, err := t.openCandidate(c.path)
			if err != nil || nc.id != c.id || len(nc.prefix) < len(c.prefix) {
				if nc != nil {
					nc.close()
				}
				return nil
			}
			c = nc
		}
	}
	if t.startsLikeOpenFile(c) {
		// Equal to the start of a file being read, and no fingerprint
		// said so: the file is longer than c's fingerprint (c is most
		// likely a copy still being written: wait until it is long
		// enough to tell), or it has not been read since it started over
		// after a truncation and has no fingerprint yet (c is a copy of
		// it: wait until the reader has read it).
		c.close()
		return nil
	}
	// A file never seen before. If its inode was another file's, that
	// file was rewritten in place: a copy of it may still turn up, or
	// have waited for it earlier in this scan (look again next round).
	t.mu.Lock()
	for _, o := range t.entries {
		if o.h == nil && o.ino != 0 && (devIno{o.dev, o.ino}) == c.id {
			o.dev, o.ino, o.truncated = 0, 0, true
			t.markDirty()
			t.needScan = true
		}
	}
	t.mu.Unlock()
	e := &entry{dev: c.id.dev, ino: c.id.ino, path: c.path, gz: c.zr != nil, seen: now, size: -1, nextAnchor: emptyAnchor}
	e.ackedAt(0, emptyAnchor)
	t.mu.Lock()
	e.fp, e.fpLen = sum16(c.prefix), L
	t.entries = append(t.entries, e)
	t.mu.Unlock()
	h := t.startHarvester(c, e)
	t.mu.Lock()
	e.h = h
	t.mu.Unlock()
	if !(first && t.fresh && t.cfg.ReadFrom == "end") {
		if c.zr == nil {
			h.ident = c.prefix
		}
		return h
	}
	// read_from = "end": what is there already counts as handled.
	if c.zr != nil {
		if err := h.skipAll(); err != nil {
			t.closeHarvester(h)
			return nil
		}
	} else {
		start, ok := lastLineStart(c.f, c.size, t.cfg.MaxLineBytes.N())
		if err := h.seekPlain(start); err != nil {
			t.closeHarvester(h)
			return nil
		}
		if !ok {
			// Inside an over-long line: skip its rest without counting it.
			h.discarding, h.lineStart, h.lineWin = true, start, h.win
		}
	}
	t.mu.Lock()
	e.next, e.nextAnchor = h.off, h.win.sum()
	if h.discarding {
		e.next, e.nextAnchor = h.lineStart, h.lineWin.sum()
	}
	e.ackedAt(e.next, e.nextAnchor)
	t.markDirty()
	t.mu.Unlock()
	return h
}

type verdict int

const (
	mismatch  verdict = iota // not the file e describes
	resumed                  // a harvester continues e
	olderCopy                // a copy of e taken before e's position: all read
)

// resume starts a harvester on c at e's position after checking that the
// bytes before it are the ones e remembers. A file with e's fingerprint
// that ends before e's position is a copy of an earlier state of e (the
// copy of copytruncate, taken before lines we then read from the original):
// it is recorded as read, so it is not delivered twice.
func (t *Input) resume(c *candidate, e *entry, now time.Time) (*harvester, verdict, error) {
	if c.zr == nil {
		if c.size < e.next && !e.truncated {
			return nil, mismatch, nil
		}
		if c.size < e.next {
			var w window
			if err := readWindow(c.f, c.size, &w); err != nil {
				return nil, mismatch, err
			}
			t.recordRead(c, c.size, w.sum(), false, now)
			c.close()
			return nil, olderCopy, nil
		}
		// Start from the bytes just checked, not a second read of them: a
		// rewrite in between must show at the first read, not be taken in.
		// A position within the identifying prefix is checked on it.
		inPrefix := e.next <= int64(len(c.prefix))
		var w window
		if inPrefix {
			w.fold(c.prefix[:e.next])
		} else if err := readWindow(c.f, e.next, &w); err != nil {
			return nil, mismatch, err
		}
		if w.sum() != e.nextAnchor {
			return nil, mismatch, nil
		}
		h := t.startHarvester(c, e)
		if err := h.seekPlainFrom(e.next, w); err != nil {
			t.closeHarvester(h)
			return nil, mismatch, err
		}
		if inPrefix {
			h.ident = c.prefix
		}
		t.attach(h, c, e, now)
		return h, resumed, nil
	}
	// gzip: skip to the position through the stream.
	h := t.startHarvester(c, e)
	ok, err := h.skipTo(e.next, e.nextAnchor)
	drop := func() {
		h.f.Close()
		t.hs = t.hs[:len(t.hs)-1]
		c.f = nil
	}
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		drop()
		return nil, olderCopy, nil // still being written: look again when it grows
	case err != nil:
		drop()
		return nil, mismatch, err
	case !ok && h.gzEnd && h.off < e.next && e.truncated:
		h.fold()
		t.recordRead(c, h.off, h.win.sum(), true, now)
		drop()
		return nil, olderCopy, nil
	case !ok:
		drop()
		return nil, mismatch, nil
	}
	t.attach(h, c, e, now)
	return h, resumed, nil
}

// recordRead remembers c as read up to n without opening it.
func (t *Input) recordRead(c *candidate, n int64, anchor hash16, done bool, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := &entry{
		fp: sum16(c.prefix), fpLen: int64(len(c.prefix)), dev: c.id.dev, ino: c.id.ino, path: c.path,
		size: c.size, mtime: c.mtime, gz: c.zr != nil, done: done,
		next: n, nextAnchor: anchor, seen: now,
	}
	e.ackedAt(n, anchor)
	t.entries = append(t.entries, e)
	t.markDirty()
}

func (t *Input) attach(h *harvester, c *candidate, e *entry, now time.Time) {
	t.mu.Lock()
	e.h = h
	e.dev, e.ino, e.path, e.seen, e.gz = c.id.dev, c.id.ino, c.path, now, c.zr != nil
	if L := int64(len(c.prefix)); L > e.fpLen {
		e.fp, e.fpLen = sum16(c.prefix), L
	}
	t.mu.Unlock()
}

// startHarvester turns an identified candidate into a harvester at offset 0.
func (t *Input) startHarvester(c *candidate, e *entry) *harvester {
	size := min(64<<10, t.cfg.MaxLineBytes.N()+1)
	h := &harvester{
		t: t, e: e, f: c.f, zr: c.zr, src: c.path, dev: c.id.dev, ino: c.id.ino,
		buf: make([]byte, size), inGlob: true, checkedAt: -1,
	}
	if c.zr != nil {
		// The prefix was read from the stream already: it is buffered input.
		if len(c.prefix) > len(h.buf) {
			h.buf = make([]byte, len(c.prefix))
		}
		h.end = copy(h.buf, c.prefix)
		h.pos = int64(h.end)
		h.head = append(h.head, c.prefix...)
		if c.gzPartial {
			h.gzEnd = false
		}
	} else {
		h.first = append(h.first, c.prefix[:min(anchorLen, len(c.prefix))]...)
	}
	t.hs = append(t.hs, h)
	return h
}

// seekPlain positions a plain file's harvester at off.
func (h *harvester) seekPlain(off int64) error {
	h.checkedAt = -1
	var w window
	if err := readWindow(h.f, off, &w); err != nil {
		return err
	}
	return h.seekPlainFrom(off, w)
}

// seekPlainFrom positions a plain file's harvester at off, w being the
// bytes before off.
func (h *harvester) seekPlainFrom(off int64, w window) error {
	if _, err := h.f.Seek(off, io.SeekStart); err != nil {
		return err
	}
	h.start, h.end, h.mark = 0, 0, 0
	h.pos, h.off = off, off
	h.checkedAt = -1
	h.win, h.rwin = w, w
	h.ident = nil
	return nil
}

// skipTo consumes a gzip stream up to off and checks the anchor there.
func (h *harvester) skipTo(off int64, anchor hash16) (bool, error) {
	for h.off < off {
		if h.start == h.end {
			n, err := h.read()
			if err != nil {
				return false, err
			}
			if n == 0 {
				return false, nil // shorter than the position
			}
		}
		k := int(min(int64(h.end-h.start), off-h.off))
		h.consume(k)
	}
	h.fold()
	return h.win.sum() == anchor, nil
}

// skipAll consumes a gzip stream to its end without handing lines on.
func (h *harvester) skipAll() error {
	for {
		h.consume(h.end - h.start)
		n, err := h.read()
		if err != nil {
			return err
		}
		if n == 0 {
			h.fold()
			return nil
		}
	}
}

// readWindow reads the anchorLen bytes before off.
func readWindow(f *os.File, off int64, w *window) error {
	from := max(0, off-anchorLen)
	var b [anchorLen]byte
	p := b[:off-from]
	n, err := f.ReadAt(p, from)
	if n < len(p) {
		if err == nil || err == io.EOF {
			return io.ErrUnexpectedEOF
		}
		return err
	}
	*w = window{}
	w.fold(p)
	return nil
}

// lastLineStart finds where the last line of a file begins, looking back at
// most maxLine+1 bytes; read_from = "end" starts there, so the line being
// written is delivered whole. ok is false when no line start was found
// within that distance: reading starts at the end, inside a line.
func lastLineStart(f *os.File, size int64, maxLine int) (start int64, ok bool) {
	const chunk = 64 << 10
	buf := make([]byte, chunk)
	end := size
	for end > 0 && size-end <= int64(maxLine) {
		from := max(0, end-chunk)
		p := buf[:end-from]
		if n, _ := f.ReadAt(p, from); n < len(p) {
			return size, false
		}
		if i := bytes.LastIndexByte(p, '\n'); i >= 0 {
			return from + int64(i) + 1, true
		}
		end = from
	}
	if end == 0 {
		return 0, true
	}
	return size, false
}

// startsLikeOpenFile reports whether c's bytes are the first bytes of a
// file open under another inode.
func (t *Input) startsLikeOpenFile(c *candidate) bool {
	buf := make([]byte, len(c.prefix))
	for _, h := range t.hs {
		if (devIno{h.dev, h.ino}) == c.id {
			continue
		}
		if h.zr != nil {
			if bytes.HasPrefix(h.head, c.prefix) {
				return true
			}
			continue
		}
		if n, _ := h.f.ReadAt(buf, 0); n == len(buf) && bytes.Equal(buf, c.prefix) {
			return true
		}
	}
	return false
}
