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

// discard is a queue that takes every entry, so the benchmark measures the
// router and not a queue.
type discard struct{}

func (discard) Push(context.Context, *queue.Entry) error { return nil }
func (discard) Next(context.Context, int, int, time.Duration, time.Duration) (queue.Lease, error) {
	return nil, nil
}
func (discard) Bytes() int   { return 0 }
func (discard) Len() int     { return 0 }
func (discard) Close() error { return nil }

// BenchmarkRouteTap is the routing path's cost (a batch of 256 messages to
// two destinations, one matcher each) with no tap and with one, so the
// "free when nobody listens" promise of tap.go is measured:
//
//	go test -run '^$' -bench RouteTap -benchmem ./pipeline/engine
func BenchmarkRouteTap(b *testing.B) {
	mk := func(expr string) *matcher.Matcher {
		m, err := matcher.Compile(expr)
		if err != nil {
			b.Fatal(err)
		}
		return m
	}
	msgs := make([]*pipeline.Message, 256)
	for i := range msgs {
		m := pipeline.NewMessage()
		m.Type = "auth"
		m.Logger = "sshd"
		m.Payload = fmt.Sprintf("Failed password for root from 10.0.0.%d port 22 ssh2", i)
		m.AddString("user", "root")
		m.AddInt("port", 22)
		msgs[i] = m
	}
	cases := []struct {
		name string
		tap  *TapOptions
		read bool
	}{
		{name: "no_tap"},
		// The dashboard's alert feed: a matcher no routed message passes.
		{name: "tap_matching_none", tap: &TapOptions{Match: mk("Type == 'tern.alert'")}},
		// A reader that stopped reading: every message matched, none copied.
		{name: "tap_all_full", tap: &TapOptions{Buffer: 1}},
		// `tern tap` at its default cap: most messages skipped by the bucket.
		{name: "tap_all_rate1000", tap: &TapOptions{Rate: 1000}, read: true},
		// Every message copied and read: the most a tap can cost.
		{name: "tap_all_read", tap: &TapOptions{Buffer: 1 << 16, MaxBytes: 1 << 30}, read: true},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			e := &Engine{metrics: newMetrics(prometheus.NewRegistry()), maxTaps: 1}
			e.dests = []*dest{
				{id: "outputs.a", match: mk("Type == 'auth' && Fields[port] == 22"), q: discard{}},
				{id: "outputs.b", match: mk("TRUE"), q: discard{}},
			}
			if c.tap != nil {
				t, err := e.Tap(*c.tap)
				if err != nil {
					b.Fatal(err)
				}
				if c.read {
					ctx, cancel := context.WithCancel(context.Background())
					done := make(chan struct{})
					go func() {
						defer close(done)
						for {
							if _, err := t.Next(ctx); err != nil {
								return
							}
						}
					}()
					defer func() { cancel(); <-done }()
				}
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
