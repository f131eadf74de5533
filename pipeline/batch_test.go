package pipeline

import (
	"fmt"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func fillBatch(b *Batch, n int) {
	for i := range n {
		m := b.Add()
		m.Payload = b.Str(fmt.Appendf(nil, "record %d with some text in it", i))
		m.AddString("k", b.Str([]byte("value")))
	}
}

// A reset batch gives its memory back: decoding into a batch after a Reset
// allocates next to nothing, where a fresh batch allocates its slabs and
// chunks. (Not zero: the race detector makes sync.Pool drop some.)
func TestBatchResetReusesMemory(t *testing.T) {
	b := NewBatch()
	fillBatch(b, 300)
	b.Reset()
	require.Zero(t, b.Len())
	buf := []byte(strings.Repeat("a line of input bytes ", 5)) // 110 bytes
	fill := func(b *Batch) {
		b.Reserve(300, 300*len(buf)) // as the engine does
		for i := range 300 {
			m := b.Add()
			m.Payload = b.Str(buf)
			// Widths vary as W3's do (structured data on some lines
			// only): a message wider than the one before must not
			// outgrow its slab's end into memory of its own.
			keys := [...]string{"app", "procid", "msgid", "facility", "sd.a.b", "sd.a.c", "sd.a.d"}
			for _, k := range keys[:3+i*7%5] {
				m.AddString(k, b.Str(buf[:5]))
			}
		}
	}
	fresh := testing.AllocsPerRun(10, func() { fill(NewBatch()) })
	reused := testing.AllocsPerRun(10, func() {
		fill(b)
		b.Reset()
	})
	t.Logf("allocations per 300 messages: %.1f fresh, %.1f reused", fresh, reused)
	// In steady state a reused batch allocates nothing: its first message
	// starts from the field count of the last use's last one, and the
	// tails of its slabs come from the pools too (a batch that already
	// holds a full slab at most doubles by taking another).
	// Under -race sync.Pool drops a share of what is put back, by design.
	if poisonReused {
		assert.Less(t, reused, fresh/2)
	} else {
		assert.Zero(t, reused)
	}
	assert.Greater(t, fresh, 10.0)
}

// A message wider than the one before it, arriving when its slab has room
// for the narrower one only, gets a new pooled slab instead of outgrowing
// the slab's end into memory of its own.
func TestAWiderMessageDoesNotOutgrowItsSlab(t *testing.T) {
	b := NewBatch()
	fill := func() {
		b.Reset()
		b.Reserve(1024, 1<<20)         // pooled slabs of fieldSlabLen
		for range fieldSlabLen/4 - 1 { // leaves 4 fields of the first slab
			m := b.Add()
			for range 4 {
				m.AddInt("n", 1)
			}
		}
		m := b.Add()
		for range 7 {
			m.AddInt("n", 1)
		}
	}
	fill()
	require.Len(t, b.Msgs[len(b.Msgs)-1].Fields, 7)
	if poisonReused {
		t.Skip("sync.Pool drops items under -race")
	}
	assert.Zero(t, testing.AllocsPerRun(10, fill))
}

// Messages of a reset batch start as new ones do: nothing of what the last
// use left shows through.
func TestBatchResetClearsMessages(t *testing.T) {
	b := NewBatch()
	for range 100 {
		m := b.Add()
		m.Type, m.Hostname, m.Pid, m.Severity = "t", "h", 7, SeverityError
		m.AddString("a", "1")
		m.AddString("b", "2")
	}
	b.Reset()
	for range 200 {
		m := b.Add()
		assert.Equal(t, Message{Severity: DefaultSeverity, Fields: m.Fields}, *m)
		assert.Empty(t, m.Fields)
	}
}

// In the race-enabled runs (CI's), Reset overwrites the chunks it gives
// back, so a plugin that kept a view into a batch past its
// acknowledgement reads garbage and fails its test.
func TestResetPoisonsViewsUnderRace(t *testing.T) {
	if !poisonReused {
		t.Skip("poisoning is on in -race builds only")
	}
	b := NewBatch()
	b.Reserve(msgSlabLen, arenaChunk) // full size: pooled
	s := b.Str([]byte("kept past the ack"))
	for range msgSlabLen { // a full, pooled slab
		b.Add().Type = "kept"
	}
	m := b.Msgs[0]
	rb := NewReadBuffer()
	copy(rb.B, "lent bytes")
	b.Lend(rb)
	v := b.Str(rb.B[:10])
	b.Retire()
	assert.NotEqual(t, "kept past the ack", s)
	assert.Empty(t, m.Type, "a message of a retired batch reads empty")
	assert.NotEqual(t, "lent bytes", v, "a view into the lent buffer reads garbage")
}

// inside reports whether s's bytes lie in b.
func inside(s string, b []byte) bool {
	p, lo := uintptr(unsafe.Pointer(unsafe.StringData(s))), uintptr(unsafe.Pointer(&b[0]))
	return p >= lo && p+uintptr(len(s)) <= lo+uintptr(len(b))
}

// A batch lent the read buffer its records lie in returns views into it,
// not copies; bytes anywhere else (a decoder's scratch, the bytes just past
// the buffer) are copied, and a reset batch gives the buffer back.
func TestStrViewsTheLentBuffer(t *testing.T) {
	under := make([]byte, 2*ReadBufferSize)
	rb := &ReadBuffer{B: under[:ReadBufferSize]} // bytes follow it: p may run past its end
	copy(rb.B, "<13>1 host app - - - hello")
	copy(under[ReadBufferSize-4:], "tail-and-beyond")

	b := NewBatch()
	b.Lend(rb)
	in := b.Str(rb.B[6:10])
	assert.Equal(t, "host", in)
	assert.True(t, inside(in, rb.B), "a string of the lent buffer is a view into it")
	last := b.Str(rb.B[ReadBufferSize-4:])
	assert.Equal(t, "tail", last)
	assert.True(t, inside(last, rb.B), "the buffer's last bytes are in it")

	straddle := b.Str(under[ReadBufferSize-4 : ReadBufferSize+3])
	assert.Equal(t, "tail-an", straddle)
	assert.False(t, inside(straddle, under), "bytes running past the buffer are copied")
	scratch := []byte("unescaped")
	s := b.Str(scratch)
	scratch[0] = 'X'
	assert.Equal(t, "unescaped", s, "bytes outside the buffer are copied")
	before := b.Str(under[ReadBufferSize+4 : ReadBufferSize+8])
	assert.False(t, inside(before, under))

	b.Reset()
	again := b.Str(rb.B[6:10])
	assert.False(t, inside(again, rb.B), "a reset batch holds no lent buffer")
}

// What must outlive a batch is copied whatever its length: a long string
// may be a view into a lent buffer as much as a short one into a chunk.
func TestRetainCopiesEveryLength(t *testing.T) {
	rb := NewReadBuffer()
	for i := range rb.B {
		rb.B[i] = 'a' + byte(i%26)
	}
	b := NewBatch()
	b.Lend(rb)
	for _, n := range []int{1, 100, arenaMaxPiece + 1, 100 << 10} {
		v := b.Str(rb.B[:n])
		require.True(t, inside(v, rb.B))
		r := Retain(v)
		assert.Equal(t, v, r)
		assert.False(t, inside(r, rb.B), "Retain of %d bytes copies", n)
	}
	assert.Empty(t, Retain(""))
}

// A lent batch whose messages count under half the buffer (a decoder that
// keeps a few bytes of long records) copies its views out and lets the
// buffer go: queues count Message.Size, and must not hold 256 KiB for it.
// One that counts more keeps its views.
func TestFitLent(t *testing.T) {
	fill := func() (*Batch, *ReadBuffer) {
		rb := NewReadBuffer()
		copy(rb.B, "type logger payload env host name value repr more")
		b := NewBatch()
		b.Lend(rb)
		v := func(i, j int) string { return b.Str(rb.B[i:j]) }
		m := b.Add()
		m.Type, m.Logger, m.Payload, m.EnvVersion, m.Hostname = v(0, 4), v(5, 11), v(12, 19), v(20, 23), v(24, 28)
		f := NewField(v(29, 33), TypeString, "", StringValue(v(34, 39)))
		f.SetRepresentation(v(40, 44))
		f.Append(StringValue(v(45, 49)))
		m.AddField(f)
		m.AddInt(v(29, 33), 7)
		return b, rb
	}
	strs := func(m *Message) []string {
		f := &m.Fields[0]
		return []string{m.Type, m.Logger, m.Payload, m.EnvVersion, m.Hostname, f.Name, f.Value(0).Str(), f.Representation(), f.Value(1).Str(), m.Fields[1].Name}
	}
	want := []string{"type", "logger", "payload", "env", "host", "name", "value", "repr", "more", "name"}

	b, rb := fill()
	b.FitLent(ReadBufferSize / 2)
	for _, s := range strs(b.Msgs[0]) {
		assert.True(t, inside(s, rb.B), "a batch that counts half its buffer keeps its views")
	}

	b, rb = fill()
	b.FitLent(b.Msgs[0].Size())
	got := strs(b.Msgs[0])
	assert.Equal(t, want, got)
	for _, s := range got {
		assert.False(t, inside(s, rb.B), "%q still points into the buffer", s)
	}
	assert.Equal(t, int64(7), b.Msgs[0].Fields[1].Value(0).Int())
	again := b.Str(rb.B[0:4])
	assert.False(t, inside(again, rb.B), "the buffer is no longer the batch's")
}
