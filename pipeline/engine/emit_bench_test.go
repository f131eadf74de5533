package engine

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/matcher"
	"github.com/ternlog/tern/pipeline/queue"
)

// splitDecoder is a decoder of the usual shape: a few short strings cut
// from the record through Batch.Str, a field or two.
type splitDecoder struct{}

func (splitDecoder) Decode(rec pipeline.Record, b *pipeline.Batch) error {
	d := rec.Data
	m := b.Add()
	m.Type = b.Str(d[:4])
	m.Hostname = b.Str(d[4:9])
	m.Payload = b.Str(d[9:])
	m.AddString("user", b.Str(d[33:37]))
	m.AddString("src", b.Str(d[43:51]))
	m.AddInt("port", 22)
	return nil
}

// acked is a queue whose destination delivers at once: the entry's owner
// is told on Push, so the input's batch goes back for reuse as in a
// router that keeps up.
type acked struct{ discard }

func (acked) Push(_ context.Context, e *queue.Entry) error {
	if e.Owner != nil {
		e.Owner.Done()
	}
	return nil
}

// BenchmarkEmit is the straight-through path an input's records take:
// decoding into a batch, routing every message to two destinations that
// take all of them (no copies) and deliver at once, by records per Emit.
//
//	go test -run '^$' -bench Emit -benchmem ./pipeline/engine
func BenchmarkEmit(b *testing.B) {
	all, err := matcher.Compile("TRUE")
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1, 16, 256} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			recs := make([]pipeline.Record, n)
			for i := range recs {
				recs[i] = pipeline.Record{Data: fmt.Appendf(nil, "authhost%dFailed password for root from 10.0.0.%d port 22 ssh2", i%8, i%256)}
			}
			e := &Engine{metrics: newMetrics(prometheus.NewRegistry()), now: time.Now, uuid: func() [16]byte { return [16]byte{1} }}
			e.dests = []*dest{
				{id: "outputs.a", match: all, q: acked{}},
				{id: "outputs.b", match: all, q: acked{}},
			}
			r := &inputRunner{e: e, id: "inputs.x", name: "x", dec: splitDecoder{}, decID: "decoders.split", m: e.metrics.input("inputs.x")}
			ctx := context.Background()
			b.ReportAllocs()
			for range b.N {
				if err := r.Emit(ctx, recs, nil); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/msg")
		})
	}
}
