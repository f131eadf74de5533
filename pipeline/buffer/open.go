package buffer

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/ternlog/tern/pipeline/vfs"
)

const (
	quarantineDir = "quarantine"
	lockName      = "lock"
)

// Open recovers the directory and starts the writer. Recovery reads the
// ledger, every segment header and the last segment once, so it takes time
// in proportion to max_file_size, not to the buffer; it never fails on
// corrupt content (that is quarantined and counted), only when the
// directory cannot be created, locked or listed.
//
//   - A ledger that cannot be read is moved to quarantine/ and reading
//     starts at the oldest segment: duplicates, never loss.
//   - Segments older than the ledger's cursor were consumed; a crash between
//     the ledger update and the unlink left them, and they are deleted.
//   - A segment whose header is not valid is moved to quarantine/; the
//     records it held are counted lost (from the sequence numbers around
//     it, or an upper bound when it was the newest).
//   - The newest segment is scanned: bytes after its last valid record (a
//     torn write) are truncated and counted. New records go to a new
//     segment.
//   - A segment the ledger names that does not exist is skipped; the gap in
//     sequence numbers is counted.
func (b *Buffer) Open() error {
	b.mu.Lock()
	if b.opened || b.closed {
		b.mu.Unlock()
		return errors.New("buffer: already opened or closed")
	}
	b.mu.Unlock()
	if err := vfs.MkdirAllDurable(b.fs, filepath.Join(b.dir, quarantineDir)); err != nil {
		return fmt.Errorf("buffer %s: %w", b.dir, err)
	}
	lk, err := b.fs.Lock(filepath.Join(b.dir, lockName))
	if err != nil {
		if errors.Is(err, vfs.ErrLocked) {
			return fmt.Errorf("buffer %s: in use by another tern process", b.dir)
		}
		return fmt.Errorf("buffer %s: %w", b.dir, err)
	}
	if err := b.recover(); err != nil {
		lk.Close()
		return fmt.Errorf("buffer %s: %w", b.dir, err)
	}
	b.lock = lk
	b.mu.Lock()
	b.opened = true
	b.mu.Unlock()
	b.met.disk(float64(b.DiskBytes()))
	go b.flusher()
	return nil
}

type found struct {
	id   uint64
	hdr  SegmentHeader
	size int64
}

