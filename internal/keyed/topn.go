package keyed

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// TopNConfig sets up a TopN.
type TopNConfig struct {
	// Size is the number of counters: the heavy hitters tracked.
	Size int
	Limits
}

// TopN estimates the most frequent keys of a stream in Size counters with
// the space-saving algorithm (Metwally, Agrawal, El Abbadi, 2005): a key
// that is not tracked replaces the smallest counter and inherits its count
// as its possible overestimate. Every key whose true count exceeds
// total/Size is tracked. Counters sit in a min-heap: O(log Size) per event.
type TopN struct {
	cfg  TopNConfig
	idx  map[string]int
	h    []TopItem
	sum  float64
	acct accounting
}

// TopItem is a tracked key: Count overestimates its true count by at most
// Error.
type TopItem struct {
	Key          string
	Count, Error float64
}

const topItemBytes = nodeBytes + 32

// NewTopN returns a TopN; budget may be nil.
func NewTopN(cfg TopNConfig, budget Budget) (*TopN, error) {
	if cfg.Size < 1 || cfg.Size > 1<<20 {
		return nil, fmt.Errorf("size must be 1..1048576")
	}
	if err := checkLimits(cfg.Limits); err != nil {
		return nil, err
	}
	cfg.Limits = cfg.Limits.withDefaults()
	return &TopN{cfg: cfg, idx: map[string]int{}, acct: accounting{budget: budget}}, nil
}

// Config returns the effective configuration.
func (t *TopN) Config() TopNConfig { return t.cfg }

// Stats returns the gauges and counters; Evictions counts replaced counters.
func (t *TopN) Stats() Stats {
	s := t.acct.stats
	s.Keys, s.Bytes = len(t.h), t.acct.bytes
	return s
}

// Close releases the bytes charged to the budget.
func (t *TopN) Close() { t.acct.Close() }

// Add counts key with weight w (> 0).
func (t *TopN) Add(key string, w float64) error {
	if len(key) > t.cfg.MaxKeyBytes {
		t.acct.stats.Rejected++
		return ErrTooLong
	}
	if !(w > 0) || math.IsInf(w, 1) {
		return fmt.Errorf("weight must be a positive number")
	}
	i, tracked := t.idx[key]
	if !tracked {
		need := int64(len(key))
		if len(t.h) < t.cfg.Size {
			need += topItemBytes
		}
		if err := t.acct.reserve(need); err != nil {
			return err
		}
	}
	t.sum += w
	if tracked {
		t.h[i].Count += w
		t.down(i)
		return nil
	}
	if len(t.h) < t.cfg.Size {
		t.h = append(t.h, TopItem{Key: clone(key), Count: w})
		t.idx[t.h[len(t.h)-1].Key] = len(t.h) - 1
		t.acct.bytes += topItemBytes + int64(len(key))
		t.up(len(t.h) - 1)
	} else {
		m := &t.h[0]
		delete(t.idx, m.Key)
		t.acct.stats.Evictions++
		t.acct.bytes += int64(len(key) - len(m.Key))
		*m = TopItem{Key: clone(key), Count: m.Count + w, Error: m.Count}
		t.idx[m.Key] = 0
		t.down(0)
	}
	for t.acct.bytes > t.cfg.MaxBytes && len(t.h) > 1 {
		t.removeMin()
		t.acct.stats.Evictions++
	}
	return t.acct.sync()
}

func (t *TopN) removeMin() {
	m := t.h[0]
	delete(t.idx, m.Key)
	t.acct.bytes -= topItemBytes + int64(len(m.Key))
	last := len(t.h) - 1
	t.h[0] = t.h[last]
	t.h = t.h[:last]
	if last > 0 {
		t.idx[t.h[0].Key] = 0
		t.down(0)
	}
}

func (t *TopN) less(i, j int) bool { return t.h[i].Count < t.h[j].Count }

func (t *TopN) swap(i, j int) {
	t.h[i], t.h[j] = t.h[j], t.h[i]
	t.idx[t.h[i].Key] = i
	t.idx[t.h[j].Key] = j
}

