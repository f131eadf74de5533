package engine_test

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ternlog/tern/pipeline"
)

const rejectToDLQ = `
[inputs.in]
type = "feed"
name = "@in"
decoder = "line"
[outputs.a]
type = "sink"
name = "@a"
message_matcher = "Type != 'tern.deadletter'"
[outputs.dlq]
type = "sink"
name = "@dlq"
message_matcher = "Type == 'tern.deadletter'"
queue_max_bytes = "16KiB"
`

func rejectAll(s *sink) {
	s.mu.Lock()
	s.fail = func([]pipeline.Encoded) error { return pipeline.Permanent(errors.New("refused for good")) }
	s.mu.Unlock()
}

func gate(s *sink) chan struct{} {
	g := make(chan struct{})
	s.mu.Lock()
	s.gate = g
	s.mu.Unlock()
	return g
}

// A crash model of the dead letters outputs raise: at the instant the
// source is acknowledged (after which a replayable source never offers the
// record again), the dead letter of the record an output refused must be
// stored by the output that takes dead letters. A crash at that instant
// loses nothing only if the snapshot taken then holds it.
func TestOutputDeadLetterIsStoredBeforeTheSourceIsAcked(t *testing.T) {
	r := runEngine(t, registry(), rejectToDLQ, "300ms")
	rejectAll(getSink(r.names("a")))
	dlq := getSink(r.names("dlq"))
	open := gate(dlq)
	in := getFeed(r.names("in"))
	const n = 20
	type acked struct {
		err    error
		stored int
	}
	results := make(chan acked, n)
	var wg sync.WaitGroup
	for i := range n {
		ack := in.send("x:rec-" + string(rune('a'+i)))
		wg.Go(func() {
			select {
			case err := <-ack:
				results <- acked{err, len(dlq.lines())} // the "crash" happens here
			case <-time.After(20 * time.Second):
				results <- acked{errors.New("no ack"), 0}
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	select {
	case a := <-results:
		t.Fatalf("a source was acked (%v) while its dead letter waited for the dead-letter output", a.err)
	default:
	}
	close(open)
	wg.Wait()
	close(results)
	stored := 0
	for a := range results {
		require.NoError(t, a.err)
		// Acks are given as dead letters are stored: the i-th ack sees at
		// least i of them (here: at least one, its own).
		assert.Positive(t, a.stored, "acknowledged before its dead letter was stored")
		stored = max(stored, a.stored)
	}
	assert.Equal(t, n, len(dlq.waitFor(t, n)))
	assert.Equal(t, n, stored)
}

// A dead-letter output that stalls does not make its queue grow: dead
// letters take its queue and overflow allowance, and the rest are kept in
// the fallback file (counted as overflow_full for that output). Every dead
// letter is in one place or the other, and every source is acknowledged.
func TestStalledDeadLetterOutputIsBounded(t *testing.T) {
	// Output a's leases (so the dead-letter batches it raises) hold at
	// most 4 messages: the queue may exceed twice its cap by one entry.
	cfg := strings.Replace(rejectToDLQ, `message_matcher = "Type != 'tern.deadletter'"`,
		"message_matcher = \"Type != 'tern.deadletter'\"\nbatch_max_count = 4", 1)
	r := runEngine(t, registry(), cfg, "300ms")
	rejectAll(getSink(r.names("a")))
	dlq := getSink(r.names("dlq"))
	open := gate(dlq)
	in := getFeed(r.names("in"))
	const n = 200
	big := strings.Repeat("p", 1024)
	var acks []chan error
	for i := range n {
		acks = append(acks, in.send("x:"+big+string(rune('A'+i%26))))
	}
	spilled := map[string]string{"plugin": "outputs.dlq", "reason": "overflow_full"}
	deadline := time.Now().Add(10 * time.Second)
	for r.metric(t, "tern_dropped_total", spilled) == 0 {
		require.True(t, time.Now().Before(deadline), "no dead letter went past the stalled output's queue")
		time.Sleep(5 * time.Millisecond)
	}
	assert.LessOrEqual(t, r.metric(t, "tern_queue_bytes", map[string]string{"plugin": "outputs.dlq"}), float64(2*16<<10+8<<10))
	close(open)
	for _, a := range acks {
		require.NoError(t, waitAck(t, a))
	}
	inFile := 0
	f, err := os.Open(filepath.Join(r.dir, "deadletter", "unrouted.jsonl"))
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		inFile++
	}
	assert.Equal(t, float64(inFile), r.metric(t, "tern_dropped_total", spilled))
	assert.Equal(t, n, len(dlq.lines())+inFile, "every dead letter stored once")
}

// At shutdown, a dead letter still waiting for its output is abandoned. If
// its source can be told it offers the record again (no loss); if not, the
// dead letter is lost, and that is counted.
func TestAbandonedDeadLetterOfUntoldSourceIsCounted(t *testing.T) {
	r := runEngine(t, registry(), rejectToDLQ, "300ms")
	rejectAll(getSink(r.names("a")))
	dlq := getSink(r.names("dlq"))
	_ = gate(dlq) // never opens
	in := getFeed(r.names("in"))
	in.sendUntold("x:lost")
	told := in.send("x:replayed")
	deadline := time.Now().Add(10 * time.Second)
	for r.metric(t, "tern_dead_letters_total", map[string]string{"plugin": "outputs.a"}) < 2 {
		require.True(t, time.Now().Before(deadline))
		time.Sleep(5 * time.Millisecond)
	}
	r.stop()
	assert.ErrorIs(t, waitAck(t, told), pipeline.ErrStopped, "the told source offers its record again")
	assert.Equal(t, 1.0, r.metric(t, "tern_dropped_total", map[string]string{"plugin": "outputs.a", "reason": "deadletter_lost"}))
}
