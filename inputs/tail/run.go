package tail

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/ternlog/tern/pipeline"
)

// Loop-owned state (the Run goroutine only).
type loopState struct {
	hs       []*harvester
	needScan bool // rescan at the next round, whatever wakes it
	recs     []pipeline.Record
	offs     []int64
}

const (
	// roundBudget is what one file may read before the others get a turn;
	// files rotated away are read to their end first regardless.
	roundBudget = 1 << 20
	pollMin     = 50 * time.Millisecond
)

func (t *Input) Run(ctx context.Context, out pipeline.Emitter) error {
	if err := t.loadState(); err != nil {
		return err
	}
	t.hs = nil
	flushCtx, stopFlush := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { t.flushLoop(flushCtx) })
	defer func() {
		for _, h := range slices.Clone(t.hs) {
			t.closeHarvester(h) // positions stay: the next run resumes there
		}
		stopFlush()
		wg.Wait()
		_ = t.save()
	}()
	if t.cfg.ExitAfterEOF {
		return t.replay(ctx, out)
	}
	return t.follow(ctx, out)
}

// flushLoop saves positions once they change: at most once every
// checkpoint_interval, or at once when checkpoint_lines lines were
// acknowledged since the last save. Nothing changes, nothing wakes it.
func (t *Input) flushLoop(ctx context.Context) {
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.kick:
		}
		t.mu.Lock()
		urgent := t.unsaved >= t.cfg.CheckpointLines
		t.mu.Unlock()
		if wait := time.Until(last.Add(t.cfg.CheckpointInterval.D())); !urgent && wait > 0 {
			tm := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				tm.Stop()
				return
			case <-tm.C:
			case <-t.kick: // the line threshold
				tm.Stop()
			}
		}
		_ = t.save()
		last = time.Now()
	}
}

// follow tails until ctx ends.
func (t *Input) follow(ctx context.Context, out pipeline.Emitter) error {
	w := t.newWaker()
	defer w.close()
	first := true
	var nextScan time.Time
	delay := pollMin
	for {
		t.rounds.Add(1)
		now := time.Now()
		if w.takeRescan() || first || t.needScan || !now.Before(nextScan) {
			t.needScan = false
			// Watch first: a change during the scan, after the scan
			// looked at that file, must still send an event.
			w.watch(t.watchDirs())
			t.scan(t.set.Now(), first)
			first = false
			if w.polling() {
				nextScan = now.Add(delay)
			} else {
				nextScan = now.Add(t.cfg.ScanInterval.D())
			}
		}
		moved := t.pumpAll(ctx, out)
		if ctx.Err() != nil {
			return nil
		}
		t.reap(ctx, out, time.Now())
		t.forget(t.set.Now())
		if moved {
			delay = pollMin
			continue
		}
		d := time.Until(nextScan)
		if w.polling() {
			delay = min(2*delay, t.cfg.PollInterval.D())
		}
		for _, h := range t.hs {
			if !h.inGlob {
				// Files rotated out of the watched names send no events.
				d = min(d, t.cfg.PollInterval.D())
			}
			if h.atEOF {
				d = min(d, time.Until(h.idleSince.Add(t.cfg.CloseInactive.D())))
			}
		}
		w.wait(ctx, d)
		if ctx.Err() != nil {
			return nil
		}
	}
}

// replay reads every file to its end once, waits for the acknowledgements,
// saves the positions and ends the input.
func (t *Input) replay(ctx context.Context, out pipeline.Emitter) error {
	first := true
	for {
		opened := t.scan(t.set.Now(), first)
		first = false
		moved := t.pumpAll(ctx, out)
		if ctx.Err() != nil {
			return nil
		}
		for _, h := range slices.Clone(t.hs) {
			if h.atEOF {
				if err := h.flushPartial(ctx, out); err != nil {
					return nil
				}
				t.closeHarvester(h)
			}
		}
		if !moved && opened == 0 && len(t.hs) == 0 {
			break
		}
	}
	for {
		t.mu.Lock()
		n := t.inflight
		t.mu.Unlock()
		if n == 0 {
			break
		}
		select {
		case <-t.settled:
		case <-ctx.Done():
			return nil
		}
	}
	if err := t.save(); err != nil {
		return err
	}
	return pipeline.ErrEndOfInput
}

// pumpAll gives every open file a turn. Rotated files (renamed, out of the
// globs, or a copy continuing a truncated file) go first and are read to
// their end: the old file is finished before its successor moves on.
func (t *Input) pumpAll(ctx context.Context, out pipeline.Emitter) bool {
	order := slices.Clone(t.hs)
	slices.SortStableFunc(order, func(a, b *harvester) int {
		switch ra, rb := a.rotated(), b.rotated(); {
		case ra && !rb:
			return -1
		case rb && !ra:
			return 1
		}
		return 0
	})
	moved := false
	for _, h := range order {
		budget := int64(roundBudget)
		if h.rotated() {
			budget = 0
		}
		m, err := h.pump(ctx, out, budget)
		moved = moved || m
		if ctx.Err() != nil {
			return moved
		}
		if err != nil {
			t.readFailed(h, err)
			moved = true
		}
	}
	return moved
}

