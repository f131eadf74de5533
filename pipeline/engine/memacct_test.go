package engine_test

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/ternlog/tern/internal/testutil/testscale"
)

// A stalled output's queue fills; what it holds must cost about what
// queue_max_bytes counts. Decoders' strings are views into chunks their
// batch shares (Batch.Str), and messages live in slabs the batch shares, so
// a queued message could keep far more alive than Message.Size counts.
func TestStalledQueueHoldsWhatItCounts(t *testing.T) {
	// One message in a hundred goes to the output: had the queued
	// messages kept their views, each would hold its batch's 32 KiB chunk,
	// about 100 times what was counted.
	t.Run("one message in a hundred", func(t *testing.T) {
		stalledQueue(t, 100, 1, strings.Repeat("p", 200), strings.Repeat("p", 200))
	})
	// A third of the messages, but small beside the rest: by count the
	// share is large, by bytes it is not, and the chunks are the others'.
	t.Run("many small among large", func(t *testing.T) {
		stalledQueue(t, 100, 34, "p", strings.Repeat("p", 1000))
	})
	// Every message, one or four per batch (a UDP input, a quiet TCP
	// connection): nothing is selective, so nothing is copied, and a batch
	// whose chunk and slabs were sized for hundreds of messages held 125
	// times what its one message counted.
	t.Run("one message per batch", func(t *testing.T) {
		stalledQueue(t, 1, 1, strings.Repeat("p", 200), "")
	})
	t.Run("four messages per batch", func(t *testing.T) {
		stalledQueue(t, 4, 4, strings.Repeat("p", 200), "")
	})
}

// stalledQueue sends batches of size lines, rare of them "rare:"+small and
// the others "x:"+large, to an output that takes the rare ones and is
// stalled, until the input blocks, and checks what the heap holds against
// what the output's queue counts.
func stalledQueue(t *testing.T, size, rare int, small, large string) {
	queueMax := max(testscale.N(32<<20, 2<<20), 512<<10)
	// batch_max_count keeps what the stalled Write holds (taken out of
	// the queue, no longer counted) small beside the queue.
	r := runEngine(t, registry(), fmt.Sprintf(`
[inputs.in]
type = "feed"
name = "@in"
decoder = "line"
[outputs.rare]
type = "sink"
name = "@rare"
message_matcher = "Type == 'rare'"
queue_max_bytes = %d
batch_max_count = 16
`, queueMax), "300ms")
	sink := getSink(r.names("rare"))
	sink.mu.Lock()
	sink.gate = make(chan struct{}) // stalled: Write waits
	sink.mu.Unlock()
	defer close(sink.gate)

	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc

	in := getFeed(r.names("in"))
	batch := make([]string, size)
	for i := range batch {
		batch[i] = "x:" + large
		if i%(size/rare) == 0 && i/(size/rare) < rare {
			batch[i] = "rare:" + small
		}
	}
	n := 0
	for {
		select {
		case in.batches <- feedBatch{lines: batch}:
			n++
			continue
		case <-time.After(200 * time.Millisecond):
			// the queue is full: the input waits
		}
		break
	}
	queued := r.metric(t, "tern_queue_bytes", map[string]string{"plugin": "outputs.rare"})
	runtime.GC()
	runtime.ReadMemStats(&ms)
	held := int64(ms.HeapAlloc) - int64(base)
	t.Logf("%d batches sent; the queue counts %.0f KiB; the heap grew by %d KiB (%.1f times)",
		n, queued/1024, held>>10, float64(held)/queued)
	assert.Greater(t, queued, 0.75*float64(queueMax), "the queue filled")
	assert.Less(t, float64(held), 3*queued, "the heap holds far more than the queue counts")
}
