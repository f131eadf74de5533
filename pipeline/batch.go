package pipeline

import (
	"strings"
	"sync"
	"unsafe"
)

// Batch collects the messages decoded from one batch of records. Decoders add
// messages with Add and keep bytes with Str; both draw on memory shared by
// the whole batch, so a decoder allocates little per record. When the input
// lent the batch the read buffer its records lie in (Lend), Str copies
// nothing of them: its strings are views into the bytes as read.
//
// Slabs and chunks start small and double up to their full size, so a
// batch holds at most about twice what its messages use: a queue that keeps
// the messages of a small batch (one UDP datagram, a quiet connection)
// keeps about what Message.Size counts, not a batch-sized slab each.
// Reserve skips the doubling when the batch's size is known.
//
// Full-size slabs and chunks come from pools shared by all batches and go
// back on Reset, which the engine calls once every destination of a batch
// is done with it: in steady state decoding allocates next to nothing. A
// slab or chunk that would be at least half the full size is taken full
// size, and so is every one after a batch's first full one (which it at
// most doubles), so a large batch draws only on the pools and the bound of
// twice what the messages use holds.
//
// A Batch is used by one goroutine at a time.
type Batch struct {
	Msgs []*Message

	msgSlab   []Message
	fieldSlab []Field
	fieldHint int      // fields of the message closed last: the room the next one wants
	open      *Message // the message added last, whose fields end the used part of fieldSlab
	chunk     []byte

	expect    int // messages expected in all (Reserve); 0 when unknown
	strHint   int // size of the first chunk (Reserve); 0 when unknown
	lastMsgs  int // length of the last message slab
	lastField int // length of the last field slab

	// Full-size slabs and chunks taken from the pools since the last
	// Reset, which gives them back. Smaller ones are left to the GC.
	msgSlabs    []*[msgSlabLen]Message
	fieldSlabs  []*[fieldSlabLen]Field
	fieldUsed   []int // fields handed out of each of fieldSlabs
	fieldPooled bool  // fieldSlab is the tail of fieldSlabs' last
	chunks      []*[arenaChunk]byte

	// The read buffer the batch's records lie in, when their input lent
	// it (Lend): Str returns views into it instead of copies.
	lent     *ReadBuffer
	lentBase uintptr // address of lent.B[0]
}

const (
	msgSlabLen    = 64
	fieldSlabLen  = 512
	maxFieldHint  = 64
	minFieldRoom  = 16 // fields a pooled slab must have left for the next message
	arenaChunk    = 32 << 10
	arenaMinChunk = 256
	arenaMaxPiece = 2 << 10
)

// The pools batches draw full-size memory from. Memory comes back only
// through Reset, once the last reader of a batch is done with it.
var (
	msgSlabPool   = sync.Pool{New: func() any { return new([msgSlabLen]Message) }}
	fieldSlabPool = sync.Pool{New: func() any { return new([fieldSlabLen]Field) }}
	chunkPool     = sync.Pool{New: func() any { return new([arenaChunk]byte) }}
)

// NewBatch returns an empty batch.
func NewBatch() *Batch { return &Batch{} }

// Reserve sizes the batch's first allocations for decoding records records
// of bytes bytes in all (the engine calls it with what an input emits), so
// a batch of any size allocates about what it will use, in one step.
func (b *Batch) Reserve(records, bytes int) {
	b.expect = len(b.Msgs) + records
	// A quarter more for what decoders add (overlapping pieces, constants,
	// transformers); past half a chunk, a whole one, as large batches get.
	b.strHint = bytes + bytes/4
	if b.strHint >= arenaChunk/2 {
		b.strHint = arenaChunk
	}
}

