package kafka

import (
	"sync"

	"github.com/IBM/sarama"
)

// tracker keeps one partition's batches that are handed on but not yet
// acknowledged. Acknowledgements arrive in any order (each output settles
// on its own); the offset to commit advances only over a contiguous prefix
// of delivered batches, so a commit never covers a record that is still in
// flight or failed (Kafka, sarama and kafka-go all commit one offset per
// partition, "everything before this").
type tracker struct {
	sess sarama.ConsumerGroupSession // nil in unit tests
	tp   topicPartition
	mark func(next int64) // called with the new offset to commit; tests set it

	mu        sync.Mutex
	ranges    []batchRange // in offset order
	committed int64        // next offset to commit: every record before it is delivered
	closed    bool         // the generation ended: no more marks
}

type batchRange struct {
	first, last   int64
	acked, failed bool
}

// add registers a batch handed on (offsets first..last). Batches of a
// partition are added in offset order, by one goroutine.
func (t *tracker) add(first, last int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.ranges = append(t.ranges, batchRange{first: first, last: last})
}

// ack settles a batch. A failed batch stops the commit position for the
// rest of the generation: it and what follows are read again by the next
// owner of the partition.
func (t *tracker) ack(first, last int64, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	i := 0
	for i < len(t.ranges) && t.ranges[i].first != first {
		i++
	}
	if i == len(t.ranges) {
		return
	}
	if err != nil {
		t.ranges[i].failed = true
	} else {
		t.ranges[i].acked = true
	}
	// Behind the first failure nothing is ever committed: forget what is
	// settled there, keep what is in flight (Cleanup waits for it).
	kept := t.ranges[:0]
	failed := false
	for _, r := range t.ranges {
		if failed && (r.acked || r.failed) {
			continue
		}
		failed = failed || r.failed
		kept = append(kept, r)
	}
	t.ranges = kept
	n := 0
	next := t.committed
	for n < len(t.ranges) && t.ranges[n].acked {
		next = t.ranges[n].last + 1
		n++
	}
	if n == 0 {
		return
	}
	t.ranges = append(t.ranges[:0], t.ranges[n:]...)
	t.committed = next
	if t.closed {
		return
	}
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
	return t.committed
}

// inFlight counts the batches not yet settled.
func (t *tracker) inFlight() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, r := range t.ranges {
		if !r.acked && !r.failed {
			n++
		}
	}
	return n
}

func (t *tracker) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
}
