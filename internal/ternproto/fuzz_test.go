package ternproto

import (
	"bytes"
	"context"
	"io"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/framing"
)

// countEmitter acknowledges every batch at once and counts records.
type countEmitter struct{ n int }

func (e *countEmitter) Emit(_ context.Context, recs []pipeline.Record, ack pipeline.AckFunc) error {
	e.n += len(recs)
	ack(nil)
	return nil
}

// FuzzServe feeds any byte stream to the receiving side: it must never
// panic or hang, allocate in proportion to the input (within its frame
// cap), and every record it emits must lie within the input.
func FuzzServe(f *testing.F) {
	hello := AppendHello(nil, Hello{Version: Version, Name: "fuzz"})
	f.Add(append(append([]byte{}, hello...), batch(1, "a", "b")...))
	f.Add(batch(2, "x"))
	f.Add(append(batch(3), AppendError(nil, "bye")...))
	f.Add([]byte{0x1E, 'B', 0xFF, 0xFF, 0xFF, 0xFF})
	f.Add([]byte{0x1E, 'B', 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 1, 0x1E})
	f.Add(AppendHello(nil, Hello{Version: 2}))
	n := 0
	f.Fuzz(func(t *testing.T, data []byte) {
		server, client := net.Pipe()
		go func() {
			_, _ = client.Write(data)
			_ = client.Close()
		}()
		go func() { _, _ = io.Copy(io.Discard, client) }()
		em := &countEmitter{}
		var before, after runtime.MemStats
		n++
		measure := n%16 == 1
		if measure {
			runtime.ReadMemStats(&before)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = Serve(context.Background(), server, em, pipeline.Settings{}, ServeOptions{MaxFrame: 64 << 10, WriteTimeout: time.Second})
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return after the stream ended")
		}
		if measure {
			runtime.ReadMemStats(&after)
			// Buffers: a 64 KiB read buffer, a 4 KiB writer, the frame cap.
			if grown := after.TotalAlloc - before.TotalAlloc; grown > uint64(4*len(data)+256<<10) {
				t.Fatalf("%d bytes allocated for %d bytes", grown, len(data))
			}
		}
		if em.n > len(data) {
			t.Fatalf("%d records from %d bytes", em.n, len(data))
		}
	})
}

// FuzzParseBatch: any payload parses without panic, the records it yields
// are slices of the payload that add up to at most its length, and only
// the last may be marked bad.
func FuzzParseBatch(f *testing.F) {
	f.Add(batch(1, "a", "bb")[framing.FrameHeaderLen:])
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 1, 0x1E, 'M', 0, 0, 0, 9})
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, p []byte) {
		total, bads, last := 0, 0, false
		_, err := ParseBatch(p, func(msg []byte, bad bool) {
			if last {
				t.Fatal("record after a bad one")
			}
			if bad {
				bads++
				last = true
			}
			if len(msg) > 0 && !bytes.Contains(p, msg) {
				t.Fatal("record is not part of the payload")
			}
			total += len(msg)
		})
		if err != nil && len(p) >= batchHdrLen {
			t.Fatalf("error on a payload with a header: %v", err)
		}
		if total > len(p) {
			t.Fatalf("%d record bytes from %d", total, len(p))
		}
	})
}

func BenchmarkServe(b *testing.B) {
	var w BatchWriter
	w.Begin(nil, 1)
	for range 1024 {
		w.Add(msg(string(bytes.Repeat([]byte("x"), 260))))
	}
	frame := w.Finish()
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	server, client := net.Pipe()
	em := &countEmitter{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = Serve(context.Background(), server, em, pipeline.Settings{}, ServeOptions{})
	}()
	go func() { _, _ = io.Copy(io.Discard, client) }()
	for b.Loop() {
		if _, err := client.Write(frame); err != nil {
			b.Fatal(err)
		}
	}
	client.Close()
	<-done
	b.ReportMetric(float64(em.n)/b.Elapsed().Seconds(), "msgs/s")
}
