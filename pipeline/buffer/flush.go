package buffer

import (
	"errors"
	"io/fs"
	"os"
	"time"

	"github.com/ternlog/tern/pipeline/queue"
)

// writer is the flusher goroutine's own state. Only the flusher writes
// segment files; it publishes sizes and visibility under b.mu.
type writer struct {
	b        *Buffer
	active   *segment   // segment being appended to; nil: roll first
	touched  []*segment // written since the last successful sync
	dirDirty bool       // a segment was created since the last SyncDir
	spare    []byte
}

// flusher takes what Push queued, writes it and makes it durable. Pushes
// that arrive while it writes or syncs wait for the next round, so one
// fsync covers all of them: that group commit is what makes fsync before
// acknowledgement affordable.
func (b *Buffer) flusher() {
	defer close(b.flushDone)
	w := &writer{b: b}
	var tick <-chan time.Time
	if b.opt.Sync == SyncInterval {
		t := time.NewTicker(b.opt.SyncInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-b.kick:
		case <-tick:
			w.syncAll()
		}
		for {
			b.mu.Lock()
			batch, end := b.pend, b.nextSeq
			roll, closed := b.rollReq, b.closed
			b.rollReq = false
			if len(batch) > 0 {
				// Swap buffers: pushes fill the spare while this one is
				// written.
				b.pend, w.spare = w.spare[:0], nil
				b.admitWaiting() // room for pushes held back by pmax
			}
			b.mu.Unlock()
			if roll {
				w.sealActive()
			}
			if len(batch) == 0 {
				if closed {
					w.finish()
					return
				}
				break
			}
			if !w.commit(batch, end) {
				w.finish()
				return
			}
			w.spare = batch
		}
	}
}

// commit writes batch (records with seqs below end) until it is durable
// (or written, with SyncInterval) and then acknowledges its owners. It
// retries with backoff while the disk fails; it returns false when the
// buffer closed before it succeeded, after abandoning every owner left.
func (w *writer) commit(batch []byte, end uint64) bool {
	b := w.b
	count := int64(end - recSeq(batch))
	delay := b.retryMin
	dirOnly := false // the files are synced; only the directory is not
	for attempt := 0; ; attempt++ {
		var err error
		op, n := "", 0
		if dirOnly {
			op, err = w.syncDir()
		} else {
			n, op, err = w.write(batch)
			if err == nil && b.opt.Sync == SyncAlways {
				op, err = w.syncFiles()
				if err == nil {
					op, err = w.syncDir()
				}
			}
		}
		if err == nil {
			if b.opt.Sync == SyncAlways {
				w.publish()
			}
			break
		}
		b.ioError(op, err)
		if op == "syncdir" {
			// The data is durable in the files: retry the directory sync
			// alone. Rewriting would only make duplicates.
			dirOnly = true
		} else {
			w.fail()
			if b.opt.Sync == SyncInterval {
				batch = batch[n:] // what was written is acknowledged below
			}
		}
		b.mu.Lock()
		b.ioFailing = true
		closed := b.closed
		b.mu.Unlock()
		if closed && attempt > 0 {
			w.abandonAll()
			return false
		}
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-b.kick:
			t.Stop()
		}
		delay = min(delay*2, b.retryMax)
	}
	b.mu.Lock()
	b.ioFailing = false
	if b.opt.Sync == SyncInterval {
		for _, s := range w.touched {
			s.visible = s.size
		}
	}
	b.visRecs += count
	k := 0
	for k < len(b.owners) && b.owners[k].end <= end {
		k++
	}
	done := make([]queue.Owner, k)
	for i := range k {
		done[i] = b.owners[i].o
		b.owners[i] = ownerMark{}
	}
	b.owners = b.owners[k:]
	notify(&b.dataCh)
	disk := b.diskBytes
	b.mu.Unlock()
	b.met.disk(float64(disk))
	for _, o := range done {
		o.Done()
	}
	return true
}