func (t *TopN) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !t.less(i, p) {
			return
		}
		t.swap(i, p)
		i = p
	}
}

func (t *TopN) down(i int) {
	for {
		l, s := 2*i+1, i
		if l < len(t.h) && t.less(l, s) {
			s = l
		}
		if r := l + 1; r < len(t.h) && t.less(r, s) {
			s = r
		}
		if s == i {
			return
		}
		t.swap(i, s)
		i = s
	}
}

// Count returns the estimate of key and its possible overestimate.
func (t *TopN) Count(key string) (count, err float64, ok bool) {
	if i, found := t.idx[key]; found {
		return t.h[i].Count, t.h[i].Error, true
	}
	return 0, 0, false
}

// Total returns the sum of the weights added since the last Reset.
func (t *TopN) Total() float64 { return t.sum }

// Top returns up to n tracked keys (all when n <= 0), the largest counts
// first (ties by key).
func (t *TopN) Top(n int) []TopItem {
	items := slices.Clone(t.h)
	slices.SortFunc(items, func(a, b TopItem) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return cmp.Compare(a.Key, b.Key)
	})
	if n > 0 && n < len(items) {
		items = items[:n]
	}
	return items
}

// Reset forgets every key (a new interval).
func (t *TopN) Reset() {
	clear(t.idx)
	t.h = t.h[:0]
	t.sum = 0
	t.acct.bytes = 0
	_ = t.acct.sync()
}

// Snapshot appends the counters to b.
func (t *TopN) Snapshot(b []byte) []byte {
	e := encoder{b: b}
	e.byte(tagTopN)
	e.byte(snapshotVersion)
	e.u(uint64(t.cfg.Size))
	e.limits(t.cfg.Limits)
	e.f(t.sum)
	e.u(uint64(len(t.h)))
	for _, it := range t.h {
		e.str(it.Key)
		e.f(it.Count)
		e.f(it.Error)
	}
	return e.b
}

// TopNConfigOf returns the configuration a top-N snapshot was taken with.
func TopNConfigOf(snap []byte) (TopNConfig, error) {
	d := decoder{b: snap}
	d.header(tagTopN)
	cfg := TopNConfig{Size: int(min(d.u(), 1<<20))}
	cfg.Limits = d.limits()
	return cfg, d.err
}

// Load merges a snapshot's counters into t: a key already tracked adds
// them up; with fewer counters than the snapshot, the largest are kept.
func (t *TopN) Load(snap []byte) error {
	if _, err := TopNConfigOf(snap); err != nil {
		return err
	}
	d := decoder{b: snap}
	d.header(tagTopN)
	d.u()
	d.limits()
	sum := d.f()
	n := d.count(3)
	items := make([]TopItem, 0, min(n, t.cfg.Size))
	for i := 0; i < n && d.err == nil; i++ {
		items = append(items, TopItem{Key: d.str(), Count: d.f(), Error: d.f()})
	}
	if d.err != nil {
		return d.err
	}
	t.sum += sum
	// The largest first, so a smaller t keeps the heavy hitters.
	slices.SortFunc(items, func(a, b TopItem) int { return cmp.Compare(b.Count, a.Count) })
	for _, it := range items {
		if len(it.Key) > t.cfg.MaxKeyBytes || !(it.Count > 0) {
			continue
		}
		if i, ok := t.idx[it.Key]; ok {
			t.h[i].Count += it.Count
			t.h[i].Error += it.Error
			t.down(i)
			continue
		}
		if len(t.h) >= t.cfg.Size {
			t.acct.stats.Evictions++
			continue
		}
		if err := t.acct.reserve(topItemBytes + int64(len(it.Key))); err != nil {
			return err
		}
		t.h = append(t.h, it)
		t.idx[it.Key] = len(t.h) - 1
		t.acct.bytes += topItemBytes + int64(len(it.Key))
		t.up(len(t.h) - 1)
	}
	for t.acct.bytes > t.cfg.MaxBytes && len(t.h) > 1 {
		t.removeMin()
		t.acct.stats.Evictions++
	}
	return t.acct.sync()
}
