// Package keyed holds bounded per-key state for detections: a sliding-window
// counter with distinct values (Window), a throttle that passes the first
// events of a key per period (Throttle), a space-saving top-N (TopN) and a
// table with LRU eviction (Table). The Lua sandbox exposes them to scripts
// (internal/sandbox), in the spirit of Heka's circular buffers and
// Hindsight's modules: the per-event work is done in Go, in O(1) amortised
// time, and the state stays within its caps.
//
// Every primitive
//   - takes the time as an argument (nanoseconds: the message's timestamp or
//     the timer's), so replays and tests are deterministic;
//   - expires keys from the front of an ordered list, never by a scan of
//     all keys;
//   - has caps (keys, estimated bytes, key length): reaching one evicts the
//     oldest key, which is counted; a key or value longer than the key cap
//     is refused and counted;
//   - clones the keys and values it keeps (strings read from a batch are
//     views into shared chunks);
//   - charges its bytes to a Budget (the script's memory limit);
//   - writes its state to a snapshot and merges a snapshot back, so it
//     survives restarts with the script's preserved data.
//
// Nothing here is safe for concurrent use: a sandbox runs on one goroutine.
package keyed

import (
	"errors"
	"fmt"
)

// Limits bound a primitive.
type Limits struct {
	// MaxKeys is the number of keys held at once (the records awaiting
	// Expired included); 0 means DefaultMaxKeys.
	MaxKeys int
	// MaxBytes caps the estimated memory held; 0 means DefaultMaxBytes.
	MaxBytes int64
	// MaxKeyBytes is the longest key or value kept; 0 means
	// DefaultMaxKeyBytes.
	MaxKeyBytes int
}

// Defaults of Limits.
const (
	DefaultMaxKeys     = 100_000
	DefaultMaxBytes    = 32 << 20
	DefaultMaxKeyBytes = 1 << 10
)

func (l Limits) withDefaults() Limits {
	if l.MaxKeys <= 0 {
		l.MaxKeys = DefaultMaxKeys
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxKeyBytes <= 0 {
		l.MaxKeyBytes = DefaultMaxKeyBytes
	}
	return l
}

// Stats are a primitive's gauges and counters.
type Stats struct {
	Keys        int    // keys held
	Bytes       int64  // estimated bytes held
	Evictions   uint64 // keys dropped to stay within MaxKeys or MaxBytes
	Expirations uint64 // keys whose time ran out
	Rejected    uint64 // keys or values refused for their length
}

// Budget is what a primitive charges its bytes to: the script's memory
// limit. A primitive charges an estimate of what an operation may add
// before it changes anything: when Charge refuses, the operation fails
// with its error and changes nothing. It releases bytes as they are freed.
type Budget interface {
	Charge(n int64) error
	Release(n int64)
}

// ErrTooLong is returned for a key longer than MaxKeyBytes.
var ErrTooLong = errors.New("key longer than the key limit")

// Approximate Go memory of the structures, for the byte caps: a map entry
// with its share of buckets, a list node, and a string header.
const (
	nodeBytes   = 96 // map entry and the node's links and key header
	stringBytes = 16
)

// node is an entry of an ordered map: a doubly linked list gives the order
// (front: the next to expire or be evicted), the map the lookup.
type node[V any] struct {
	key        string
	prev, next *node[V]
	val        V
}

type order[V any] struct {
	m          map[string]*node[V]
	head, tail *node[V]
	free       []*node[V] // recycled nodes, so steady churn allocates nothing
}

const maxFree = 1024

func newOrder[V any]() order[V] { return order[V]{m: map[string]*node[V]{}} }

func (o *order[V]) len() int { return len(o.m) }

func (o *order[V]) get(k string) *node[V] { return o.m[k] }

// insert adds key (already cloned) at the back.
func (o *order[V]) insert(key string) *node[V] {
	var n *node[V]
	if k := len(o.free); k > 0 {
		n = o.free[k-1]
		o.free = o.free[:k-1]
	} else {
		n = &node[V]{}
	}
	n.key = key
	o.m[key] = n
	o.pushBack(n)
	return n
}

func (o *order[V]) pushBack(n *node[V]) {
	n.prev, n.next = o.tail, nil
	if o.tail != nil {
		o.tail.next = n
	} else {
		o.head = n
	}
	o.tail = n
}

func (o *order[V]) unlink(n *node[V]) {
	if n.prev != nil {
		n.prev.next = n.next
	} else {
		o.head = n.next
	}
	if n.next != nil {
		n.next.prev = n.prev
	} else {
		o.tail = n.prev
	}
	n.prev, n.next = nil, nil
}

func (o *order[V]) moveBack(n *node[V]) {
	if o.tail == n {
		return
	}
	o.unlink(n)
	o.pushBack(n)
}

// detach removes n from the map and the list; the caller owns it.
func (o *order[V]) detach(n *node[V]) {
	delete(o.m, n.key)
	o.unlink(n)
}

// recycle keeps n for a later insert; reset clears what it holds.
func (o *order[V]) recycle(n *node[V], reset func(*V)) {
	n.key = ""
	reset(&n.val)
	if len(o.free) < maxFree {
		o.free = append(o.free, n)
	}
}

// clone copies s so the primitive does not keep a view into a batch.
func clone(s string) string {
	if s == "" {
		return ""
	}
	b := make([]byte, len(s))
	copy(b, s)
	return string(b)
}

// floorDiv is a/b rounded towards minus infinity (b > 0).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

// accounting keeps a primitive's bytes and what was charged to the budget.
type accounting struct {
	budget  Budget
	bytes   int64
	charged int64
	stats   Stats
}

// reserve charges, before the primitive grows, up to need bytes more than
// it holds; on refusal nothing is charged and the primitive must not grow.
// sync then gives back what the change did not use.
func (a *accounting) reserve(need int64) error {
	if a.budget == nil {
		return nil
	}
	if d := a.bytes + need - a.charged; d > 0 {
		if err := a.budget.Charge(d); err != nil {
			return err
		}
		a.charged += d
	}
	return nil
}

// sync charges or releases the difference between the bytes held and the
// bytes charged.
func (a *accounting) sync() error {
	if a.budget == nil {
		a.charged = a.bytes
		return nil
	}
	switch d := a.bytes - a.charged; {
	case d > 0:
		if err := a.budget.Charge(d); err != nil {
			return err
		}
		a.charged += d
	case d < 0:
		a.budget.Release(-d)
		a.charged += d
	}
	return nil
}

// Close releases everything charged to the budget.
func (a *accounting) Close() {
	if a.budget != nil && a.charged > 0 {
		a.budget.Release(a.charged)
	}
	a.charged = 0
}

func checkLimits(l Limits) error {
	switch {
	case l.MaxKeys < 0:
		return fmt.Errorf("max_keys must be positive")
	case l.MaxBytes < 0:
		return fmt.Errorf("max_bytes must be positive")
	case l.MaxKeyBytes < 0:
		return fmt.Errorf("max_key_bytes must be positive")
	}
	return nil
}
