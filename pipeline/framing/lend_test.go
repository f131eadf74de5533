package framing

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"unsafe"

	"github.com/ternlog/tern/pipeline"
)

// keeper is an Emitter that takes lent buffers: it keeps the records of a
// lent batch as they are (views into the buffer), and copies the others,
// which the reader overwrites.
type keeper struct {
	t        *testing.T
	got      [][]byte
	lent     int
	lentRecs int
}

func (k *keeper) Emit(_ context.Context, recs []pipeline.Record, _ pipeline.AckFunc) error {
	for _, r := range recs {
		k.got = append(k.got, []byte(string(r.Data)))
	}
	return nil
}

func (k *keeper) EmitBuffer(_ context.Context, recs []pipeline.Record, _ pipeline.AckFunc, rb *pipeline.ReadBuffer) error {
	lo := uintptr(unsafe.Pointer(&rb.B[0]))
	size := 0
	for _, r := range recs {
		if p := uintptr(unsafe.Pointer(unsafe.SliceData(r.Data))); len(r.Data) > 0 && (p < lo || p+uintptr(len(r.Data)) > lo+uintptr(len(rb.B))) {
			k.t.Fatalf("a record of a lent batch lies outside the lent buffer")
		}
		k.got = append(k.got, r.Data)
		size += len(r.Data)
	}
	if 2*size < len(rb.B) {
		k.t.Fatalf("lent a buffer of %d bytes with a batch of %d", len(rb.B), size)
	}
	k.lent++
	k.lentRecs += len(recs)
	return nil
}

// A reader lends its buffer with a batch that fills most of it and never
// writes to it again: records kept from lent batches, uncopied, still read
// as sent once the whole stream has gone through the reader. Lines vary in
// length, so batches end anywhere in a read and the rest moves to the
// fresh buffer.
func TestEmitLendsFullBuffers(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const n = 20000
	want := make([]string, n)
	for i := range want {
		want[i] = fmt.Sprintf("<13>1 line %06d %s", i, strings.Repeat("x", r.IntN(400)))
	}
	var nl, octet strings.Builder
	for _, w := range want {
		nl.WriteString(w + "\n")
		fmt.Fprintf(&octet, "%d %s", len(w), w)
	}
	for _, tc := range []struct {
		name string
		rd   func() Reader
	}{
		{"lines", func() Reader { return NewLineReader(strings.NewReader(nl.String()), 0) }},
		{"syslog non-transparent", func() Reader {
			return NewSyslogReader(strings.NewReader(nl.String()), 0, FramingAuto)
		}},
		{"syslog octet counting", func() Reader {
			return NewSyslogReader(strings.NewReader(octet.String()), 0, FramingAuto)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := &keeper{t: t}
			if err := Emit(context.Background(), tc.rd(), pipeline.Record{}, 1024, k, pipeline.Settings{}, nil); err == nil {
				t.Fatal("Emit returned nil at EOF")
			}
			if len(k.got) != n {
				t.Fatalf("%d records, want %d", len(k.got), n)
			}
			for i, g := range k.got {
				if string(g) != want[i] {
					t.Fatalf("record %d reads %.40q…, want %.40q…", i, g, want[i])
				}
			}
			// ~20 KB of lines fill a 256 KiB buffer about once every
			// 1,250 records: most batches take it.
			if k.lent < 10 || k.lentRecs < n/2 {
				t.Errorf("%d batches of %d records were lent their buffer; want most of %d records", k.lent, k.lentRecs, n)
			}
		})
	}
}

// A batch that holds little of the buffer does not take it: a quiet
// stream's lines would otherwise each keep 256 KiB alive.
func TestLendKeepsTheBufferForSmallBatches(t *testing.T) {
	l := NewLineReader(strings.NewReader(strings.Repeat("short line\n", 100000)), 0)
	for range 30000 { // past the growth to a ReadBuffer
		if _, err := l.Next(); err != nil {
			t.Fatal(err)
		}
	}
	if l.rb == nil {
		t.Fatal("a busy stream reads into a ReadBuffer")
	}
	if rb := l.Lend(100); rb != nil {
		t.Error("lent 256 KiB with a batch of 100 bytes")
	}
	s := NewSyslogReader(strings.NewReader(strings.Repeat("short line\n", 100000)), 0, FramingAuto)
	for range 30000 {
		if _, err := s.Next(); err != nil {
			t.Fatal(err)
		}
	}
	if len(s.buf) != streamBuf || s.rb == nil {
		t.Fatalf("a busy syslog stream grows its buffer to a ReadBuffer: %d bytes", len(s.buf))
	}
	if rb := s.Lend(100); rb != nil {
		t.Error("lent 256 KiB with a batch of 100 bytes")
	}
}
