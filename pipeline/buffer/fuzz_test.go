package buffer

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/ternlog/tern/internal/testutil/faultfs"
	"github.com/ternlog/tern/pipeline"
)

// segmentSeeds are real segments: records, a torn one, a flipped one.
func segmentSeeds() [][]byte {
	seg := appendSegHeader(nil, SegmentHeader{ID: 1, FirstSeq: 1})
	for i := range 5 {
		start := len(seg)
		seg = encode(seg, []*pipeline.Message{msg(i, 40)})
		sealRecord(seg[start:], uint64(i+1))
	}
	torn := bytes.Clone(seg[:len(seg)-7])
	flipped := bytes.Clone(seg)
	flipped[SegmentHeaderSize+30] ^= 0xff
	return [][]byte{seg, torn, flipped, seg[:SegmentHeaderSize]}
}

// FuzzSegmentReader: any bytes as a segment file (what tern cat and
// recovery read): no panic, and allocation in proportion to the input.
func FuzzSegmentReader(f *testing.F) {
	for _, s := range segmentSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		read := func() int {
			r, err := NewSegmentReader(bytes.NewReader(data), int64(len(data)), false)
			if err != nil {
				return 0
			}
			n := 0
			for {
				rec, err := r.Next()
				if err != nil {
					if !errors.Is(err, io.EOF) {
						t.Fatalf("reading bytes in memory failed: %v", err)
					}
					return n
				}
				if rec.Seq == 0 || rec.Offset < SegmentHeaderSize || rec.Offset+RecordHeaderSize+int64(len(rec.Payload)) > int64(len(data)) {
					t.Fatalf("impossible record %+v", rec)
				}
				n++
			}
		}
		if len(data) > 0 && data[len(data)-1]%16 == 0 {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			read()
			runtime.ReadMemStats(&after)
			if n := after.TotalAlloc - before.TotalAlloc; n > 4*uint64(len(data))+64<<10 {
				t.Fatalf("%d bytes allocated for %d bytes of input", n, len(data))
			}
		}
		read()
	})
}

// FuzzRecover: any bytes as the newest segment and as the ledger of a
// buffer directory. Open never fails, draining terminates, and the buffer
// takes new records afterwards (G7: never a crash loop).
func FuzzRecover(f *testing.F) {
	for _, s := range segmentSeeds() {
		f.Add(s, encodeSlot(1, Cursor{Segment: 1, Offset: SegmentHeaderSize, Seq: 1}))
		f.Add(s, []byte("garbage"))
	}
	f.Fuzz(func(t *testing.T, seg, led []byte) {
		fs := faultfs.New()
		if err := fs.MkdirAll("/b", 0o750); err != nil {
			t.Fatal(err)
		}
		for name, data := range map[string][]byte{"/b/" + SegmentName(1): seg, "/b/" + ledgerName: led} {
			w, err := fs.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o640)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = w.Write(data)
			w.Close()
		}
		opt := testOptions(fs)
		b, err := New("/b", opt, pipeline.Settings{Telemetry: pipeline.NopTelemetry{}})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Open(); err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer b.Close()
		for range 1000 {
			l, err := b.Next(context.Background(), 100, 1<<20, 0, time.Millisecond)
			if err != nil {
				t.Fatal(err)
			}
			if l == nil {
				break
			}
			l.Commit()
		}
		o := newOwner()
		if err := b.Push(context.Background(), entry(o, 7)); err != nil {
			t.Fatal(err)
		}
		if !o.wait(t, 5*time.Second) {
			t.Fatal("not acknowledged")
		}
		l, err := b.Next(context.Background(), 100, 1<<20, 0, time.Second)
		if err != nil || l == nil || len(l.Msgs()) != 1 {
			t.Fatalf("the new record did not come out: %v %v", l, err)
		}
	})
}
