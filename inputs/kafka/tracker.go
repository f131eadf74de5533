package kafka

import (
	"sync"

	"github.com/IBM/sarama"

	"github.com/ternlog/tern/internal/watermark"
)

// tracker keeps one partition's batches that are handed on but not yet
// acknowledged. Acknowledgements arrive in any order (each output settles
// on its own); the offset to commit advances only over a contiguous prefix
// of delivered batches (internal/watermark), so a commit never covers a
// record that is still in flight or failed (Kafka, sarama and kafka-go all
// commit one offset per partition, "everything before this").
type tracker struct {
	sess sarama.ConsumerGroupSession // nil in unit tests
	tp   topicPartition
	mark func(next int64) // called with the new offset to commit; tests set it

	mu     sync.Mutex
	line   *watermark.Line[int64] // position: the next offset to commit
	closed bool                   // the generation ended: no more marks
}

func newTracker(sess sarama.ConsumerGroupSession, tp topicPartition, initial int64) *tracker {
	return &tracker{sess: sess, tp: tp, line: watermark.New(initial)}
}

// add registers a batch handed on (offsets first..last). Batches of a
// partition are added in offset order, by one goroutine.
func (t *tracker) add(first, last int64) *watermark.Mark[int64] {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.line.Add(last+1, int(last-first+1))
}

// ack settles a batch. A failed batch stops the commit position for the
// rest of the generation: it and what follows are read again by the next
// owner of the partition.
func (t *tracker) ack(m *watermark.Mark[int64], err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, moved := t.line.Settle(m, err); !moved || t.closed {
		return
	}
	next := t.line.Pos()
	switch {
	case t.mark != nil:
		t.mark(next)
	case t.sess != nil:
		t.sess.MarkOffset(t.tp.topic, t.tp.partition, next, "")
	}
}

// next is the offset the partition's commit has reached.
func (t *tracker) next() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.line.Pos()
}

// inFlight counts the batches not yet settled.
func (t *tracker) inFlight() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.line.InFlight()
}

func (t *tracker) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
}