// Add appends a new message with default severity and returns it. The message
// may be filled until the decoder returns.
func (b *Batch) Add() *Message {
	b.closeFields()
	if len(b.msgSlab) == 0 {
		b.msgSlab = b.newMsgSlab(b.msgSlabSize())
	}
	m := &b.msgSlab[0]
	b.msgSlab = b.msgSlab[1:]
	m.Severity = DefaultSeverity
	// The message's fields go on at the start of the rest of the slab,
	// which is passed on to the next message at its end (closeFields):
	// fields are packed as they are used, so one wide message does not
	// make the messages after it reserve as much.
	if h := max(b.fieldHint, 1); len(b.fieldSlab) < h || b.fieldPooled && len(b.fieldSlab) < minFieldRoom {
		// The last few fields of a pooled slab are skipped: a message
		// wider than the one before would outgrow them into memory of
		// its own, an allocation per slab or so.
		b.fieldSlab = b.newFieldSlab(b.fieldSlabSize(h))
	}
	m.Fields = b.fieldSlab[:0]
	b.open = m
	b.Msgs = append(b.Msgs, m)
	return m
}

// closeFields ends the fields of the message added last: the slab moves on
// past them, and their capacity ends there, so that a field appended to
// that message later goes to memory of its own rather than over the next
// message's. Its field count is the room the next message asks for.
func (b *Batch) closeFields() {
	m := b.open
	if m == nil {
		return
	}
	b.open = nil
	k := len(m.Fields)
	b.fieldHint = min(k, maxFieldHint)
	if k > 0 && len(b.fieldSlab) >= k && &m.Fields[0] == &b.fieldSlab[0] { // still in the slab
		m.Fields = m.Fields[:k:k]
		b.fieldSlab = b.fieldSlab[k:]
	}
}

// Truncate drops the messages after the first n (used to discard the partial
// output of a decoder that failed).
func (b *Batch) Truncate(n int) {
	// The message added last stays open even when dropped here: the
	// engine's transformer chain truncates and appends messages back, and
	// their fields must not be handed to the next message. Closing a
	// message that is gone only skips its fields in the slab.
	for i := n; i < len(b.Msgs); i++ {
		b.Msgs[i] = nil
	}
	b.Msgs = b.Msgs[:n]
}

// Len is the number of messages.
func (b *Batch) Len() int { return len(b.Msgs) }

// Str returns p as an immutable string, valid until Reset. When p lies in
// the read buffer lent to the batch (Lend), the string is a view into it
// and nothing is copied. Otherwise small strings are copied into a chunk
// shared by the batch, so decoding a record costs no allocation per string.
func (b *Batch) Str(p []byte) string {
	if len(p) == 0 {
		return ""
	}
	if b.lent != nil {
		// The address is only compared: p does not escape, so decoders
		// may pass scratch memory on their stack.
		off := uintptr(unsafe.Pointer(unsafe.SliceData(p))) - b.lentBase
		if n := uintptr(len(b.lent.B)); off < n && uintptr(len(p)) <= n-off {
			return unsafe.String(&b.lent.B[off], len(p))
		}
	}
	return b.copyStr(p)
}

// copyStr is Str by copy: into a chunk, or an allocation of its own for
// long strings.
func (b *Batch) copyStr(p []byte) string {
	if len(p) > arenaMaxPiece {
		return string(p)
	}
	if cap(b.chunk)-len(b.chunk) < len(p) {
		b.chunk = b.newChunk(b.chunkSize(len(p)))
	}
	start := len(b.chunk)
	b.chunk = append(b.chunk, p...)
	// The chunk is append-only and never rewritten, so the bytes behind
	// the string never change.
	return unsafe.String(&b.chunk[start], len(p))
}

// Retain returns a copy of s in memory of its own. Whatever outlives the
// batch a message came in (a filter's per-key state, a Lua table) must
// hold retained strings: a decoder's strings are views into memory the
// batch shares (a 32 KiB chunk, a 256 KiB read buffer), which a view
// would keep alive unseen by memory accounting, and which is reused once
// the batch is done.
func Retain(s string) string {
	if len(s) == 0 {
		return ""
	}
	return strings.Clone(s)
}

// ReadBufferSize is the size of the read buffers inputs lend to batches:
// large enough that one read syscall of a busy stream carries about a
// thousand typical lines.
const ReadBufferSize = 256 << 10

// ReadBuffer is a stream input's read buffer. A busy input lends the one
// holding a batch's records to the batch (BufferEmitter), so decoders' strings
// are views into the bytes as read, not copies, and takes a fresh one.
type ReadBuffer struct{ B []byte }

