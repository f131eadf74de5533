package pipeline

import (
	"strings"
	"unsafe"
)

// Batch collects the messages decoded from one batch of records. Decoders add
// messages with Add and copy bytes they keep with Str; both draw on memory
// shared by the whole batch, so a decoder allocates little per record.
//
// A Batch is used by one goroutine at a time.
type Batch struct {
	Msgs []*Message

	msgSlab   []Message
	fieldSlab []Field
	fieldHint int // field capacity given to the next message
	chunk     []byte

	// Memory handed out since the last Reset (used) and memory a Reset
	// gave back (spare), so that a reused batch allocates nothing.
	used, spare batchMem
}

type batchMem struct {
	msgs   [][]Message
	fields [][]Field
	chunks [][]byte
}

// Bounds on what Reset keeps for reuse: a batch that once took a burst of
// huge records does not pin that memory in a pool.
const (
	maxSpareMsgs   = 4096
	maxSpareChunks = 1 << 20
)

const (
	msgSlabLen    = 64
	fieldSlabLen  = 512
	maxFieldHint  = 64
	arenaChunk    = 32 << 10
	arenaMaxPiece = 2 << 10
)

// NewBatch returns an empty batch.
func NewBatch() *Batch { return &Batch{} }

// Add appends a new message with default severity and returns it. The message
// may be filled until the decoder returns.
func (b *Batch) Add() *Message {
	if n := len(b.Msgs); n > 0 {
		if k := len(b.Msgs[n-1].Fields); k > b.fieldHint {
			b.fieldHint = min(k, maxFieldHint)
		}
	}
	if len(b.msgSlab) == 0 {
		b.msgSlab = b.newMsgSlab(msgSlabLen)
	}
	m := &b.msgSlab[0]
	b.msgSlab = b.msgSlab[1:]
	m.Severity = DefaultSeverity
	if h := b.fieldHint; h > 0 {
		if len(b.fieldSlab) < h {
			b.fieldSlab = b.newFieldSlab(max(fieldSlabLen, h), h)
		}
		m.Fields = b.fieldSlab[:0:h]
		b.fieldSlab = b.fieldSlab[h:]
	}
	b.Msgs = append(b.Msgs, m)
	return m
}

// Truncate drops the messages after the first n (used to discard the partial
// output of a decoder that failed).
func (b *Batch) Truncate(n int) {
	for i := n; i < len(b.Msgs); i++ {
		b.Msgs[i] = nil
	}
	b.Msgs = b.Msgs[:n]
}

// Len is the number of messages.
func (b *Batch) Len() int { return len(b.Msgs) }

// Str returns p as an immutable string. Small strings are copied into a chunk
// shared by the batch, so decoding a record costs no allocation per string.
func (b *Batch) Str(p []byte) string {
	if len(p) == 0 {
		return ""
	}
	if len(p) > arenaMaxPiece {
		return string(p)
	}
	if cap(b.chunk)-len(b.chunk) < len(p) {
		b.chunk = b.newChunk(arenaChunk, len(p))
	}
	start := len(b.chunk)
	b.chunk = append(b.chunk, p...)
	// The chunk is append-only and never rewritten, so the bytes behind
	// the string never change.
	return unsafe.String(&b.chunk[start], len(p))
}

// Retain returns s in memory of its own when it may be a view into a
// batch's shared chunk (Str's small strings), and s itself otherwise.
// Whatever outlives the batch a message came in (a filter's per-key
// state, a Lua table) must hold retained strings: a view would keep the
// whole 32 KiB chunk alive, and memory accounting would not see it.
func Retain(s string) string {
	if len(s) == 0 || len(s) > arenaMaxPiece {
		return s
	}
	return strings.Clone(s)
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
		b.chunk = b.newChunk(arenaChunk, n)
	}
	start := len(b.chunk)
	b.chunk = append(b.chunk, x...)
	b.chunk = append(b.chunk, y...)
	return unsafe.String(&b.chunk[start], n)
}

// Reset empties b for reuse, keeping the memory it handed out: the next
// messages and strings take the same slabs and chunks again. Every message
// and string b handed out becomes invalid, so only the last holder of all
// of them may call it (the engine, once every destination of the batch
// has acknowledged it; pipeline.Filter's memory rule is what makes that
// safe).
func (b *Batch) Reset() {
	clear(b.Msgs)
	b.Msgs = b.Msgs[:0]
	b.msgSlab, b.fieldSlab, b.chunk = nil, nil, nil
	n := 0
	for _, s := range b.spare.msgs {
		n += len(s)
	}
	for _, s := range b.used.msgs {
		clear(s)
		if n+len(s) <= maxSpareMsgs {
			b.spare.msgs = append(b.spare.msgs, s)
			n += len(s)
		}
	}
	n = 0
	for _, s := range b.spare.fields {
		n += len(s)
	}
	for _, s := range b.used.fields {
		clear(s) // drop what the fields pointed to
		if n+len(s) <= maxSpareMsgs*4 {
			b.spare.fields = append(b.spare.fields, s)
			n += len(s)
		}
	}
	n = 0
	for _, c := range b.spare.chunks {
		n += cap(c)
	}
	for _, c := range b.used.chunks {
		if n+cap(c) <= maxSpareChunks {
			b.spare.chunks = append(b.spare.chunks, c[:0])
			n += cap(c)
		}
	}
	clear(b.used.msgs)
	clear(b.used.fields)
	clear(b.used.chunks)
	b.used.msgs, b.used.fields, b.used.chunks = b.used.msgs[:0], b.used.fields[:0], b.used.chunks[:0]
}

// newMsgSlab returns a zeroed slab of messages: a spare one, or n new.
func (b *Batch) newMsgSlab(n int) []Message {
	var s []Message
	if k := len(b.spare.msgs); k > 0 {
		s = b.spare.msgs[k-1]
		b.spare.msgs[k-1] = nil
		b.spare.msgs = b.spare.msgs[:k-1]
	} else {
		s = make([]Message, n)
	}
	b.used.msgs = append(b.used.msgs, s)
	return s
}

// newFieldSlab returns a slab of at least need fields: a spare one, or n
// new.
func (b *Batch) newFieldSlab(n, need int) []Field {
	var s []Field
	if k := len(b.spare.fields); k > 0 && len(b.spare.fields[k-1]) >= need {
		s = b.spare.fields[k-1]
		b.spare.fields[k-1] = nil
		b.spare.fields = b.spare.fields[:k-1]
	} else {
		s = make([]Field, n)
	}
	b.used.fields = append(b.used.fields, s)
	return s
}

// newChunk returns an empty chunk with room for need bytes: a spare one,
// or one of capacity n.
func (b *Batch) newChunk(n, need int) []byte {
	var c []byte
	if k := len(b.spare.chunks); k > 0 && cap(b.spare.chunks[k-1]) >= need {
		c = b.spare.chunks[k-1]
		b.spare.chunks[k-1] = nil
		b.spare.chunks = b.spare.chunks[:k-1]
	} else {
		c = make([]byte, 0, n)
	}
	b.used.chunks = append(b.used.chunks, c)
	return c
}
