package buffer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
	"github.com/ternlog/tern/pipeline/queue"
)

// lease is a batch read from disk. Committing it moves the cursor past it.
type lease struct {
	b        *Buffer
	msgs     []*pipeline.Message
	end      Cursor
	endBytes int64 // the reader's rbytes at end
	done     bool
}

func (l *lease) Msgs() []*pipeline.Message { return l.msgs }
func (l *lease) Entries() []queue.Span     { return nil }
func (l *lease) Commit()                   { l.b.commit(l) }

// maxReadFailures is how often a sealed segment may fail to read before its
// rest is given up as lost (counted), so a bad sector cannot stall the
// output for ever.
const maxReadFailures = 5

// Next returns up to maxCount messages (about maxBytes of payload) read
// from disk, waiting up to linger for a fuller batch once one is there. It
// returns nil, nil when wait expires first, ctx.Err() when ctx ends and
// queue.ErrClosed after Close. Disk errors are retried, never returned:
// the output runner stops on any error.
func (b *Buffer) Next(ctx context.Context, maxCount, maxBytes int, linger, wait time.Duration) (queue.Lease, error) {
	b.rmu.Lock()
	defer b.rmu.Unlock()
	var deadline, lingerC <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		deadline = t.C
	}
	lingered := false
	failures := 0
	for {
		b.mu.Lock()
		if b.closed || !b.opened {
			b.mu.Unlock()
			return nil, queue.ErrClosed
		}
		s := b.readerSeg()
		if s == nil && b.rbytes > b.curLeaseBytes() {
			// Passed empty segments or garbage: commit that, so their
			// space and Bytes go.
			l := &lease{b: b, end: b.readCursor(), endBytes: b.rbytes}
			b.leases = append(b.leases, l)
			b.mu.Unlock()
			l.Commit()
			continue
		}
		ready := s != nil && (linger <= 0 || lingered || b.avail() >= maxCount)
		if s != nil && !ready && lingerC == nil {
			t := time.NewTimer(linger)
			defer t.Stop()
			lingerC = t.C
		}
		ch := b.dataCh
		b.mu.Unlock()
		if ready {
			l, err := b.read(maxCount, maxBytes)
			if err == nil {
				failures = 0
				if l != nil {
					return l, nil
				}
				continue
			}
			failures++
			if b.giveUp(failures) {
				failures = 0
				continue
			}
			d := min(b.retryMin<<min(failures, 5), 2*b.retryMax)
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ch: // new data or Close: try again (or leave) now
				t.Stop()
			case <-deadline:
				t.Stop()
				return nil, nil
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			}
			continue
		}
		select {
		case <-ch:
		case <-lingerC:
			lingered = true
		case <-deadline:
			return nil, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// readerSeg returns the segment to read from, moving past finished ones;
// nil when nothing is readable now. mu is held.
func (b *Buffer) readerSeg() *segment {
	for {
		s := b.rseg
		if s == nil {
			s = b.segAfter(b.rprevID)
			if s == nil || s.visible < SegmentHeaderSize {
				return nil
			}
			b.rseg, b.roff = s, SegmentHeaderSize
			b.rbytes += SegmentHeaderSize
			if s.id > b.recovLastID {
				b.recovering, b.recovUnread = false, 0
			}
			// Sequence numbers run on across a roll, so a gap here is a
			// segment that went missing or was quarantined (an upper
			// bound: after a crash it may include records that were never
			// acknowledged). A lower number is a restart that reused
			// numbers of records lost unacknowledged: nothing to count.
			if s.firstSeq > b.rseq {
				b.lost(s.firstSeq-b.rseq, fmt.Sprintf("segment %s starts at record %d, expected %d", SegmentName(s.id), s.firstSeq, b.rseq))
			}
			b.rseq = s.firstSeq
		}
		if b.roff < s.visible {
			return s
		}
		if s.sealed && s.visible == s.size && b.roff >= s.size {
			b.rprevID = s.id
			b.rseg = nil
			if s.id >= b.recovLastID {
				b.recovering, b.recovUnread = false, 0
			}
			if s.rf != nil {
				s.rf.Close()
				s.rf = nil
			}
			if b.rscSeg == s {
				b.rsc, b.rscSeg = nil, nil
			}
			continue
		}
		return nil
	}
}

func (b *Buffer) segAfter(id uint64) *segment {
	for _, s := range b.segs {
		if s.id > id {
			return s
		}
	}
	return nil
}

// lost counts records that cannot be delivered.
func (b *Buffer) lost(n uint64, why string) {
	b.set.Drop("corrupt_record", int(n))
	if b.limit.allow("lost") {
		b.log.Error("disk buffer: records lost to corruption", "dir", b.dir, "records", n, "detail", why)
	}
}

// read reads the next batch. rmu is held, mu is not. A nil lease with a nil
// error means only corrupt or stale bytes were passed (and committed).
func (b *Buffer) read(maxCount, maxBytes int) (*lease, error) {
	batch := pipeline.NewBatch()
	var msgs []*pipeline.Message
	bytes := 0
	var rerr error
	b.mu.Lock()
	for len(msgs) < maxCount && bytes < maxBytes {
		s := b.readerSeg()
		if s == nil {
			break
		}
		off, end, seq := b.roff, s.visible, b.rseq
		final := s.sealed && s.visible == s.size
		b.mu.Unlock()
		sc, err := b.scannerFor(s, off, end, final)
		if err != nil {
			rerr = err
			b.mu.Lock()
			break
		}
		recs := int64(0)
		for len(msgs) < maxCount && bytes < maxBytes {
			rec, skipped, err := sc.next()
			if skipped > 0 {
				at := sc.off - skipped
				if err == nil {
					at = rec.Offset - skipped
				}
				b.quarantineBytes(s, at, skipped)
			}
			if err != nil {
				if !errors.Is(err, io.EOF) {
					rerr = err
				}
				break
			}
			// Within a segment numbers are consecutive: a jump is records
			// lost to corruption. (No record is skipped for carrying a
			// number already seen: after a failure and a crash the same
			// number may name another record. Duplicates, never loss.)
			if rec.Seq > seq {
				b.lost(rec.Seq-seq, fmt.Sprintf("%s offset %d holds record %d, expected %d", SegmentName(s.id), rec.Offset, rec.Seq, seq))
			}
			seq = rec.Seq + 1
			recs++
			m := batch.Add()
			if err := codec.DecodeMsgpackBytes(rec.Payload, m, batch); err != nil {
				batch.Truncate(batch.Len() - 1)
				b.lost(1, fmt.Sprintf("%s offset %d: %v", SegmentName(s.id), rec.Offset, err))
				continue
			}
			msgs = append(msgs, m)
			bytes += len(rec.Payload)
		}
		b.mu.Lock()
		b.rbytes += sc.off - off
		b.roff, b.rseq = sc.off, seq
		if s.id > b.recovLastID {
			b.readNew += recs
		} else {
			b.recovUnread = max(b.recovUnread-recs, 0)
		}
		if rerr != nil {
			break
		}
	}
	l := &lease{b: b, msgs: msgs, end: b.readCursor(), endBytes: b.rbytes}
	moved := l.endBytes > b.curLeaseBytes()
	if moved || len(msgs) > 0 {
		b.leases = append(b.leases, l)
	}
	b.mu.Unlock()
	if len(msgs) == 0 {
		if moved {
			l.Commit()
		}
		return nil, rerr
	}
	return l, nil // a read error after some messages: deliver them first
}

// curLeaseBytes is rbytes at the end of the last lease handed out; mu held.
func (b *Buffer) curLeaseBytes() int64 {
	if n := len(b.leases); n > 0 {
		return b.leases[n-1].endBytes
	}
	return b.curBytes
}

// readCursor is the reader's position as a cursor; mu held.
func (b *Buffer) readCursor() Cursor {
	if b.rseg != nil {
		return Cursor{Segment: b.rseg.id, Offset: b.roff, Seq: b.rseq}
	}
	return Cursor{Segment: b.rprevID, Offset: 1 << 62, Seq: b.rseq}
}

// scannerFor returns a scanner positioned at off in s, reusing the last one
// when it is still there (its window may hold the bytes already).
func (b *Buffer) scannerFor(s *segment, off, end int64, final bool) (*scanner, error) {
	if b.rscSeg == s && b.rsc.off == off {
		b.rsc.end, b.rsc.final = end, final
		return b.rsc, nil
	}
	if s.rf == nil {
		f, err := b.fs.OpenFile(b.path(s.id), os.O_RDONLY, 0)
		if err != nil {
			return nil, err
		}
		s.rf = f
	}
	b.rsc = newScanner(s.rf, s.firstSeq, off, end, final)
	b.rscSeg = s
	return b.rsc, nil
}

// giveUp skips the rest of the segment the reader is stuck in after too
// many read failures, when it is sealed (its records are counted lost by
// the gap that follows). A segment file that vanished is skipped at once.
func (b *Buffer) giveUp(failures int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.rseg
	if s == nil || !s.sealed {
		return false
	}
	_, _, err := b.fs.Stat(b.path(s.id))
	gone := errors.Is(err, fs.ErrNotExist)
	if !gone && failures < maxReadFailures {
		b.ioError("read", fmt.Errorf("%s: read failed %d times", SegmentName(s.id), failures))
		return false
	}
	b.log.Error("disk buffer: giving up on an unreadable segment; its remaining records are counted lost", "segment", SegmentName(s.id), "missing", gone)
	b.rbytes += s.size - b.roff
	b.roff = s.size
	s.visible = s.size
	return true
}

// quarantineBytes keeps a copy of corrupt bytes the reader skipped (up to
// 1 MiB of them) in quarantine/ for inspection.
func (b *Buffer) quarantineBytes(s *segment, off, n int64) {
	b.met.quarantined(1, "bytes")
	keep := min(n, 1<<20)
	p := make([]byte, keep)
	if s.rf == nil {
		return
	}
	k, _ := s.rf.ReadAt(p, off)
	name := filepath.Join(b.dir, quarantineDir, quarantineName(fmt.Sprintf("%s@%d.bad", SegmentName(s.id), off)))
	f, err := b.fs.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		b.ioError("quarantine", err)
		return
	}
	_, err = f.Write(p[:k])
	if err == nil {
		err = f.Sync()
	}
	f.Close()
	if err == nil {
		err = b.fs.SyncDir(filepath.Join(b.dir, quarantineDir))
	}
	if err != nil {
		b.ioError("quarantine", err)
	}
	b.pruneQuarantine()
}