var readBufPool = sync.Pool{New: func() any { return &ReadBuffer{B: make([]byte, ReadBufferSize)} }}

// NewReadBuffer returns a buffer of ReadBufferSize bytes, reused from
// the batches that were lent one when it can be.
func NewReadBuffer() *ReadBuffer { return readBufPool.Get().(*ReadBuffer) }

// Lend gives rb to the batch: the records decoded into it lie in rb.B,
// which nobody writes again. Str returns views into it, and Reset
// gives it back for reuse. A batch holds one lent buffer; lending
// another replaces the first (kept alive by its views, then left to the
// GC).
func (b *Batch) Lend(rb *ReadBuffer) {
	if len(rb.B) == 0 {
		return
	}
	b.lent, b.lentBase = rb, uintptr(unsafe.Pointer(&rb.B[0]))
}

// FitLent keeps the lent buffer only when the messages are worth it:
// counted is what they count (the sum of their Message.Size), and when
// that is under half the buffer (a decoder that keeps a few fields of
// long records, a transformer that drops most messages), FitLent copies
// the strings that are views into it and lets it go. Queues count
// Message.Size: a batch kept for a few small messages must not hold
// 256 KiB they do not count. The buffer is left to the GC, not the pool:
// a copy of a view made meanwhile (a tap's) may still read it.
func (b *Batch) FitLent(counted int) {
	if b.lent == nil || 2*counted >= len(b.lent.B) {
		return
	}
	own := func(s string) string {
		p := unsafe.Pointer(unsafe.StringData(s))
		if off := uintptr(p) - b.lentBase; len(s) > 0 && off < uintptr(len(b.lent.B)) {
			return b.copyStr(unsafe.Slice((*byte)(p), len(s)))
		}
		return s
	}
	for _, m := range b.Msgs {
		m.Type, m.Logger, m.Payload = own(m.Type), own(m.Logger), own(m.Payload)
		m.EnvVersion, m.Hostname = own(m.EnvVersion), own(m.Hostname)
		for i := range m.Fields {
			f := &m.Fields[i]
			f.Name, f.v0.s = own(f.Name), own(f.v0.s)
			if x := f.x; x != nil && !isCommon(x) {
				x.repr = own(x.repr)
				for j := 0; j < int(f.n)-1; j++ {
					x.more[j].s = own(x.more[j].s)
				}
			}
		}
	}
	b.lent, b.lentBase = nil, 0
}

// StrConcat is Str of a and b joined, without an intermediate copy.
func (b *Batch) StrConcat(x, y []byte) string {
	n := len(x) + len(y)
	if n == 0 {
		return ""
	}
	if n > arenaMaxPiece {
		return string(x) + string(y)
	}
	if cap(b.chunk)-len(b.chunk) < n {
		b.chunk = b.newChunk(b.chunkSize(n))
	}
	start := len(b.chunk)
	b.chunk = append(b.chunk, x...)
	b.chunk = append(b.chunk, y...)
	return unsafe.String(&b.chunk[start], n)
}

// msgSlabSize is the length of the next message slab: what Reserve said
// is still to come, or twice the last, up to msgSlabLen.
func (b *Batch) msgSlabSize() int {
	n := min(max(b.expect-len(b.Msgs), 2*b.lastMsgs, 1), msgSlabLen)
	if n >= msgSlabLen/2 || len(b.msgSlabs) > 0 {
		// Pooled: at most half of it unused, or the batch already holds
		// a full slab that this one at most doubles.
		n = msgSlabLen
	}
	b.lastMsgs = n
	return n
}

// fieldSlabSize is the length of the next field slab, for messages of h
// fields: enough for the messages still to come, or twice the last, up to
// fieldSlabLen (or one message's h).
func (b *Batch) fieldSlabSize(h int) int {
	n := max(h*(b.expect-len(b.Msgs)), 2*b.lastField, h)
	n = min(n, max(fieldSlabLen, h))
	if n < fieldSlabLen && (n >= fieldSlabLen/2 || len(b.fieldSlabs) > 0) {
		n = fieldSlabLen // pooled, as msgSlabSize says
	}
	b.lastField = n
	return n
}

