package pipeline

import (
	"strings"
	"sync"
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

	// Slabs and chunks handed out since the last Reset, which gives them
	// back to the shared pools for any batch to take again.
	msgSlabs   []*[msgSlabLen]Message
	fieldSlabs []*[fieldSlabLen]Field
	fieldUsed  []int // fields handed out of each of fieldSlabs
	chunks     []*[arenaChunk]byte
}

const (
	msgSlabLen    = 64
	fieldSlabLen  = 512
	maxFieldHint  = 64
	arenaChunk    = 32 << 10
	arenaMaxPiece = 2 << 10
)

// Pools of the memory batches draw on. Memory goes back only through
// Reset, when the last reader of a batch is done with it, and only while
// it is in a pool does it cost memory that no batch uses; a batch in a
// queue holds just the slabs and chunks its messages took.
var (
	msgSlabPool   = sync.Pool{New: func() any { return new([msgSlabLen]Message) }}
	fieldSlabPool = sync.Pool{New: func() any { return new([fieldSlabLen]Field) }}
	chunkPool     = sync.Pool{New: func() any { return new([arenaChunk]byte) }}
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
		b.msgSlab = b.newMsgSlab()
	}
	m := &b.msgSlab[0]
	b.msgSlab = b.msgSlab[1:]
	m.Severity = DefaultSeverity
	if h := b.fieldHint; h > 0 {
		if len(b.fieldSlab) < h {
			b.fieldSlab = b.newFieldSlab()
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
		b.chunk = b.newChunk()
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
		b.chunk = b.newChunk()
	}
	start := len(b.chunk)
	b.chunk = append(b.chunk, x...)
	b.chunk = append(b.chunk, y...)
	return unsafe.String(&b.chunk[start], n)
}

// Reset empties b for reuse and gives the memory it handed out back to
// the pools that new messages and strings are drawn from. Every message
// and string b handed out becomes invalid, so only the last holder of all
// of them may call it (the engine, once every destination of the batch
// has acknowledged it; pipeline.Filter's memory rule is what makes that
// safe).
func (b *Batch) Reset() {
	clear(b.Msgs)
	b.Msgs = b.Msgs[:0]
	if k := len(b.fieldSlabs); k > 0 {
		b.fieldUsed = append(b.fieldUsed, fieldSlabLen-len(b.fieldSlab))
	}
	b.msgSlab, b.fieldSlab, b.chunk = nil, nil, nil
	// The hint only grows within a use; kept across uses, one message
	// with many fields would size every later message's fields by it.
	b.fieldHint = 0
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
	b.msgSlabs, b.fieldSlabs, b.fieldUsed, b.chunks = b.msgSlabs[:0], b.fieldSlabs[:0], b.fieldUsed[:0], b.chunks[:0]
}

func (b *Batch) newMsgSlab() []Message {
	s := msgSlabPool.Get().(*[msgSlabLen]Message)
	b.msgSlabs = append(b.msgSlabs, s)
	return s[:]
}

// newFieldSlab returns a slab of fields (the hint, at most maxFieldHint,
// always fits).
func (b *Batch) newFieldSlab() []Field {
	if len(b.fieldSlabs) > 0 {
		b.fieldUsed = append(b.fieldUsed, fieldSlabLen-len(b.fieldSlab))
	}
	s := fieldSlabPool.Get().(*[fieldSlabLen]Field)
	b.fieldSlabs = append(b.fieldSlabs, s)
	return s[:]
}

func (b *Batch) newChunk() []byte {
	c := chunkPool.Get().(*[arenaChunk]byte)
	b.chunks = append(b.chunks, c)
	return c[:0]
}
