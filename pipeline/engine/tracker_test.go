package engine

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"

	"github.com/ternlog/tern/pipeline"
)

// The batch goes back for reuse when its last user is done, only then, and
// never after a failed delivery: a runner stopped mid-lease may still read
// it. An entry of copies (copyRef) holds the acknowledgement, not the batch.
func TestTrackerReleasesBatchToLastUser(t *testing.T) {
	e := &Engine{metrics: newMetrics(prometheus.NewRegistry())}
	start := func() (*tracker, *pipeline.Batch) {
		tr := e.newTracker(nil)
		b := pipeline.NewBatch()
		tr.batch.Store(b)
		return tr, b
	}

	tr, b := start()
	tr.hold()           // an entry sharing the batch
	cp := tr.holdCopy() // an entry of copies
	tr.Done()           // the router
	assert.Same(t, b, tr.batch.Load(), "the sharing entry still reads it")
	tr.Done() // the sharing entry
	assert.Nil(t, tr.batch.Load(), "no user left: back to the pool")
	assert.Equal(t, int32(1), tr.pending.Load(), "the copies still hold the ack")
	cp.Done()
	assert.Zero(t, tr.pending.Load())

	tr, b = start()
	tr.hold()
	tr.Abandon() // a runner stopped mid-lease
	tr.Done()
	assert.Same(t, b, tr.batch.Load(), "a failed delivery keeps its batch out of the pool")
}