// commit settles a lease: the cursor advances over the leases committed so
// far in order, the ledger records it, and segments wholly behind it are
// deleted (ledger first, then unlink).
func (b *Buffer) commit(l *lease) {
	b.lmu.Lock()
	defer b.lmu.Unlock()
	b.mu.Lock()
	if l.done {
		b.mu.Unlock()
		return
	}
	l.done = true
	moved := false
	for len(b.leases) > 0 && b.leases[0].done {
		h := b.leases[0]
		b.leases[0] = nil
		b.leases = b.leases[1:]
		b.unconsumed -= h.endBytes - b.curBytes
		b.curBytes = h.endBytes
		b.cur = h.end
		moved = true
	}
	if !moved || b.closed {
		b.mu.Unlock()
		return
	}
	b.admitWaiting()
	b.collectLocked()
	cur := b.cur
	b.mu.Unlock()
	b.persist(cur)
}

// reclaim deletes segments the cursor has passed, for when sealing the
// writer's segment frees one without a commit.
func (b *Buffer) reclaim() {
	b.lmu.Lock()
	defer b.lmu.Unlock()
	b.mu.Lock()
	if b.closed && b.led == nil {
		b.mu.Unlock()
		return
	}
	b.collectLocked()
	cur := b.cur
	n := len(b.doomed)
	b.mu.Unlock()
	if n > 0 {
		b.persist(cur)
	}
}