func (b *Buffer) recover() (err error) {
	names, err := b.fs.ReadDir(b.dir)
	if err != nil {
		return err
	}
	var lf vfs.File
	defer func() {
		if err != nil && lf != nil {
			lf.Close()
		}
	}()
	dirty := false // the directory changed: sync it before going on

	// The ledger.
	lpath := filepath.Join(b.dir, ledgerName)
	lf, err = b.fs.OpenFile(lpath, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	raw := make([]byte, ledgerSlot+ledgerRecLen)
	n, rerr := lf.ReadAt(raw, 0)
	if rerr != nil && !errors.Is(rerr, io.EOF) {
		return rerr
	}
	gen, cur, haveCur := parseLedger(raw[:n])
	if !haveCur {
		if n > 0 {
			b.log.Error("disk buffer: ledger unreadable; moved to quarantine/, reading every segment again (duplicates possible)", "dir", b.dir)
			lf.Close()
			b.quarantineFile(ledgerName)
			if lf, err = b.fs.OpenFile(lpath, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o640); err != nil {
				lf = nil
				return err
			}
		}
		dirty = true
		gen = 0
	}

	// Segment headers.
	var segs []found
	var maxID uint64
	var quarantinedLast *found
	for _, name := range names {
		id, ok := ParseSegmentName(name)
		if !ok {
			continue
		}
		maxID = max(maxID, id)
		f, err := b.fs.OpenFile(filepath.Join(b.dir, name), os.O_RDONLY, 0)
		var hdr SegmentHeader
		var size int64
		if err == nil {
			size, err = f.Size()
			p := make([]byte, SegmentHeaderSize)
			if err == nil {
				_, err = f.ReadAt(p, 0)
			}
			f.Close()
			if err == nil {
				hdr, err = ParseSegmentHeader(p)
			}
			if err == nil && hdr.ID != id {
				err = fmt.Errorf("header names segment %d", hdr.ID)
			}
		}
		if err != nil {
			if size <= SegmentHeaderSize && errors.Is(err, io.EOF) || size == 0 {
				// Created, never written: a crash right after roll.
				_ = b.fs.Remove(filepath.Join(b.dir, name))
				dirty = true
				continue
			}
			b.log.Error("disk buffer: segment unreadable; moved to quarantine/", "segment", name, "err", err)
			b.met.quarantined(1, "segment")
			b.quarantineFile(name)
			dirty = true
			quarantinedLast = &found{id: id, size: size}
			continue
		}
		if haveCur && id < cur.Segment {
			// Consumed: the ledger moved past it before a crash let us
			// unlink it.
			_ = b.fs.Remove(filepath.Join(b.dir, name))
			dirty = true
			continue
		}
		segs = append(segs, found{id: id, hdr: hdr, size: size})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].id < segs[j].id })

	// The newest segment: find its last valid record, cut what follows.
	avgRecord := int64(256) // for the estimate of what the buffer holds
	nextSeq := uint64(1)
	if haveCur {
		nextSeq = max(nextSeq, cur.Seq)
	}
	for _, s := range segs {
		nextSeq = max(nextSeq, s.hdr.FirstSeq)
	}
	if k := len(segs); k > 0 {
		last := &segs[k-1]
		validEnd, lastSeq, count, err := b.scanEnd(last)
		if err != nil {
			return err
		}
		if count > 0 {
			avgRecord = max((validEnd-SegmentHeaderSize)/count, minRecord)
		}
		if lastSeq > 0 {
			nextSeq = max(nextSeq, lastSeq+1)
		}
		if validEnd < last.size {
			torn, err := b.nonZero(last.id, validEnd, last.size)
			if err != nil {
				return err
			}
			if err := b.truncate(last.id, validEnd); err != nil {
				return err
			}
			if torn {
				// A record was being written when tern or the machine
				// died. With sync = "always" it was never acknowledged.
				b.set.Drop("torn_tail", 1)
				b.log.Warn("disk buffer: cut a torn write at the end of the newest segment", "segment", SegmentName(last.id), "bytes", last.size-validEnd)
			}
			last.size = validEnd
		}
	}
	if q := quarantinedLast; q != nil && (len(segs) == 0 || q.id > segs[len(segs)-1].id) {
		// The newest segment was lost: leave room for every record it may
		// have held, so the reader counts them (an upper bound).
		nextSeq += uint64(max(q.size-SegmentHeaderSize, 0)) / minRecord
	}
	if !haveCur {
		first := nextSeq
		if len(segs) > 0 {
			first = segs[0].hdr.FirstSeq
		}
		cur = Cursor{Segment: 0, Offset: 0, Seq: first}
	}

	// State.
	b.mu.Lock()
	b.nextSeq = nextSeq
	// Ids are never reused, not even those of segments a crash made
	// vanish: the ledger may name one.
	b.nextID = max(maxID, cur.Segment) + 1
	b.cur, b.rseq = cur, cur.Seq
	for _, f := range segs {
		s := &segment{id: f.id, firstSeq: f.hdr.FirstSeq, size: f.size, visible: f.size, synced: f.size, sealed: true}
		b.segs = append(b.segs, s)
		b.diskBytes += f.size
		switch {
		case f.id == cur.Segment:
			b.rseg = s
			b.roff = min(max(cur.Offset, SegmentHeaderSize), f.size)
			b.unconsumed += f.size - b.roff
		case f.id > cur.Segment:
			b.unconsumed += f.size
		}
	}
	if b.rseg == nil {
		b.rprevID = cur.Segment
	}
	if n := len(b.segs); n > 0 {
		b.recovLastID = b.segs[n-1].id
	}
	if b.unconsumed > 0 {
		b.recovering = true
		b.recovUnread = max(b.unconsumed/avgRecord, 1)
	}
	b.mu.Unlock()
	b.led = &ledger{f: lf, gen: gen, cur: cur}
	if !haveCur {
		if err := b.led.writeBoth(cur); err != nil {
			return err
		}
	}
	b.lastSync = time.Now()
	if dirty {
		if err := b.fs.SyncDir(b.dir); err != nil {
			return err
		}
	}
	return nil
}

