package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"time"

	"github.com/ternlog/tern/internal/backoff"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/queue"
)

// outputRunner drains one output's queue: it encodes a lease of messages,
// writes them, retries forever on transient errors, and commits the lease
// once every message is delivered or dead-lettered.
type outputRunner struct {
	e     *Engine
	id    string
	out   pipeline.Output
	enc   pipeline.Encoder
	encID string
	q     queue.Queue
	cfg   *config.Output
	set   pipeline.Settings
	m     *outputMetrics
	state *pluginState
	life  *lifetime

	buf     []byte
	offs    []int
	encoded []pipeline.Encoded
	sep     []byte // written after each record, for a Separated output

	// Dead letters raised for the current lease, routed once it is
	// settled: new ones in dlb (origins: the messages they stand for),
	// and refused dead letters again, for the fallback file.
	dlb     *pipeline.Batch
	origins []*pipeline.Message
	again   []*pipeline.Message
}

func (r *outputRunner) run(ctx context.Context) {
	for {
		lease, err := r.q.Next(ctx, r.cfg.BatchMaxCount, r.cfg.BatchMaxBytes, r.cfg.FlushInterval, 0)
		if err != nil || lease == nil {
			return
		}
		r.dlb, r.origins, r.again = nil, r.origins[:0], r.again[:0]
		if !r.deliver(ctx, lease.Msgs()) {
			return // stopped mid-retry; the queue abandons what is left
		}
		r.settle(ctx, lease)
	}
}

// settle commits lease once the dead letters raised for it are stored.
// Committing is what acknowledges the sources (memory queue) or moves the
// disk buffer's cursor, so a dead letter never depends on a source that
// has moved on: until its output (or the fallback file) has it, the
// refused record stays unacknowledged and would be read again after a
// crash. The dead letters are routed without waiting on any queue but the
// fallback file's (which waits on nothing), so no runner can deadlock on
// another; the lease holds its queue's bytes meanwhile, so a slow
// dead-letter route slows this output instead of growing memory.
func (r *outputRunner) settle(ctx context.Context, lease queue.Lease) {
	if r.dlb == nil && len(r.again) == 0 {
		lease.Commit()
		r.e.changed()
		return
	}
	origins := append([]*pipeline.Message(nil), r.origins...)
	dlCount := len(r.again)
	if r.dlb != nil {
		dlCount += len(r.dlb.Msgs)
	}
	_, durable := r.q.(interface{ Durable() bool })
	hold := r.e.newTracker(func(err error) {
		if err == nil {
			lease.Commit()
			return
		}
		// Stopped first: the lease stays uncommitted, so the refused
		// records are offered again (disk buffer, or a source that can
		// be told) and raise their dead letters again. Those of sources
		// that cannot be told are lost: count them.
		if lost := r.untold(lease, origins, durable); lost > 0 {
			r.e.metrics.dropped(r.id, "deadletter_lost", lost)
			r.e.log.Error("dead letters lost at shutdown: their output did not store them in time", "plugin", r.id, "lost", lost, "of", dlCount)
		}
	})
	for _, m := range r.again {
		r.e.dead.write(ctx, m, hold)
	}
	if r.dlb != nil {
		_ = r.e.route(ctx, r.dlb.Msgs, hold, 0, nil, modeDeadLetter, r.id)
	}
	hold.Done()
}

// untold counts the origins whose source cannot be told to offer them
// again: with a memory queue, those of entries whose tracker has no AckFunc.
func (r *outputRunner) untold(lease queue.Lease, origins []*pipeline.Message, durable bool) int {
	if durable {
		return 0 // the disk buffer reads the uncommitted lease again
	}
	n := 0
	for _, m := range origins {
		told := false
		for _, sp := range lease.Entries() {
			if tr := ownerTracker(sp.Entry.Owner); tr != nil && slices.Contains(sp.Entry.Msgs[sp.Start:sp.End], m) {
				told = tr.ack != nil
				break
			}
		}
		if !told {
			n++
		}
	}
	return n
}

