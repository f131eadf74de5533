package tail

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/ternlog/tern/pipeline"
)

// errRewritten reports that the file under an open descriptor was truncated
// or rewritten in place: the bytes before our position are not the ones we
// read.
var errRewritten = errors.New("file truncated or rewritten")

// harvester reads one open file. It is owned by the Run loop.
type harvester struct {
	t        *Input
	e        *entry
	f        *os.File
	zr       *gzip.Reader // set for gzip files
	src      string       // Record.Source: the path when the file was opened
	dev, ino uint64

	buf        []byte // buf[start:end] read and not yet consumed
	start, end int
	mark       int   // buf[mark:start] consumed but not yet folded into win
	pos        int64 // stream offset of buf[end]
	off        int64 // stream offset of buf[start]
	discarding bool  // inside an over-long line, skipping to its newline
	lineStart  int64 // where the line being discarded began
	lineWin    window

	win  window // the bytes consumed last (anchor of off)
	rwin window // the bytes read last (plain files: detects rewrites)

	head []byte // gzip: the first fingerprint bytes of the stream
	// ident (plain files) is the file's first bytes as the scan read them
	// to identify it, until reading got past them: the reads must return
	// those very bytes, or the file was rotated since and the entry would
	// carry one content's fingerprint and another's position.
	ident []byte
	// first (plain files) is the file's first bytes, up to anchorLen, as
	// identified or read: checked with the anchor, for a file rewritten
	// between two reads can have the same bytes before the position (lines
	// of one length that end alike) but not, as a rule, at its start.
	first []byte

	atEOF     bool
	idleSince time.Time
	inGlob    bool // the last scan found it under a glob
	gzEnd     bool // the gzip stream ended cleanly

	// checked is the file's modification time when read last found it
	// ending at checkedAt with our bytes before that (plain files; -1
	// when not yet). A closed file remembers these, not what it looks like
	// when closed: a rewrite in between must make it be opened again.
	checked, checkedAt int64
}

// window keeps the last anchorLen bytes of a stream.
type window struct {
	b [anchorLen]byte
	n int
}

func (w *window) fold(p []byte) {
	if len(p) >= anchorLen {
		copy(w.b[:], p[len(p)-anchorLen:])
		w.n = anchorLen
		return
	}
	keep := min(w.n, anchorLen-len(p))
	copy(w.b[:keep], w.b[w.n-keep:w.n])
	copy(w.b[keep:], p)
	w.n = keep + len(p)
}

func (w *window) bytes() []byte { return w.b[:w.n] }
func (w *window) sum() hash16   { return sum16(w.b[:w.n]) }

// fold moves the consumed bytes into the anchor window; called before the
// buffer is compacted and whenever the anchor is needed.
func (h *harvester) fold() {
	if h.start > h.mark {
		h.win.fold(h.buf[h.mark:h.start])
	}
	h.mark = h.start
}

// consume marks n buffered bytes as handled.
func (h *harvester) consume(n int) {
	h.start += n
	h.off += int64(n)
}

// read makes room and reads once. It returns the bytes read; 0 means the
// end of the file for now. For plain files it checks, after each read and
// at each end, that the bytes just before the position are still those it
// read last: a mismatch (or a file now shorter than the position) is
// errRewritten. The check at the end matters: a file truncated and
// refilled up to exactly our position (copytruncate with lines of one
// length, as many per rotation) shows no new bytes and no smaller size.
func (h *harvester) read() (int, error) {
	h.fold()
	if h.start > 0 {
		n := copy(h.buf, h.buf[h.start:h.end])
		h.start, h.end, h.mark = 0, n, 0
	}
	if h.end == len(h.buf) {
		max := h.t.cfg.MaxLineBytes.N()
		nb := make([]byte, min(2*len(h.buf), max+1))
		copy(nb, h.buf[:h.end])
		h.buf = nb
	}
	if h.zr != nil {
		n, err := h.zr.Read(h.buf[h.end:])
		h.collectHead(h.buf[h.end : h.end+n])
		h.end += n
		h.pos += int64(n)
		switch {
		case err == io.EOF:
			h.gzEnd = true
			return n, nil
		case err != nil:
			return n, err
		}
		return n, nil
	}
	prevPos, prev := h.pos, h.rwin
	n, err := h.f.Read(h.buf[h.end:])
	if n > 0 {
		if prevPos > 0 && (!h.sameAt(prevPos, &prev) || !h.sameFirst()) {
			return 0, errRewritten
		}
		if id := int64(len(h.ident)); id > 0 {
			k := min(int64(n), id-prevPos)
			if k > 0 && !bytes.Equal(h.buf[h.end:h.end+int(k)], h.ident[prevPos:prevPos+k]) {
				return 0, errRewritten
			}
			if prevPos+int64(n) >= id {
				h.ident = nil
			}
		}
		if l := int64(len(h.first)); l < anchorLen && l >= prevPos && l < prevPos+int64(n) {
			from := h.end + int(l-prevPos)
			h.first = append(h.first, h.buf[from:from+int(min(anchorLen-l, prevPos+int64(n)-l))]...)
		}
		h.rwin.fold(h.buf[h.end : h.end+n])
		h.end += n
		h.pos += int64(n)
		return n, nil
	}
	if err != nil && err != io.EOF {
		return 0, err
	}
	fi, serr := h.f.Stat()
	if serr != nil {
		return 0, serr
	}
	if fi.Size() < max(h.pos, int64(len(h.ident))) {
		return 0, errRewritten
	}
	if h.pos > 0 && (!h.sameAt(h.pos, &h.rwin) || !h.sameFirst()) {
		return 0, errRewritten
	}
	// Stat came first: a later rewrite leaves a newer modification time.
	h.checked, h.checkedAt = fi.ModTime().UnixNano(), -1
	if fi.Size() == h.pos {
		h.checkedAt = h.pos
	}
	return 0, nil
}

