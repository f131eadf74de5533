package engine_test

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// A selective matcher in front of a stalled output: one message in a
// hundred goes to it, and its queue fills. What the queue holds must cost
// about what queue_max_bytes counts. Decoders' strings are views into
// 32 KiB chunks their batch shares, so a queued message that kept its view
// kept the whole chunk alive: about 100 times what was counted here.
func TestSelectiveQueueHoldsWhatItCounts(t *testing.T) {
	t.Run("one message in a hundred", func(t *testing.T) {
		selectiveQueue(t, 1, strings.Repeat("p", 200), strings.Repeat("p", 200))
	})
	// A third of the messages, but small beside the rest: by count the
	// share is large, by bytes it is not, and the chunks are the others'.
	t.Run("many small among large", func(t *testing.T) {
		selectiveQueue(t, 34, "p", strings.Repeat("p", 1000))
	})
}

// selectiveQueue sends batches of 100 lines, rare of them "rare:"+small
// and the others "x:"+large, to an output that takes the rare ones and is
// stalled, and checks what the heap holds against what its queue counts.
func selectiveQueue(t *testing.T, rare int, small, large string) {
	r := runEngine(t, registry(), `
[inputs.in]
type = "feed"
name = "@in"
decoder = "line"
[outputs.rare]
type = "sink"
name = "@rare"
message_matcher = "Type == 'rare'"
queue_max_bytes = "256KiB"
`, "300ms")
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
	batch := make([]string, 100)
	for i := range batch {
		batch[i] = "x:" + large
		if i%(100/rare) == 0 && i/(100/rare) < rare {
			batch[i] = "rare:" + small
		}
	}
	sent := make(chan int, 1)
	go func() {
		n := 0
		for ; n < 3000; n++ {
			select {
			case in.batches <- feedBatch{lines: batch}:
			case <-time.After(time.Second):
				sent <- n // the queue is full: the input waits
				return
			}
		}
		sent <- n
	}()
	n := <-sent
	queued := r.metric(t, "tern_queue_bytes", map[string]string{"plugin": "outputs.rare"})
	runtime.GC()
	runtime.ReadMemStats(&ms)
	held := int64(ms.HeapAlloc) - int64(base)
	t.Logf("%d batches sent; the queue counts %.0f KiB; the heap grew by %d KiB", n, queued/1024, held>>10)
	assert.Greater(t, queued, float64(200<<10), "the queue filled")
	assert.Less(t, held, int64(8*queued), "the heap holds far more than the queue counts")
}