// deliver returns false only when ctx ended before the batch was settled.
func (r *outputRunner) deliver(ctx context.Context, msgs []*pipeline.Message) bool {
	r.buf = r.buf[:0]
	r.offs = r.offs[:0]
	r.encoded = r.encoded[:0]
	for i := 0; i < len(msgs); {
		i = r.encodeFrom(msgs, i)
	}
	// Slice after encoding: appends above may have moved buf. Each record
	// is followed by the separator, within its capacity, when there is one.
	start, k := 0, len(r.sep)
	for i := range r.encoded {
		end := r.offs[i]
		r.encoded[i].Data = r.buf[start : end : end+k]
		start = end + k
	}
	pending := r.encoded
	var bo *backoff.Backoff // made on the first failure: most batches need none
	for len(pending) > 0 {
		t0 := time.Now()
		err := r.safeWrite(ctx, pending)
		r.m.latency.Observe(time.Since(t0).Seconds())
		if err == nil {
			r.m.delivered.Add(float64(len(pending)))
			r.state.set("running", nil)
			return true
		}
		var pe *pipeline.PartialError
		switch {
		case errors.As(err, &pe) && len(pe.Errs) == len(pending):
			var retry []pipeline.Encoded
			ok := 0
			for i, perr := range pe.Errs {
				switch {
				case perr == nil:
					ok++
				case pipeline.IsPermanent(perr):
					r.deadLetterMsg(pending[i].Msg, "output_rejected", r.id, perr, pending[i].Data)
				default:
					retry = append(retry, pending[i])
					err = perr
				}
			}
			r.m.delivered.Add(float64(ok))
			pending = retry
			if len(pending) == 0 {
				return true
			}
		case pipeline.IsPermanent(err):
			for _, p := range pending {
				r.deadLetterMsg(p.Msg, "output_rejected", r.id, err, p.Data)
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		r.m.retries.Inc()
		r.state.set("retrying", err)
		if bo == nil {
			bo = backoff.New(r.cfg.Retries.Delay.D(), r.cfg.Retries.MaxDelay.D())
			bo.Jitter = r.cfg.Retries.MaxJitter.D()
		}
		d := bo.Next()
		if asked, ok := pipeline.RetryDelay(err); ok && asked > d {
			d = asked // the peer asked for a longer wait (Retry-After)
		}
		r.e.logs.For(r.id+"/write").Warn(r.e.log, "output write failed; retrying", "plugin", r.id, "records", len(pending), "err", err, "in", d)
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		}
	}
	return true
}

// encodeFrom encodes msgs[i:] into r.buf, noting each message's end in
// r.offs, and returns len(msgs). A message the encoder refuses becomes a
// dead letter. A panic is caught here, once per batch rather than armed per
// message: the message is dead-lettered and encodeFrom returns the index
// after it, to be called again from there.
func (r *outputRunner) encodeFrom(msgs []*pipeline.Message, i int) (next int) {
	start := len(r.buf)
	defer func() {
		if p := recover(); p != nil {
			r.e.log.Error("encoder panic", "plugin", r.encID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			r.buf = r.buf[:start]
			r.deadLetterMsg(msgs[i], "encode_error", r.encID, fmt.Errorf("panic: %v", p), nil)
			next = i + 1
		}
	}()
	for ; i < len(msgs); i++ {
		m := msgs[i]
		start = len(r.buf)
		var err error
		if r.buf, err = r.enc.Encode(r.buf, m); err != nil {
			r.buf = r.buf[:start]
			r.deadLetterMsg(m, "encode_error", r.encID, err, nil)
			continue
		}
		r.encoded = append(r.encoded, pipeline.Encoded{Msg: m})
		r.offs = append(r.offs, len(r.buf))
		r.buf = append(r.buf, r.sep...)
	}
	return len(msgs)
}

// safeEncode encodes one message, a panic becoming its error (the
// Harness; deliver uses encodeFrom).
func (r *outputRunner) safeEncode(dst []byte, m *pipeline.Message) (out []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			r.e.log.Error("encoder panic", "plugin", r.encID, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			out, err = dst, fmt.Errorf("panic: %v", p)
		}
	}()
	return r.enc.Encode(dst, m)
}

func (r *outputRunner) safeWrite(ctx context.Context, batch []pipeline.Encoded) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.e.log.Error("output panic", "plugin", r.id, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return r.out.Write(ctx, batch)
}

// deadLetterMsg raises a dead letter for a message this output cannot take;
// settle routes it with the lease. A dead letter that fails again goes to
// the fallback file instead, so nothing loops.
func (r *outputRunner) deadLetterMsg(m *pipeline.Message, reason, plugin string, err error, data []byte) {
	r.e.metrics.deadLetter(plugin, reason)
	if m.Type == DeadLetterType {
		r.again = append(r.again, m)
		return
	}
	if r.dlb == nil {
		r.dlb = pipeline.NewBatch() // new each time: its messages outlive the lease
	}
	r.e.messageDeadLetter(r.dlb, m, reason, plugin, err, data)
	r.origins = append(r.origins, m)
}

// messageDeadLetter adds to b the dead letter of message m that plugin
// could not take; data is what to keep (nil: m as canonical JSON).
func (e *Engine) messageDeadLetter(b *pipeline.Batch, m *pipeline.Message, reason, plugin string, err error, data []byte) *pipeline.Message {
	if data == nil {
		data = codec.AppendJSON(nil, m)
	}
	dl := e.deadLetter(b, reason, plugin, m.Logger, err, data)
	dl.AddString("deadletter.uuid", m.UUIDString())
	dl.AddString("deadletter.type", m.Type)
	dl.UUID = e.uuid()
	dl.Timestamp = e.now().UnixNano()
	return dl
}
