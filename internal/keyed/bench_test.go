package keyed

import (
	"fmt"
	"testing"
	"time"

	"github.com/ternlog/tern/internal/testutil/benchutil"
)

// The primitives at high cardinality: 100,000 distinct keys, one event per
// millisecond of message time. With a 30 s span every key comes back after
// its period ended, so each event inserts a key and expires another (the
// churn of a spray of sources); "hot" keys recur within the span.
// cpu-ns/op is the process's CPU time per event (the machine may be shared).
// go test -run '^$' -bench . -benchmem ./internal/keyed

const benchKeys = 100_000

func benchKeyset(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255)
	}
	return keys
}

func BenchmarkWindowAdd(b *testing.B) {
	for _, c := range []struct {
		name string
		keys int
	}{{"churn", benchKeys}, {"hot", 1000}} {
		b.Run(c.name, func(b *testing.B) {
			keys := benchKeyset(c.keys)
			w, _ := NewWindow(WindowConfig{Span: 30 * time.Second, Distinct: 4, Limits: Limits{MaxKeys: benchKeys}}, nil)
			now := t0
			b.ReportAllocs()
			stop := benchutil.CPU(b)
			i := 0
			for b.Loop() {
				now += int64(time.Millisecond)
				for {
					if _, _, ok := w.Expired(now); !ok {
						break
					}
				}
				if _, err := w.Add(now, keys[i%len(keys)], "admin", true); err != nil {
					b.Fatal(err)
				}
				i++
			}
			stop()
			b.ReportMetric(float64(w.Stats().Keys), "keys")
		})
	}
}

func BenchmarkThrottleAllow(b *testing.B) {
	keys := benchKeyset(benchKeys)
	th, _ := NewThrottle(ThrottleConfig{Span: 30 * time.Second, Limits: Limits{MaxKeys: benchKeys}}, nil)
	now := t0
	b.ReportAllocs()
	stop := benchutil.CPU(b)
	i := 0
	for b.Loop() {
		now += int64(time.Millisecond)
		for {
			if _, _, ok := th.Expired(now); !ok {
				break
			}
		}
		if _, _, err := th.Allow(now, keys[i%len(keys)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	stop()
}

func BenchmarkTopNAdd(b *testing.B) {
	keys := benchKeyset(benchKeys)
	top, _ := NewTopN(TopNConfig{Size: 100}, nil)
	b.ReportAllocs()
	stop := benchutil.CPU(b)
	i := 0
	for b.Loop() {
		// Zipf-like: key i%k for ever smaller k.
		k := keys[(i*7919)%(1+i%benchKeys)]
		if err := top.Add(k, 1); err != nil {
			b.Fatal(err)
		}
		i++
	}
	stop()
}

func BenchmarkTableSet(b *testing.B) {
	keys := benchKeyset(benchKeys)
	tb, _ := NewTable(TableConfig{Limits: Limits{MaxKeys: benchKeys / 10}}, nil)
	b.ReportAllocs()
	stop := benchutil.CPU(b)
	i := 0
	for b.Loop() {
		if err := tb.Set(keys[i%len(keys)], Value{Kind: KindNumber, Num: 1}); err != nil {
			b.Fatal(err)
		}
		i++
	}
	stop()
}