// sameAt reports whether the file still holds w's bytes just before pos.
func (h *harvester) sameAt(pos int64, w *window) bool {
	var b [anchorLen]byte
	p := b[:w.n]
	n, _ := h.f.ReadAt(p, pos-int64(w.n))
	return n == w.n && bytes.Equal(p, w.bytes())
}

// sameFirst reports whether the file still starts with h.first.
func (h *harvester) sameFirst() bool {
	var b [anchorLen]byte
	p := b[:len(h.first)]
	n, _ := h.f.ReadAt(p, 0)
	return n == len(p) && bytes.Equal(p, h.first)
}

func (h *harvester) collectHead(p []byte) {
	fpMax := int(h.t.cfg.FingerprintBytes)
	if len(h.head) < fpMax {
		h.head = append(h.head, p[:min(len(p), fpMax-len(h.head))]...)
	}
}

// pump hands on the complete lines the file holds, reading at most about
// budget bytes (0: to the end). It reports whether it consumed anything.
func (h *harvester) pump(ctx context.Context, out pipeline.Emitter, budget int64) (moved bool, err error) {
	t := h.t
	max := t.cfg.MaxLineBytes.N()
	maxBatch := t.cfg.BatchMaxCount
	recs, offs := t.recs[:0], t.offs[:0]
	defer func() { t.recs, t.offs = recs[:0], offs[:0] }()
	var read int64
	for {
		for len(recs) < maxBatch {
			i := bytes.IndexByte(h.buf[h.start:h.end], '\n')
			if i < 0 {
				break
			}
			line := h.buf[h.start : h.start+i]
			lineOff := h.off
			h.consume(i + 1)
			moved = true
			if h.discarding {
				h.discarding = false
				continue
			}
			if len(line) > max {
				t.oversize(h, 1)
				continue
			}
			if n := len(line); n > 0 && line[n-1] == '\r' {
				line = line[:n-1]
			}
			recs = append(recs, pipeline.Record{Data: line, Source: h.src})
			offs = append(offs, lineOff)
		}
		if len(recs) > 0 && (len(recs) >= maxBatch || bytes.IndexByte(h.buf[h.start:h.end], '\n') < 0) {
			err := h.emit(ctx, out, recs, offs)
			recs, offs = recs[:0], offs[:0]
			if err != nil {
				return moved, err
			}
			continue
		}
		// No complete line is buffered.
		if !h.discarding && h.end-h.start > max {
			// No newline within the cap: skip to the next one without
			// buffering the rest (Filebeat #19500, Fluent Bit #10435).
			t.oversize(h, 1)
			h.fold()
			h.discarding, h.lineStart, h.lineWin = true, h.off, h.win
		}
		if h.discarding && h.end > h.start {
			h.consume(h.end - h.start)
			moved = true
		}
		if budget > 0 && read >= budget {
			break
		}
		n, rerr := h.read()
		read += int64(n)
		if rerr != nil {
			h.settleSkipped()
			return moved, rerr
		}
		if n == 0 {
			if !h.atEOF {
				h.atEOF, h.idleSince = true, time.Now()
			}
			break
		}
		h.atEOF = false
		if err := h.growFingerprint(); err != nil {
			h.settleSkipped()
			return moved, err
		}
	}
	h.settleSkipped()
	return moved, nil
}

