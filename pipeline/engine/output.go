package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

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
}

func (r *outputRunner) run(ctx context.Context) {
	for {
		lease, err := r.q.Next(ctx, r.cfg.BatchMaxCount, r.cfg.BatchMaxBytes, r.cfg.FlushInterval, 0)
		if err != nil || lease == nil {
			return
		}
		if r.deliver(ctx, lease.Msgs()) {
			lease.Commit()
			r.e.changed()
		} else {
			return // stopped mid-retry; the queue abandons what is left
		}
	}
}

// deliver returns false only when ctx ended before the batch was settled.
func (r *outputRunner) deliver(ctx context.Context, msgs []*pipeline.Message) bool {
	r.buf = r.buf[:0]
	r.offs = r.offs[:0]
	r.encoded = r.encoded[:0]
	kept := msgs[:0:0]
	for _, m := range msgs {
		start := len(r.buf)
		var err error
		r.buf, err = r.safeEncode(r.buf, m)
		if err != nil {
			r.buf = r.buf[:start]
			r.deadLetterMsg(m, "encode_error", r.encID, err, nil)
			continue
		}
		kept = append(kept, m)
		r.offs = append(r.offs, len(r.buf))
	}
	// Slice after encoding: appends above may have moved buf.
	start := 0
	for i, m := range kept {
		r.encoded = append(r.encoded, pipeline.Encoded{Msg: m, Data: r.buf[start:r.offs[i]:r.offs[i]]})
		start = r.offs[i]
	}
	pending := r.encoded
	bo := newBackoff(r.cfg.Retries.Delay.D(), r.cfg.Retries.MaxDelay.D())
	bo.jitter = r.cfg.Retries.MaxJitter.D()
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
		d := bo.next()
		if r.e.limiter.allow(r.id + "/write") {
			r.e.log.Warn("output write failed; retrying", "plugin", r.id, "records", len(pending), "err", err, "in", d)
		}
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return false
		}
	}
	return true
}

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

// deadLetterMsg moves a message this output cannot take to the dead-letter
// route. A dead letter that fails again goes to the fallback file instead, so
// nothing loops.
func (r *outputRunner) deadLetterMsg(m *pipeline.Message, reason, plugin string, err error, data []byte) {
	r.e.metrics.deadLetter(plugin, reason)
	if m.Type == DeadLetterType {
		r.e.dead.write(context.Background(), m, nil)
		return
	}
	b := pipeline.NewBatch()
	if data == nil {
		data = codec.AppendJSON(nil, m)
	}
	dl := r.e.deadLetter(b, reason, plugin, m.Logger, err, data)
	dl.AddString("deadletter.uuid", m.UUIDString())
	dl.AddString("deadletter.type", m.Type)
	dl.UUID = r.e.uuid()
	dl.Timestamp = r.e.now().UnixNano()
	_ = r.e.route(context.Background(), b.Msgs, nil, 0, nil, modeNoWait, r.id)
}