// write appends batch to the segments, rolling at MaxFileSize. It returns
// how much of batch reached a file before an error, and the failed
// operation.
func (w *writer) write(batch []byte) (int, string, error) {
	b := w.b
	p := 0
	for p < len(batch) {
		s := w.active
		if s == nil || (s.size > SegmentHeaderSize && s.size+int64(recLen(batch[p:])) > b.opt.MaxFileSize) {
			var err error
			if s, err = w.roll(recSeq(batch[p:])); err != nil {
				return p, "create", err
			}
		}
		q, size := p, s.size
		for q < len(batch) {
			rl := int64(recLen(batch[q:]))
			if size > SegmentHeaderSize && size+rl > b.opt.MaxFileSize {
				break
			}
			size += rl
			q += int(rl)
		}
		if _, err := s.wf.Write(batch[p:q]); err != nil {
			return p, "write", err
		}
		b.mu.Lock()
		s.size = size
		if b.opt.Sync == SyncInterval {
			s.visible = size
		}
		b.mu.Unlock()
		w.touch(s)
		p = q
	}
	return p, "", nil
}

func (w *writer) touch(s *segment) {
	for _, t := range w.touched {
		if t == s {
			return
		}
	}
	w.touched = append(w.touched, s)
}

// roll seals the active segment and starts a new one whose first record
// will carry firstSeq. The new file's name becomes durable with the next
// sync round (SyncDir), before anything in it is acknowledged.
func (w *writer) roll(firstSeq uint64) (*segment, error) {
	b := w.b
	w.sealActive()
	b.mu.Lock()
	id := b.nextID
	b.nextID++
	b.mu.Unlock()
	name := b.path(id)
	f, err := b.fs.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return nil, err
	}
	hdr := appendSegHeader(nil, SegmentHeader{ID: id, FirstSeq: firstSeq})
	if _, err := f.Write(hdr); err != nil {
		f.Close()
		_ = b.fs.Remove(name)
		return nil, err
	}
	s := &segment{id: id, firstSeq: firstSeq, size: SegmentHeaderSize, wf: f}
	b.mu.Lock()
	if b.opt.Sync == SyncInterval {
		s.visible = SegmentHeaderSize
	}
	b.segs = append(b.segs, s)
	b.diskBytes += SegmentHeaderSize
	b.unconsumed += SegmentHeaderSize
	b.mu.Unlock()
	w.active = s
	w.dirDirty = true
	w.touch(s)
	b.log.Debug("disk buffer: new segment", "segment", SegmentName(id), "first_seq", firstSeq)
	return s, nil
}

// sealActive ends appends to the active segment, so the reader can finish
// it and the space can be reclaimed once it is consumed.
func (w *writer) sealActive() {
	s := w.active
	if s == nil {
		return
	}
	w.active = nil
	b := w.b
	b.mu.Lock()
	s.sealed = true
	synced := s.synced == s.size
	notify(&b.dataCh)
	b.mu.Unlock()
	if synced && s.wf != nil {
		s.wf.Close()
		s.wf = nil
	}
	b.reclaim()
}

// syncFiles fsyncs every segment written this round.
func (w *writer) syncFiles() (string, error) {
	for _, s := range w.touched {
		if s.synced == s.size || s.wf == nil {
			continue
		}
		if err := s.wf.Sync(); err != nil {
			return "sync", err
		}
		s.synced = s.size
	}
	w.b.met.fsyncs(1)
	return "", nil
}

// syncDir makes a segment created this round durable by name: without it a
// power loss can make a whole synced file vanish (Vector PR #25766).
func (w *writer) syncDir() (string, error) {
	if !w.dirDirty {
		return "", nil
	}
	if err := w.b.fs.SyncDir(w.b.dir); err != nil {
		return "syncdir", err
	}
	w.dirDirty = false
	return "", nil
}

// publish makes what the round synced readable.
func (w *writer) publish() {
	b := w.b
	b.mu.Lock()
	for _, s := range w.touched {
		s.visible = s.synced
	}
	b.mu.Unlock()
	w.closeSealed()
}

