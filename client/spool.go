package client

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/ternlog/tern/internal/ternproto"
	"github.com/ternlog/tern/pipeline/framing"
)

// The spool keeps each sealed batch as a file <order>.batch (the B frame,
// written to a temporary name and renamed) until every message of it is
// acknowledged. A batch split for a router with a smaller frame limit keeps
// its file until all its pieces are acknowledged.

type spoolFile struct {
	path string
	refs int
}

// release drops one piece's hold on the file and removes it with the last.
func (f *spoolFile) release() {
	if f == nil {
		return
	}
	f.refs--
	if f.refs <= 0 {
		_ = os.Remove(f.path)
	}
}

const spoolExt = ".batch"

// spool writes b's file. Call with c.mu held.
func (c *Client) spool(b *batch) error {
	path := filepath.Join(c.o.spoolDir, fmt.Sprintf("%020d%s", b.order, spoolExt))
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b.frame)
	if err == nil && c.o.spoolSync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	b.file = &spoolFile{path: path, refs: 1}
	return nil
}

// loadSpool queues the batches a previous run left, oldest first. A file
// that is not a whole batch frame is renamed *.bad and reported.
func (c *Client) loadSpool() error {
	if err := os.MkdirAll(c.o.spoolDir, 0o700); err != nil {
		return fmt.Errorf("client: spool: %w", err)
	}
	ents, err := os.ReadDir(c.o.spoolDir)
	if err != nil {
		return fmt.Errorf("client: spool: %w", err)
	}
	var orders []uint64
	for _, e := range ents {
		name := e.Name()
		if strings.HasSuffix(name, ".tmp") {
			_ = os.Remove(filepath.Join(c.o.spoolDir, name))
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSuffix(name, spoolExt), 10, 64); err == nil && strings.HasSuffix(name, spoolExt) {
			orders = append(orders, n)
		}
	}
	sort.Slice(orders, func(i, j int) bool { return orders[i] < orders[j] })
	var bad []string
	for _, n := range orders {
		path := filepath.Join(c.o.spoolDir, fmt.Sprintf("%020d%s", n, spoolExt))
		frame, err := os.ReadFile(path)
		msgs := 0
		if err == nil {
			msgs, err = checkBatch(frame)
		}
		if err != nil {
			bad = append(bad, fmt.Sprintf("%s: %v", filepath.Base(path), err))
			_ = os.Rename(path, path+".bad")
			continue
		}
		b := &batch{order: n, seq: c.nextSeq, frame: frame, msgs: msgs, file: &spoolFile{path: path, refs: 1}}
		ternproto.SetBatchSeq(frame, b.seq)
		c.nextSeq++
		c.nextOrder = n + 1
		c.queue = append(c.queue, b)
		c.held += len(frame) - ternproto.BatchOverhead
		c.buffered.Add(int64(msgs))
	}
	if len(bad) > 0 {
		c.fail(fmt.Errorf("client: spool: unreadable batches set aside: %s", strings.Join(bad, "; ")))
	}
	return nil
}

// checkBatch verifies a spooled frame and counts its messages.
func checkBatch(frame []byte) (int, error) {
	if len(frame) < ternproto.BatchOverhead || frame[0] != framing.FrameMagic || frame[1] != ternproto.KindBatch ||
		uint64(binary.BigEndian.Uint32(frame[2:])) != uint64(len(frame)-framing.FrameHeaderLen) {
		return 0, errors.New("not a whole batch frame")
	}
	n, bad := 0, false
	_, err := ternproto.ParseBatch(frame[framing.FrameHeaderLen:], func(_ []byte, b bool) {
		n++
		bad = bad || b
	})
	if err == nil && bad {
		err = errors.New("truncated message")
	}
	return n, err
}

// resplit cuts batches larger than the router's frame limit into pieces
// that fit. A message that cannot fit alone is dropped and counted in
// c.lost, which the next Flush reports. Call with c.mu held.
func (c *Client) resplit() {
	limit := c.peerMax
	var out []*batch
	for _, b := range c.queue {
		if len(b.frame)-framing.FrameHeaderLen <= limit {
			out = append(out, b)
			continue
		}
		var pieces []*batch
		var w ternproto.BatchWriter
		open := false
		finish := func() {
			if open && w.Len() > 0 {
				pieces = append(pieces, &batch{order: b.order, frame: w.Finish(), msgs: w.Len(), file: b.file})
			}
			open = false
		}
		dropped := 0
		_, _ = ternproto.ParseBatch(b.frame[framing.FrameHeaderLen:], func(msg []byte, _ bool) {
			size := framing.FrameHeaderLen + len(msg)
			if size > limit-ternproto.BatchOverhead {
				dropped++
				return
			}
			if open && w.Size()+size > limit {
				finish()
			}
			if !open {
				w = ternproto.BatchWriter{}
				w.Begin(nil, 0)
				open = true
			}
			w.AddFrame(framing.AppendFrame(nil, framing.FrameMessage, msg))
		})
		finish()
		if dropped > 0 {
			c.lost += dropped
			c.buffered.Add(-int64(dropped))
			c.fail(fmt.Errorf("%w: %d messages larger than the router's %d-byte frames dropped", ErrTooLarge, dropped, limit))
		}
		c.held -= len(b.frame) - ternproto.BatchOverhead
		if b.file != nil {
			b.file.refs += len(pieces) - 1
			if len(pieces) == 0 {
				b.file.release()
			}
		}
		for _, p := range pieces {
			p.seq = c.nextSeq
			c.nextSeq++
			ternproto.SetBatchSeq(p.frame, p.seq)
			c.held += len(p.frame) - ternproto.BatchOverhead
			out = append(out, p)
		}
	}
	c.queue = out
}
