package framing

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/ternlog/tern/pipeline"
)

// sizes records the size of each batch Emit hands on, checking that every
// record is still intact when it arrives.
type sizes struct {
	t    *testing.T
	got  []int
	next int
}

func (s *sizes) Emit(_ context.Context, recs []pipeline.Record, _ pipeline.AckFunc) error {
	for _, r := range recs {
		if want := fmt.Sprintf("line %06d", s.next); !strings.HasPrefix(string(r.Data), want) || len(r.Data) > len(want) && r.Data[len(want)] != '.' {
			s.t.Fatalf("record %q, want %q", r.Data, want)
		}
		s.next++
	}
	s.got = append(s.got, len(recs))
	return nil
}

// lines returns lines from..from+n-1, each padded with pad dots.
func lines(from, n, pad int) string {
	var b strings.Builder
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&b, "line %06d%s\n", i, strings.Repeat(".", pad))
	}
	return b.String()
}

// A full batch takes the rest of its read when that rest is small, instead
// of leaving it to follow as a batch of a few records; a large rest makes
// batches of its own, and no batch passes twice the cap.
func TestEmitJoinsASmallRest(t *testing.T) {
	type run struct{ lines, pad int }
	for _, tc := range []struct {
		name  string
		reads [][]run // each read: runs of lines, padded with dots
		want  []int
	}{
		{"small rest joins", [][]run{{{1048, 0}}}, []int{1048}},
		{"large rest stays apart", [][]run{{{1800, 0}}}, []int{1024, 776}},
		{"a rest of many short lines: twice the cap at most", [][]run{{{1024, 200}, {2000, 0}}}, []int{2048, 976}},
		{"one batch a read", [][]run{{{1024, 0}}, {{10, 0}}, {{1100, 0}}}, []int{1024, 10, 1100}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c chunks
			n := 0
			for _, read := range tc.reads {
				var b strings.Builder
				for _, r := range read {
					b.WriteString(lines(n, r.lines, r.pad))
					n += r.lines
				}
				c = append(c, b.String())
			}
			rd := NewLineReader(&c, 0)
			rd.grow(streamBuf) // one read per chunk
			out := &sizes{t: t}
			if err := Emit(context.Background(), rd, pipeline.Record{}, 1024, out, pipeline.Settings{}, nil); err == nil {
				t.Fatal("Emit returned nil at EOF")
			}
			if !slices.Equal(out.got, tc.want) || out.next != n {
				t.Errorf("batches %v (%d records), want %v (%d)", out.got, out.next, tc.want, n)
			}
		})
	}
}

type discard struct{}

func (discard) Emit(context.Context, []pipeline.Record, pipeline.AckFunc) error { return nil }

// BenchmarkEmitLines frames 250-byte lines from 256 KiB reads into batches.
func BenchmarkEmitLines(b *testing.B) {
	line := strings.Repeat("x", 249) + "\n"
	data := strings.Repeat(line, 4096)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		c := chunks{data}
		rd := NewLineReader(&c, 0)
		rd.grow(streamBuf)
		_ = Emit(context.Background(), rd, pipeline.Record{}, 1024, discard{}, pipeline.Settings{}, nil)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/4096, "ns/line")
}
