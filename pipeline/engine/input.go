package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/ternlog/tern/internal/backoff"
	"github.com/ternlog/tern/pipeline"
)

// inputRunner runs one input and is its Emitter: records are decoded and
// routed on the caller's goroutine, so inputs with many connections decode
// in parallel and no hand-off sits between reading and routing.
type inputRunner struct {
	e            *Engine
	id, name     string
	in           pipeline.Input
	set          pipeline.Settings
	dec          pipeline.Decoder
	decID        string
	transformers []pipeline.Transformer
	trIDs        []string
	m            *inputMetrics
	state        *pluginState
	life         *lifetime
}

var _ pipeline.BufferEmitter = (*inputRunner)(nil)

func (r *inputRunner) Emit(ctx context.Context, recs []pipeline.Record, ack pipeline.AckFunc) error {
	return r.emit(ctx, recs, ack, nil)
}

// EmitBuffer lends rb to the batch: the decoders' strings are views into
// it, and the batch gives it back when its last destination is done.
func (r *inputRunner) EmitBuffer(ctx context.Context, recs []pipeline.Record, ack pipeline.AckFunc, rb *pipeline.ReadBuffer) error {
	return r.emit(ctx, recs, ack, rb)
}

func (r *inputRunner) emit(ctx context.Context, recs []pipeline.Record, ack pipeline.AckFunc, rb *pipeline.ReadBuffer) error {
	e := r.e
	tr := e.newTracker(ack)
	b, _ := e.batches.Get().(*pipeline.Batch)
	if b == nil {
		b = pipeline.NewBatch()
	} else {
		b.Reset()
	}
	if rb != nil {
		b.Lend(rb)
	}
	tr.batch.Store(b)
	size := 0
	for i := range recs {
		size += len(recs[i].Data)
	}
	b.Reserve(len(recs), size) // a small batch allocates little: queues may keep it
	now := e.now().UnixNano()
	r.m.records.Add(float64(len(recs)))
	r.decodeAll(recs, b)
	for _, m := range b.Msgs {
		m.FillDefaults(e.uuid, now, r.name)
	}
	r.m.messages.Add(float64(len(b.Msgs)))
	err := e.route(ctx, b.Msgs, tr, 0, nil, modeBlock, r.id)
	if err != nil {
		tr.failed.Store(true)
	}
	tr.Done()
	return err
}

// decodeAll decodes recs into b (decodeFrom, again after each panic).
func (r *inputRunner) decodeAll(recs []pipeline.Record, b *pipeline.Batch) {
	for i := 0; i < len(recs); {
		i = r.decodeFrom(recs, i, b)
	}
}

// decodeFrom runs the decoder chain on recs[i:] and returns len(recs). A
// failure anywhere replaces a record's messages by one dead letter carrying
// its original bytes. A panic is caught here, once per batch rather than
// armed per record: the record is dead-lettered and decodeFrom returns the
// index after it, to be called again from there.
func (r *inputRunner) decodeFrom(recs []pipeline.Record, i int, b *pipeline.Batch) (next int) {
	var stage string
	start := b.Len()
	defer func() {
		if p := recover(); p != nil {
			r.e.log.Error("decoder panic", "plugin", stage, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			r.failed(&recs[i], b, start, stage, fmt.Errorf("panic: %v", p))
			next = i + 1
		}
	}()
	for ; i < len(recs); i++ {
		rec := &recs[i]
		start = b.Len()
		if err := r.decodeChain(rec, b, start, &stage); err != nil {
			r.failed(rec, b, start, stage, err)
			continue
		}
		if len(rec.Fields) > 0 {
			for _, m := range b.Msgs[start:] {
				for _, f := range rec.Fields {
					m.AddField(f)
				}
			}
		}
	}
	return len(recs)
}

// failed drops what rec's decoding produced and dead-letters rec.
func (r *inputRunner) failed(rec *pipeline.Record, b *pipeline.Batch, start int, stage string, err error) {
	b.Truncate(start)
	r.e.deadLetter(b, "decode_error", stage, rec.Source, err, rec.Data)
	r.e.metrics.deadLetter(stage, "decode_error")
}

// decodeChain decodes rec and runs the transformers, keeping in *stage the
// plugin at work (for errors and panics).
func (r *inputRunner) decodeChain(rec *pipeline.Record, b *pipeline.Batch, start int, stage *string) error {
	*stage = r.decID
	if err := r.dec.Decode(*rec, b); err != nil {
		return err
	}
	for i, t := range r.transformers {
		*stage = r.trIDs[i]
		produced := append([]*pipeline.Message(nil), b.Msgs[start:]...)
		b.Truncate(start)
		for _, m := range produced {
			n := b.Len()
			b.Msgs = append(b.Msgs, m)
			keep, err := t.Transform(m, b)
			if err != nil {
				return err
			}
			if !keep {
				b.Msgs = append(b.Msgs[:n], b.Msgs[n+1:]...)
			}
		}
	}
	return nil
}

// run calls Input.Run until ctx ends, restarting it after failures.
func (r *inputRunner) run(ctx context.Context) {
	bo := backoff.New(250*time.Millisecond, 30*time.Second)
	for {
		started := time.Now()
		err := r.safeRun(ctx)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, pipeline.ErrEndOfInput) {
			r.state.set("ended", nil)
			r.e.log.Info("input reached its end", "plugin", r.id)
			r.e.inputEnded()
			return
		}
		if err == nil {
			err = fmt.Errorf("Run returned before shutdown")
		}
		r.state.set("restarting", err)
		r.e.metrics.pluginError(r.id, "restart")
		if time.Since(started) > time.Minute {
			bo.Reset()
		}
		d := bo.Next()
		r.e.log.Error("input failed; restarting", "plugin", r.id, "err", err, "in", d)
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return
		}
	}
}

func (r *inputRunner) safeRun(ctx context.Context) (err error) {
	defer func() {
		if p := recover(); p != nil {
			r.e.log.Error("input panic", "plugin", r.id, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	r.state.set("running", nil)
	return r.in.Run(ctx, r)
}
