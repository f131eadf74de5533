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
}

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
		b.msgSlab = make([]Message, msgSlabLen)
	}
	m := &b.msgSlab[0]
	b.msgSlab = b.msgSlab[1:]
	m.Severity = DefaultSeverity
	if h := b.fieldHint; h > 0 {
		if len(b.fieldSlab) < h {
			b.fieldSlab = make([]Field, max(fieldSlabLen, h))
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
		b.chunk = make([]byte, 0, arenaChunk)
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
		b.chunk = make([]byte, 0, arenaChunk)
	}
	start := len(b.chunk)
	b.chunk = append(b.chunk, x...)
	b.chunk = append(b.chunk, y...)
	return unsafe.String(&b.chunk[start], n)
}