// settleSkipped lets the acknowledged position pass over bytes consumed
// without a line (over-long lines), but never into a line still being
// skipped: a restart must see that line from its start.
func (h *harvester) settleSkipped() {
	to, win := h.off, &h.win
	if h.discarding {
		to, win = h.lineStart, &h.lineWin
	} else {
		h.fold()
	}
	if to > h.e.next {
		end := position{to, win.sum()}
		h.t.mu.Lock()
		h.e.next, h.e.nextAnchor = end.off, end.anchor
		h.t.mu.Unlock()
		h.t.skip(h.e, end)
	}
}

// emit hands a batch on; its acknowledgement settles the span it covers.
func (h *harvester) emit(ctx context.Context, out pipeline.Emitter, recs []pipeline.Record, offs []int64) error {
	t := h.t
	h.fold()
	e := h.e
	end := position{h.off, h.win.sum()}
	t.mu.Lock()
	e.next, e.nextAnchor = end.off, end.anchor
	t.mu.Unlock()
	m := t.handOn(e, end, len(recs))
	t.addFields(h, recs, offs)
	err := out.Emit(ctx, recs, func(err error) { t.settle(e, m, err) })
	if err != nil {
		// Emit gave up (stopping): nothing of it counts as delivered.
		t.settle(e, m, err)
	}
	return err
}

// flushPartial hands on an unterminated last line: the file is complete
// (gzip end, close_eof, exit_after_eof, or a file rotated away and closed).
func (h *harvester) flushPartial(ctx context.Context, out pipeline.Emitter) error {
	if h.discarding {
		h.consume(h.end - h.start)
		h.discarding = false
		h.settleSkipped()
		return nil
	}
	if h.end == h.start {
		return nil
	}
	line := h.buf[h.start:h.end]
	lineOff := h.off
	h.consume(len(line))
	recs := append(h.t.recs[:0], pipeline.Record{Data: line, Source: h.src})
	offs := append(h.t.offs[:0], lineOff)
	return h.emit(ctx, out, recs, offs)
}

// growFingerprint extends the entry's fingerprint while the file is shorter
// than fingerprint_bytes, checking the part already known still matches.
// The first bytes are read again, so the file must still be the one just
// read after that: a copytruncate between the two would give this file
// the fingerprint of its successor, and its copy, not recognised, would be
// read again from its start.
func (h *harvester) growFingerprint() error {
	e := h.e
	fpMax := int64(h.t.cfg.FingerprintBytes)
	if e.fpLen >= fpMax || h.pos <= e.fpLen {
		return nil
	}
	var p []byte
	if h.zr != nil {
		p = h.head
	} else {
		p = make([]byte, min(fpMax, h.pos))
		n, err := h.f.ReadAt(p, 0)
		if n < len(p) {
			if err == nil || err == io.EOF {
				return errRewritten
			}
			return err
		}
		if !h.sameAt(h.pos, &h.rwin) {
			return errRewritten
		}
	}
	if int64(len(p)) <= e.fpLen {
		return nil
	}
	if e.fpLen > 0 && sum16(p[:e.fpLen]) != e.fp {
		return errRewritten
	}
	if e.fpLen == 0 {
		// A file started over after a truncation has its identity only
		// now: a copy that waited for this read (startsLikeOpenFile) is
		// either a copy of what was just read or a file of its own.
		h.t.needScan = true
	}
	fp := sum16(p)
	h.t.mu.Lock()
	e.fp, e.fpLen = fp, int64(len(p))
	h.t.mu.Unlock()
	return nil
}

// addFields attaches path and offset fields when configured.
func (t *Input) addFields(h *harvester, recs []pipeline.Record, offs []int64) {
	if t.cfg.PathField == "" && t.cfg.OffsetField == "" {
		return
	}
	var pathF []pipeline.Field
	if t.cfg.PathField != "" {
		pathF = []pipeline.Field{pipeline.NewField(t.cfg.PathField, pipeline.TypeString, "", pipeline.StringValue(h.src))}
	}
	if t.cfg.OffsetField == "" {
		for i := range recs {
			recs[i].Fields = pathF
		}
		return
	}
	k := len(pathF) + 1
	all := make([]pipeline.Field, len(recs)*k)
	for i := range recs {
		fs := all[i*k : (i+1)*k : (i+1)*k]
		copy(fs, pathF)
		fs[k-1] = pipeline.NewField(t.cfg.OffsetField, pipeline.TypeInteger, "", pipeline.IntValue(offs[i]))
		recs[i].Fields = fs
	}
}

func (t *Input) oversize(h *harvester, n int) {
	t.set.Drop("oversize", n)
	t.warnLimited("oversize:"+h.src, "line over max_line_bytes skipped", "path", h.src, "max_line_bytes", t.cfg.MaxLineBytes.String())
}

// fileID returns the device and inode of fi (zero where unknown).
func fileID(fi os.FileInfo) (dev, ino uint64, nlink uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), st.Ino, uint64(st.Nlink)
	}
	return 0, 0, 1
}