// chunkSize is the capacity of the next chunk, with room for need bytes:
// the size Reserve gave for the first, then twice the last, up to
// arenaChunk.
func (b *Batch) chunkSize(need int) int {
	n := max(need, b.strHint, 2*cap(b.chunk), arenaMinChunk)
	b.strHint = 0
	if n >= arenaChunk/2 || len(b.chunks) > 0 {
		return arenaChunk // pooled, as msgSlabSize says
	}
	return n
}

func (b *Batch) newMsgSlab(n int) []Message {
	if n < msgSlabLen {
		return make([]Message, n)
	}
	s := msgSlabPool.Get().(*[msgSlabLen]Message)
	b.msgSlabs = append(b.msgSlabs, s)
	return s[:]
}

func (b *Batch) newFieldSlab(n int) []Field {
	b.noteFieldsUsed()
	if n != fieldSlabLen {
		b.fieldPooled = false
		return make([]Field, n)
	}
	s := fieldSlabPool.Get().(*[fieldSlabLen]Field)
	b.fieldSlabs = append(b.fieldSlabs, s)
	b.fieldPooled = true
	return s[:]
}

// noteFieldsUsed records how much of the current pooled field slab was
// handed out, so Reset clears only that.
func (b *Batch) noteFieldsUsed() {
	if b.fieldPooled {
		b.fieldUsed = append(b.fieldUsed, fieldSlabLen-len(b.fieldSlab))
		b.fieldPooled = false
	}
}

func (b *Batch) newChunk(n int) []byte {
	if n < arenaChunk {
		return make([]byte, 0, n)
	}
	c := chunkPool.Get().(*[arenaChunk]byte)
	b.chunks = append(b.chunks, c)
	return c[:0]
}

// Retire marks b as read by no one any more, before it waits for reuse
// (Reset). In the race-enabled test runs it overwrites b's pooled memory at
// once, so whatever still reads a view into a chunk, or a message, sees
// garbage or an empty message, not the old contents that a reuse would
// often write again, and fails its test.
func (b *Batch) Retire() {
	if !poisonReused {
		return
	}
	for _, c := range b.chunks {
		for j := range c {
			c[j] = 0xDB
		}
	}
	for _, s := range b.msgSlabs {
		*s = [msgSlabLen]Message{}
	}
	if b.lent != nil {
		for j := range b.lent.B {
			b.lent.B[j] = 0xDB
		}
	}
}

// Reset empties b for reuse and gives its pooled memory back. Every
// message and string b handed out becomes invalid, so only the last holder
// of all of them may call it: the engine, once every destination of the
// batch has acknowledged it (the memory rule in plugin.go is what makes
// that safe: nothing keeps a message or a view past its Process or Write).
func (b *Batch) Reset() {
	// The next use starts from the fields of this one's last message.
	b.closeFields()
	hint := b.fieldHint
	clear(b.Msgs)
	b.Msgs = b.Msgs[:0]
	b.noteFieldsUsed()
	for i, s := range b.msgSlabs {
		*s = [msgSlabLen]Message{}
		msgSlabPool.Put(s)
		b.msgSlabs[i] = nil
	}
	for i, s := range b.fieldSlabs {
		clear(s[:b.fieldUsed[i]]) // drop what the fields pointed to
		fieldSlabPool.Put(s)
		b.fieldSlabs[i] = nil
	}
	for i, c := range b.chunks {
		chunkPool.Put(c)
		b.chunks[i] = nil
	}
	if b.lent != nil {
		if len(b.lent.B) == ReadBufferSize {
			readBufPool.Put(b.lent)
		}
		b.lent, b.lentBase = nil, 0
	}
	b.msgSlabs, b.fieldSlabs, b.fieldUsed, b.chunks = b.msgSlabs[:0], b.fieldSlabs[:0], b.fieldUsed[:0], b.chunks[:0]
	b.msgSlab, b.fieldSlab, b.chunk = nil, nil, nil
	b.fieldHint = hint
	b.expect, b.strHint, b.lastMsgs, b.lastField = 0, 0, 0, 0
}
