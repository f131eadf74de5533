package pipeline

import (
	"fmt"
	"testing"

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

// A reset batch hands out the same memory again: decoding into it costs no
// allocation, and it starts empty.
func TestBatchResetReusesMemory(t *testing.T) {
	b := NewBatch()
	fillBatch(b, 300)
	b.Reset()
	require.Zero(t, b.Len())
	buf := []byte("a line of input bytes")
	allocs := testing.AllocsPerRun(10, func() {
		for range 300 {
			m := b.Add()
			m.Payload = b.Str(buf)
			m.AddString("k", b.Str(buf[:5]))
		}
		b.Reset()
	})
	assert.Zero(t, allocs)
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

// What Reset keeps is bounded: a batch that once held a burst does not pin
// it all.
func TestBatchResetBoundsWhatItKeeps(t *testing.T) {
	b := NewBatch()
	big := make([]byte, arenaMaxPiece)
	for range 2 * maxSpareChunks / arenaMaxPiece {
		b.Add().Payload = b.Str(big)
	}
	b.Reset()
	kept := 0
	for _, c := range b.spare.chunks {
		kept += cap(c)
	}
	msgs := 0
	for _, s := range b.spare.msgs {
		msgs += len(s)
	}
	assert.LessOrEqual(t, kept, maxSpareChunks)
	assert.LessOrEqual(t, msgs, maxSpareMsgs)
}
