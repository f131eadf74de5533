// Package queue holds the per-destination queues between the router and the
// output and filter runners. Memory is the default; a disk-backed Queue can
// take its place for an output without any plugin noticing.
package queue

import (
	"context"
	"errors"
	"time"

	"github.com/ternlog/tern/pipeline"
)

// Entry is what the router pushes: the messages of one routed batch that one
// destination's matcher accepted.
type Entry struct {
	Msgs  []*pipeline.Message
	Bytes int // estimated memory held: pipeline.Message.Size summed, and the entry itself
	// Owner learns the fate of the entry. A memory queue calls Done when the
	// runner committed the last of its messages, a disk queue as soon as they
	// are durable on disk; Abandon is called instead when the messages will
	// not be delivered (the engine stopped first). May be nil.
	Owner Owner
	// Loops counts re-injections, for the loop guard of filters.
	Loops int
}

// Owner is told once what became of an entry.
type Owner interface {
	Done()
	Abandon()
}

// Lease is a batch handed to a runner. The runner calls Commit once it has
// delivered every message (or sent it to the dead-letter route).
type Lease interface {
	Msgs() []*pipeline.Message
	// Entries lists, for memory queues, the entries the lease spans and how
	// many of their messages it holds, so filters can tie injected messages to
	// their origin. Disk queues return nil.
	Entries() []Span
	Commit()
}

// Span is part of an entry in a lease: Entry.Msgs[Start:End].
type Span struct {
	Entry      *Entry
	Start, End int
}

// Queue is a bounded FIFO of entries for one destination.
type Queue interface {
	// Push adds e. With the block policy it waits while the queue is full
	// and returns ctx.Err() if ctx ends first; with drop_newest it returns
	// ErrFull at once and the caller counts the drop. A queue that is empty
	// always accepts one entry, however large.
	Push(ctx context.Context, e *Entry) error
	// Next returns up to maxCount messages and about maxBytes, waiting up
	// to linger for a fuller batch once at least one message is there. It
	// blocks until a message arrives, wait expires (then it returns nil,
	// nil), or ctx ends. wait <= 0 means no deadline.
	Next(ctx context.Context, maxCount, maxBytes int, linger, wait time.Duration) (Lease, error)
	// Bytes and Len report the current size, for metrics and draining.
	Bytes() int
	Len() int
	// Close abandons every queued entry that was not leased (calling its
	// Abandon) and releases resources. Pushes after Close fail.
	Close() error
}

// ErrFull is returned by Push on a full queue with the drop_newest policy.
var ErrFull = errors.New("queue full")

// ErrOverflow is returned by PushOverflow when the queue and its overflow
// allowance are full.
var ErrOverflow = errors.New("queue and overflow allowance full")

// ErrClosed is returned by Push after Close.
var ErrClosed = errors.New("queue closed")
