package engine

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/matcher"
)

// BenchmarkRouteShare is the routing path's cost by the share of a batch
// (256 messages decoded into one Batch, so their strings share chunks) that
// one destination takes, next to a second destination taking all of it:
// "all" is the straight-through path, which must stay free of copies;
// smaller shares show what the copies of a selective destination cost.
//
//	go test -run '^$' -bench RouteShare -benchmem ./pipeline/engine
func BenchmarkRouteShare(b *testing.B) {
	batch := pipeline.NewBatch()
	for i := range 256 {
		m := batch.Add()
		m.Type = batch.Str([]byte("auth"))
		m.Logger = batch.Str([]byte("sshd"))
		m.Hostname = batch.Str(fmt.Appendf(nil, "host%d", i%8))
		m.Payload = batch.Str(fmt.Appendf(nil, "Failed password for root from 10.0.0.%d port 22 ssh2", i))
		m.AddString("user", batch.Str([]byte("root")))
		m.AddInt("port", int64(i%100))
	}
	msgs := batch.Msgs
	for _, c := range []struct{ name, expr string }{
		{"all", "TRUE"},
		{"half", "Hostname =~ /host[0-3]/"},
		{"quarter", "Hostname == 'host0' || Hostname == 'host1'"},
		{"1pct", "Fields[port] == 7"},
	} {
		b.Run(c.name, func(b *testing.B) {
			m, err := matcher.Compile(c.expr)
			if err != nil {
				b.Fatal(err)
			}
			all, _ := matcher.Compile("TRUE")
			e := &Engine{metrics: newMetrics(prometheus.NewRegistry())}
			e.dests = []*dest{
				{id: "outputs.a", match: m, q: discard{}},
				{id: "outputs.b", match: all, q: discard{}},
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if err := e.route(ctx, msgs, nil, 0, nil, modeBlock, "inputs.x"); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(msgs)), "ns/msg")
		})
	}
}