// syncAll is the SyncInterval tick: it fsyncs what was written since the
// last tick. Its data was acknowledged already; a failure is counted and
// logged, and the segment is sealed so new records go to a fresh file.
func (w *writer) syncAll() {
	b := w.b
	if len(w.touched) == 0 && !w.dirDirty {
		return
	}
	for _, s := range w.touched {
		if s.wf == nil || s.synced == s.size {
			continue
		}
		if err := s.wf.Sync(); err != nil {
			b.ioError("sync", err)
			if s == w.active {
				w.sealActive()
			}
		}
		s.synced = s.size
	}
	if w.dirDirty {
		if err := b.fs.SyncDir(b.dir); err != nil {
			b.ioError("syncdir", err)
		} else {
			w.dirDirty = false
		}
	}
	b.met.fsyncs(1)
	w.closeSealed()
}

// closeSealed closes the write handles of sealed, synced segments and
// forgets them.
func (w *writer) closeSealed() {
	b := w.b
	k := 0
	for _, s := range w.touched {
		b.mu.Lock()
		sealed := s.sealed
		b.mu.Unlock()
		if sealed && s.synced == s.size {
			if s.wf != nil {
				s.wf.Close()
				s.wf = nil
			}
			continue
		}
		w.touched[k] = s
		k++
	}
	clear(w.touched[k:])
	w.touched = w.touched[:k]
}

// fail handles a failed write or sync round. Nothing written since the last
// good sync can be trusted (Linux may drop the pages after an fsync error),
// so each touched segment is cut back to what the last good round published
// and sealed, and the round starts over in a new segment. With SyncInterval
// the cut is at the last good write, which was acknowledged already.
func (w *writer) fail() {
	b := w.b
	w.active = nil
	var drop []*segment
	b.mu.Lock()
	for _, s := range w.touched {
		cut := s.size
		if b.opt.Sync == SyncAlways {
			// Back to what was published before this round, not to what
			// this round managed to sync: the round is written again whole,
			// so a synced head of it kept here would be read twice.
			cut = s.visible
		}
		s.sealed = true
		if cut < SegmentHeaderSize {
			// Never durable: the reader has not entered it.
			drop = append(drop, s)
			b.diskBytes -= SegmentHeaderSize // its records go back to the batch
			b.unconsumed -= SegmentHeaderSize
			for i, t := range b.segs {
				if t == s {
					b.segs = append(b.segs[:i], b.segs[i+1:]...)
					break
				}
			}
			continue
		}
		b.log.Debug("disk buffer: segment cut back after a failure", "segment", SegmentName(s.id), "size", s.size, "cut", cut)
		s.size = cut
		s.visible = cut
	}
	notify(&b.dataCh)
	b.mu.Unlock()
	for _, s := range w.touched {
		if s.wf == nil {
			continue
		}
		// Cut durably, so a crash cannot bring back records that are about
		// to be written again elsewhere. Best effort: the reader stops at
		// size anyway, and a copy that comes back is only a duplicate.
		_ = s.wf.Truncate(s.size)
		if err := s.wf.Sync(); err != nil {
			b.ioError("sync", err)
			s.synced = min(s.synced, s.size)
		} else {
			s.synced = s.size
		}
		s.wf.Close()
		s.wf = nil
	}
	for _, s := range drop {
		if err := b.fs.Remove(b.path(s.id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			b.ioError("remove", err)
		}
	}
	w.touched = w.touched[:0]
}

// finish runs when the buffer closes: the last interval sync, then the
// write handles are closed.
func (w *writer) finish() {
	if w.b.opt.Sync == SyncInterval {
		w.syncAll()
	}
	w.sealActive()
	for _, s := range w.touched {
		if s.wf != nil {
			s.wf.Close()
			s.wf = nil
		}
	}
	w.touched = nil
}

// abandonAll tells every owner still waiting that its records will not be
// made durable.
func (w *writer) abandonAll() {
	b := w.b
	b.mu.Lock()
	owners := b.owners
	b.owners = nil
	b.mu.Unlock()
	for _, o := range owners {
		o.o.Abandon()
	}
}