// rotated reports whether h reads a file that has a successor. Only the
// Run loop writes the fields it reads.
func (h *harvester) rotated() bool {
	return !h.inGlob || h.e.path != h.src || h.e.truncated
}

// readFailed handles a harvester whose read failed.
func (t *Input) readFailed(h *harvester, err error) {
	switch {
	case errors.Is(err, errRewritten):
		t.restart(h)
	case h.zr != nil && errors.Is(err, io.ErrUnexpectedEOF):
		// A gzip file still being written: look again when it grows.
		t.closeHarvester(h)
	case h.zr != nil:
		t.set.Error("gzip")
		t.warnLimited("gzip:"+h.src, "corrupt gzip file; reading stops at the damage", "path", h.src, "err", err)
		t.mu.Lock()
		h.e.done = true
		t.markDirty()
		t.mu.Unlock()
		t.closeHarvester(h)
	default:
		t.set.Error("read")
		t.warnLimited("read:"+h.src, "reading a file failed; it is retried at the next scan", "path", h.src, "err", err)
		t.closeHarvester(h)
		t.mu.Lock()
		h.e.size = -1
		t.mu.Unlock()
	}
}

// restart starts a file over after it was truncated or rewritten in place.
// Its old identity keeps its position: a copy made before the truncation
// (copytruncate) continues from there.
func (t *Input) restart(h *harvester) {
	if !h.discarding && h.end > h.start {
		// The unterminated line we held will never be completed here.
		t.set.Drop("truncated", 1)
	}
	t.log.Info("file truncated or rewritten; reading it from the start", "path", h.src)
	old := h.e
	ne := &entry{dev: h.dev, ino: h.ino, path: old.path, seen: old.seen, size: -1, nextAnchor: emptyAnchor}
	ne.ackedAt(0, emptyAnchor)
	t.mu.Lock()
	old.h = nil
	old.dev, old.ino, old.size, old.truncated = 0, 0, -1, true
	ne.h = h
	t.entries = append(t.entries, ne)
	t.mu.Unlock()
	h.e = ne
	t.needScan = true
	h.discarding, h.atEOF = false, false
	h.head, h.first = h.head[:0], h.first[:0]
	if err := h.seekPlain(0); err != nil {
		t.readFailed(h, err)
	}
}

// reap closes files that are done: gzip files at their end, any file at
// its end with close_eof, and files idle for close_inactive (those rotated
// away deliver their unterminated last line first).
func (t *Input) reap(ctx context.Context, out pipeline.Emitter, now time.Time) {
	for _, h := range slices.Clone(t.hs) {
		if !h.atEOF {
			continue
		}
		finished := h.zr != nil && h.gzEnd
		idle := now.Sub(h.idleSince) >= t.cfg.CloseInactive.D()
		if !finished && !t.cfg.CloseEOF && !idle {
			continue
		}
		if finished || t.cfg.CloseEOF || !h.inGlob {
			if h.flushPartial(ctx, out) != nil {
				return
			}
		}
		t.closeHarvester(h)
	}
}

// closeHarvester closes h's file; its entry keeps the position, and what
// the file looked like, so an unchanged file is not reopened. For a plain
// file that is what it looked like when read last found it ending at our
// position with our bytes before it, not what it looks like now: a same-size
// rewrite in between would pass for no change. Otherwise the next scan looks
// at the file again.
func (t *Input) closeHarvester(h *harvester) {
	size, mtime := int64(-1), int64(0)
	switch {
	case h.zr != nil:
		if fi, err := h.f.Stat(); err == nil {
			size, mtime = fi.Size(), fi.ModTime().UnixNano()
		}
	case h.checkedAt >= 0 && h.checkedAt == h.pos:
		size, mtime = h.pos, h.checked
	}
	t.mu.Lock()
	if e := h.e; e != nil && e.h == h {
		e.h = nil
		e.size = size
		if size >= 0 {
			e.mtime = mtime
		}
		if h.zr != nil && h.gzEnd && e.next == h.pos {
			e.done = true
			t.markDirty()
		}
	}
	t.mu.Unlock()
	h.f.Close()
	if !h.inGlob {
		t.needScan = true
	}
	if i := slices.Index(t.hs, h); i >= 0 {
		t.hs = slices.Delete(t.hs, i, i+1)
	}
	t.publishPaths()
}

// forget drops what is known of files no glob has matched for forget_after.
func (t *Input) forget(now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	keep := t.entries[:0]
	for _, e := range t.entries {
		if e.h == nil && e.acked.Idle() && now.Sub(e.seen) > t.cfg.ForgetAfter.D() {
			t.markDirty()
			continue
		}
		keep = append(keep, e)
	}
	clear(t.entries[len(keep):])
	t.entries = keep
}
