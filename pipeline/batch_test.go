package pipeline

import (
	"fmt"
	"strings"
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
		for range 300 {
			m := b.Add()
			m.Payload = b.Str(buf)
			for _, k := range [...]string{"app", "procid", "msgid", "sd.a.b", "sd.a.c", "facility"} {
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
	b.Retire()
	assert.NotEqual(t, "kept past the ack", s)
	assert.Empty(t, m.Type, "a message of a retired batch reads empty")
}