// scanEnd reads a segment to its end and returns the offset after its last
// valid record and that record's seq (0 when it has none).
func (b *Buffer) scanEnd(s *found) (validEnd int64, lastSeq uint64, count int64, err error) {
	f, err := b.fs.OpenFile(b.path(s.id), os.O_RDONLY, 0)
	if err != nil {
		return 0, 0, 0, err
	}
	defer f.Close()
	sc := newScanner(f, s.hdr.FirstSeq, SegmentHeaderSize, s.size, true)
	validEnd = SegmentHeaderSize
	for {
		rec, _, err := sc.next()
		if errors.Is(err, io.EOF) {
			return validEnd, lastSeq, count, nil
		}
		if err != nil {
			return 0, 0, 0, err
		}
		validEnd = rec.Offset + RecordHeaderSize + int64(len(rec.Payload))
		lastSeq = rec.Seq
		count++
	}
}

// nonZero reports whether a segment holds a non-zero byte in [from, to):
// zeros are what a crash leaves where a write never landed, not a record.
func (b *Buffer) nonZero(id uint64, from, to int64) (bool, error) {
	f, err := b.fs.OpenFile(b.path(id), os.O_RDONLY, 0)
	if err != nil {
		return false, err
	}
	defer f.Close()
	p := make([]byte, min(to-from, 256<<10))
	for off := from; off < to; {
		k, err := f.ReadAt(p[:min(int64(len(p)), to-off)], off)
		for _, c := range p[:k] {
			if c != 0 {
				return true, nil
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return false, nil
			}
			return false, err
		}
		off += int64(k)
	}
	return false, nil
}

func (b *Buffer) truncate(id uint64, size int64) error {
	f, err := b.fs.OpenFile(b.path(id), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// quarantineFile moves a file of the buffer directory into quarantine/ under
// a name that does not collide with earlier ones, durably.
func (b *Buffer) quarantineFile(name string) {
	to := filepath.Join(b.dir, quarantineDir, quarantineName(name))
	if err := b.fs.Rename(filepath.Join(b.dir, name), to); err != nil {
		b.ioError("quarantine", err) // left in place; skipped again next time
		return
	}
	if err := b.fs.SyncDir(filepath.Join(b.dir, quarantineDir)); err != nil {
		b.ioError("quarantine", err)
	}
	if err := b.fs.SyncDir(b.dir); err != nil {
		b.ioError("quarantine", err)
	}
	b.pruneQuarantine()
}

// pruneQuarantine keeps quarantine/ within max(2 × max_file_size, 64 MiB),
// deleting the oldest files first: evidence is useful, not worth a full
// disk.
func (b *Buffer) pruneQuarantine() {
	qdir := filepath.Join(b.dir, quarantineDir)
	names, err := b.fs.ReadDir(qdir)
	if err != nil {
		return
	}
	type qf struct {
		name string
		size int64
	}
	var files []qf
	var total int64
	for _, n := range names { // sorted: oldest first (quarantineName)
		size, _, err := b.fs.Stat(filepath.Join(qdir, n))
		if err != nil {
			continue
		}
		files = append(files, qf{n, size})
		total += size
	}
	limit := max(2*b.opt.MaxFileSize, 64<<20)
	if total <= limit {
		return
	}
	for _, f := range files {
		if total <= limit {
			break
		}
		if b.fs.Remove(filepath.Join(qdir, f.name)) == nil {
			total -= f.size
		}
	}
}

// quarantineName prefixes name with the time, so quarantine/ sorts oldest
// first and names never collide.
func quarantineName(name string) string {
	return fmt.Sprintf("%019d-%s", time.Now().UnixNano(), name)
}
