package pipeline

import (
	"fmt"
	"runtime"
	"testing"
)

// fill adds n messages to b the way a decoder does: short strings through
// Str, a few fields.
func fill(b *Batch, recs [][]byte) {
	for _, r := range recs {
		m := b.Add()
		m.Type = b.Str(r[:4])
		m.Hostname = b.Str(r[4:9])
		m.Payload = b.Str(r[9:])
		m.AddString("user", b.Str(r[33:37]))
		m.AddString("src", b.Str(r[43:51]))
		m.AddInt("port", 22)
	}
}

func records(n int) [][]byte {
	recs := make([][]byte, n)
	for i := range recs {
		recs[i] = fmt.Appendf(nil, "authhost%dFailed password for root from 10.0.0.%d port 22 ssh2", i%8, i%256)
	}
	return recs
}

// A batch allocates about what its messages use, however few they are: a
// queue that keeps a small batch's messages keeps the batch's chunks and
// slabs, and counts only Message.Size. Slabs and chunks sized for a full
// batch made one message hold over 40 KiB.
func TestBatchHoldsAboutWhatItsMessagesUse(t *testing.T) {
	for _, n := range []int{1, 2, 4, 16, 100, 1000} {
		recs := records(n)
		k := 2000 / n // batches, so that noise is small beside what they hold
		for _, reserve := range []bool{false, true} {
			batches := make([][]*Message, k) // what a queue keeps
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			for i := range batches {
				b := NewBatch()
				if reserve {
					b.Reserve(n, n*len(recs[0]))
				}
				fill(b, recs)
				batches[i] = b.Msgs
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			size := 0
			for _, msgs := range batches {
				for _, m := range msgs {
					size += m.Size()
				}
			}
			held := int(after.HeapAlloc) - int(before.HeapAlloc)
			t.Logf("%d batches of %4d messages, reserved %-5v: %7d bytes held, Size sums to %7d (%.2f)", k, n, reserve, held, size, float64(held)/float64(size))
			if held > 2*size {
				t.Errorf("batches of %d messages (reserved %v) hold %d bytes for messages whose Size sums to %d", n, reserve, held, size)
			}
			runtime.KeepAlive(batches)
		}
	}
}

// Reserve sizes the first allocations: one message slab and one chunk for
// a batch whose records fit.
func TestReserve(t *testing.T) {
	b := NewBatch()
	b.Reserve(10, 800)
	fill(b, records(10))
	if b.lastMsgs != 10 {
		t.Errorf("message slab of %d for 10 records", b.lastMsgs)
	}
	if cap(b.chunk) != 1000 {
		t.Errorf("chunk of %d bytes for 800 bytes of records, want 1000", cap(b.chunk))
	}
	b = NewBatch()
	b.Reserve(1000, 1<<20)
	fill(b, records(1))
	if b.lastMsgs != msgSlabLen || cap(b.chunk) != arenaChunk {
		t.Errorf("a large batch starts with a slab of %d and a chunk of %d, want %d and %d", b.lastMsgs, cap(b.chunk), msgSlabLen, arenaChunk)
	}
}

// BenchmarkBatch is decoding's share of the allocation work: n messages
// added to a new batch sized by Reserve, as the engine does per Emit.
//
//	go test -run '^$' -bench Batch -benchmem ./pipeline
func BenchmarkBatch(b *testing.B) {
	for _, n := range []int{1, 16, 256} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			strs := make([][]byte, n)
			for i := range strs {
				strs[i] = fmt.Appendf(nil, "Failed password for root from 10.0.0.%d port 22 ssh2", i%256)
			}
			b.ReportAllocs()
			for range b.N {
				bt := NewBatch()
				bt.Reserve(n, 80*n)
				for i := range n {
					m := bt.Add()
					m.Type = bt.Str(strs[i][:4])
					m.Payload = bt.Str(strs[i])
					m.AddString("user", bt.Str(strs[i][20:24]))
					m.AddString("src", bt.Str(strs[i][30:38]))
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/msg")
		})
	}
}

// One message with many fields does not make the messages after it take
// as many: fields are packed as they are used, so a batch of one wide
// message among a thousand narrow ones holds about the fields it has
// (without packing, every message after the wide one reserved 64 slots:
// 125 slabs instead of 3).
func TestOneWideMessageDoesNotWidenTheRest(t *testing.T) {
	for _, at := range []int{0, 500, 999} { // the wide message first, amid, last
		b := NewBatch()
		b.Reserve(1000, 100_000)
		for i := range 1000 {
			m := b.Add()
			n := 1
			if i == at {
				n = 64
			}
			for j := range n {
				m.AddInt("f", int64(j))
			}
		}
		if n := len(b.fieldSlabs); n > 3 {
			t.Errorf("wide message at %d: the batch took %d field slabs of %d", at, n, fieldSlabLen)
		}
		// The next use too: it starts from the last message's width.
		b.Reset()
		b.Reserve(1000, 100_000)
		for range 1000 {
			b.Add().AddInt("f", 1)
		}
		if n := len(b.fieldSlabs); n > 3 {
			t.Errorf("wide message at %d: 1,000 one-field messages took %d field slabs of %d", at, n, fieldSlabLen)
		}
		for i, m := range b.Msgs {
			if len(m.Fields) != 1 || m.Fields[0].Value(0).Int() != 1 {
				t.Fatalf("message %d: %d fields", i, len(m.Fields))
			}
		}
	}
}

// A message filled after the next one was added keeps its fields and
// leaves the next one's alone: its appends go to memory of their own.
func TestFillingAnEarlierMessageKeepsTheNext(t *testing.T) {
	b := NewBatch()
	a := b.Add()
	a.AddString("a1", "x")
	c := b.Add()
	c.AddString("c1", "y")
	a.AddString("a2", "z") // after c was added
	c.AddString("c2", "w")
	if len(a.Fields) != 2 || a.Fields[0].Name != "a1" || a.Fields[1].Name != "a2" {
		t.Errorf("a: %v", names(a))
	}
	if len(c.Fields) != 2 || c.Fields[0].Name != "c1" || c.Fields[1].Name != "c2" {
		t.Errorf("c: %v", names(c))
	}
}

func names(m *Message) []string {
	var out []string
	for i := range m.Fields {
		out = append(out, m.Fields[i].Name)
	}
	return out
}

// The engine's transformer chain truncates the batch and appends the
// decoder's messages back before a transformer adds fields to them: the
// last one's fields still belong to it when the next message is added.
func TestTruncatedAndAppendedBackKeepsItsFields(t *testing.T) {
	b := NewBatch()
	b.Reserve(10, 1000) // a slab with room for both messages
	m := b.Add()
	m.AddString("a", "1")
	b.Truncate(0)
	b.Msgs = append(b.Msgs, m)
	m.AddString("b", "2") // a transformer
	n := b.Add()
	n.AddString("c", "3")
	n.AddString("d", "4")
	if got := names(m); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("first message's fields: %v", got)
	}
	if got := names(n); len(got) != 2 || got[0] != "c" || got[1] != "d" {
		t.Errorf("second message's fields: %v", got)
	}
}
