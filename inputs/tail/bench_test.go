package tail

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

// countSink acknowledges at once and only counts: the cost measured is the
// input's (read, split, track positions), not a recorder's copies.
type countSink struct{ n int }

func (c *countSink) Emit(_ context.Context, recs []pipeline.Record, ack pipeline.AckFunc) error {
	c.n += len(recs)
	if ack != nil {
		ack(nil)
	}
	return nil
}

// BenchmarkReplay reads a 100,000-line file (~110 bytes a line) to its end
// with exit_after_eof, checkpoint included.
func BenchmarkReplay(b *testing.B) {
	dir := b.TempDir()
	p := filepath.Join(dir, "a.log")
	var sb strings.Builder
	const lines = 100000
	for i := range lines {
		fmt.Fprintf(&sb, "seq=%09d %s\n", i, strings.Repeat("x", 95))
	}
	if err := os.WriteFile(p, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Paths = []string{p}
	cfg.ExitAfterEOF = true
	b.ReportAllocs()
	b.SetBytes(int64(sb.Len()))
	start := time.Now()
	for b.Loop() {
		set := pipelinetest.Settings(b, "inputs.tail")
		set.DataDir = b.TempDir()
		in, _ := New(set, cfg)
		s := &countSink{}
		if err := in.Run(context.Background(), s); err != pipeline.ErrEndOfInput || s.n != lines {
			b.Fatalf("Run = %v after %d lines", err, s.n)
		}
	}
	b.ReportMetric(float64(b.N*lines)/time.Since(start).Seconds(), "lines/s")
}