// collectLocked moves the segments behind the cursor to doomed; mu held.
func (b *Buffer) collectLocked() {
	k := 0
	for _, s := range b.segs {
		if s.id < b.cur.Segment || (s.id == b.cur.Segment && s.sealed && s.visible == s.size && b.cur.Offset >= s.size) {
			k++
			continue
		}
		break
	}
	if k == 0 {
		return
	}
	b.doomed = append(b.doomed, b.segs[:k]...)
	b.segs = append(b.segs[:0:0], b.segs[k:]...)
}

// persist writes the cursor to the ledger; lmu held. Before a segment is
// unlinked the cursor past it is made durable in both slots, so no crash
// can bring back a cursor that names a deleted segment (Vector PR #25570).
func (b *Buffer) persist(cur Cursor) {
	if len(b.doomed) > 0 {
		if err := b.led.writeBoth(cur); err != nil {
			b.ioError("ledger", err)
			return
		}
		b.lastSync = time.Now()
		b.deleteDoomed()
		return
	}
	if err := b.led.write(cur); err != nil {
		b.ioError("ledger", err)
		return
	}
	if time.Since(b.lastSync) >= b.opt.SyncInterval {
		if err := b.led.f.Sync(); err != nil {
			b.ioError("ledger", err)
			return
		}
		b.lastSync = time.Now()
	}
}

// deleteDoomed unlinks consumed segments; lmu held, ledger durable.
func (b *Buffer) deleteDoomed() {
	k := 0
	for _, s := range b.doomed {
		if err := b.fs.Remove(b.path(s.id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			b.ioError("remove", err)
			b.doomed[k] = s
			k++
			continue
		}
		b.mu.Lock()
		b.diskBytes -= s.size
		if s.rf != nil && b.rseg != s {
			s.rf.Close()
			s.rf = nil
		}
		b.admitWaiting()
		b.mu.Unlock()
	}
	clear(b.doomed[k:])
	b.doomed = b.doomed[:k]
	b.met.disk(float64(b.DiskBytes()))
}
