package engine_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ternlog/tern/pipeline"
)

// An input's batch is reused once every destination has acknowledged it:
// the messages of a later Emit take the memory of an earlier one. The test
// keeps every message pointer it saw, so without reuse no address could
// come back.
func TestBatchReusedAfterAck(t *testing.T) {
	names, _ := start(t, `
[inputs.in]
type = "feed"
name = "@in"
decoder = "line"
[outputs.all]
type = "sink"
name = "@all"
message_matcher = "TRUE"
`)
	var mu sync.Mutex
	seen := map[*pipeline.Message]bool{}
	reused := false
	s := getSink(names("all"))
	s.mu.Lock()
	s.fail = func(batch []pipeline.Encoded) error {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range batch {
			if seen[e.Msg] {
				reused = true
			}
			seen[e.Msg] = true
		}
		return nil
	}
	s.mu.Unlock()
	in := getFeed(names("in"))
	// Batches big enough for full-size slabs, which are the pooled ones
	// (a small batch's memory is its own, left to the GC).
	for i := 0; i < 50; i++ {
		lines := make([]string, 100)
		for j := range lines {
			lines[j] = fmt.Sprintf("x:%d.%d", i, j)
		}
		require.NoError(t, waitAck(t, in.send(lines...)))
	}
	mu.Lock()
	defer mu.Unlock()
	assert.True(t, reused, "no message memory was reused in 50 acknowledged batches")
}

// A batch is reused only once its last destination is done: a slow output
// that takes every message still reads them intact after a fast one has
// acknowledged, and a destination of copies (a selective route) does not
// hold the batch back.
func TestBatchNotReusedWhileAnOutputHoldsIt(t *testing.T) {
	names, _ := start(t, `
[inputs.in]
type = "feed"
name = "@in"
decoder = "line"
[outputs.fast]
type = "sink"
name = "@fast"
message_matcher = "TRUE"
[outputs.slow]
type = "sink"
name = "@slow"
message_matcher = "TRUE"
[outputs.rare]
type = "sink"
name = "@rare"
message_matcher = "Type == 'rare'"
`)
	slow := getSink(names("slow"))
	gate := make(chan struct{})
	var mu sync.Mutex
	var read []string // the messages' payloads as Write sees them
	slow.mu.Lock()
	slow.gate = gate
	slow.fail = func(batch []pipeline.Encoded) error {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range batch {
			read = append(read, strings.Clone(e.Msg.Payload))
		}
		return nil
	}
	slow.mu.Unlock()
	in := getFeed(names("in"))
	var want []string
	var acks []chan error
	for i := 0; i < 20; i++ {
		lines := make([]string, 0, 10)
		for j := 0; j < 10; j++ {
			typ := "x"
			if j == 0 && i%5 == 0 {
				typ = "rare"
			}
			lines = append(lines, fmt.Sprintf("%s:batch %d line %d", typ, i, j))
			want = append(want, fmt.Sprintf("batch %d line %d", i, j))
		}
		acks = append(acks, in.send(lines...))
	}
	fast := getSink(names("fast"))
	fast.waitFor(t, len(want))
	// More traffic while the slow output still holds the first batches:
	// had they been reused, these would overwrite them.
	close(gate)
	for _, a := range acks {
		require.NoError(t, waitAck(t, a))
	}
	for i := 0; i < 20; i++ {
		require.NoError(t, waitAck(t, in.send(fmt.Sprintf("y:overwrite %d ........................", i))))
	}
	slow.waitFor(t, len(want)+20)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, want, read[:len(want)])
	assert.Equal(t, want, fast.lines()[:len(want)])
	assert.Len(t, getSink(names("rare")).lines(), 4)
}
