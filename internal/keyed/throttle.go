package keyed

import (
	"fmt"
	"time"
)

// ThrottleConfig sets up a Throttle.
type ThrottleConfig struct {
	// Span is the period that starts at a key's first event.
	Span time.Duration
	// Limit is how many events of a key pass per period (default 1: a
	// dedupe).
	Limit int64
	Limits
}

// Throttle passes the first Limit events of each key per period of Span
// (the period starts at the key's first event) and counts the others. Keys
// are kept in the order their periods started, so Expired pops ended periods
// from the front in O(1) amortised time.
type Throttle struct {
	cfg      ThrottleConfig
	span     int64
	o        order[thrRec]
	gone     []*node[thrRec]
	goneHead int
	cur      *node[thrRec]
	acct     accounting
}

type thrRec struct {
	first, last int64
	n           int64
}

const thrRecBytes = nodeBytes + 32

// NewThrottle returns a Throttle; budget may be nil.
func NewThrottle(cfg ThrottleConfig, budget Budget) (*Throttle, error) {
	if cfg.Span <= 0 {
		return nil, fmt.Errorf("span must be positive")
	}
	if cfg.Limit == 0 {
		cfg.Limit = 1
	}
	if cfg.Limit < 0 {
		return nil, fmt.Errorf("limit must be positive")
	}
	if err := checkLimits(cfg.Limits); err != nil {
		return nil, err
	}
	cfg.Limits = cfg.Limits.withDefaults()
	return &Throttle{cfg: cfg, span: int64(cfg.Span), o: newOrder[thrRec](), acct: accounting{budget: budget}}, nil
}

// Config returns the effective configuration.
func (t *Throttle) Config() ThrottleConfig { return t.cfg }

// Stats returns the gauges and counters.
func (t *Throttle) Stats() Stats {
	s := t.acct.stats
	s.Keys, s.Bytes = t.o.len(), t.acct.bytes
	return s
}

// Close releases the bytes charged to the budget.
func (t *Throttle) Close() { t.acct.Close() }

// Allow counts one event of key at now and reports whether it passes (it is
// among the first Limit of the key's period) and the events of the period
// so far. A key longer than MaxKeyBytes is refused (ErrTooLong).
func (t *Throttle) Allow(now int64, key string) (bool, int64, error) {
	if len(key) > t.cfg.MaxKeyBytes {
		t.acct.stats.Rejected++
		return false, 0, ErrTooLong
	}
	n := t.o.get(key)
	if n == nil || now-n.val.first >= t.span {
		need := thrRecBytes + int64(len(key))
		for t.acct.bytes+need > t.cfg.MaxBytes && t.o.head != nil && t.o.head != n {
			t.evictFront(now)
		}
		if err := t.acct.reserve(need); err != nil {
			return false, 0, err
		}
	}
	if n != nil && now-n.val.first >= t.span {
		t.o.detach(n)
		t.acct.stats.Expirations++
		t.pushGone(n)
		n = nil
	}
	if n == nil {
		for t.o.len() >= t.cfg.MaxKeys {
			t.evictFront(now)
		}
		n = t.o.insert(clone(key))
		n.val = thrRec{first: now, last: now}
		t.acct.bytes += thrRecBytes + int64(len(key))
		for t.acct.bytes > t.cfg.MaxBytes && t.o.head != n {
			t.evictFront(now)
		}
	}
	r := &n.val
	r.n++
	r.last = max(r.last, now)
	return r.n <= t.cfg.Limit, r.n, t.acct.sync()
}

func (t *Throttle) evictFront(now int64) {
	h := t.o.head
	t.o.detach(h)
	if now-h.val.first >= t.span {
		t.acct.stats.Expirations++
	} else {
		t.acct.stats.Evictions++
	}
	t.pushGone(h)
}

func (t *Throttle) pending() int { return len(t.gone) - t.goneHead }

func (t *Throttle) pushGone(n *node[thrRec]) {
	if t.goneHead > 0 && t.goneHead == len(t.gone) {
		t.gone, t.goneHead = t.gone[:0], 0
	}
	t.gone = append(t.gone, n)
	if t.pending() > maxGone {
		t.free(t.popGone())
	}
}

func (t *Throttle) popGone() *node[thrRec] {
	n := t.gone[t.goneHead]
	t.gone[t.goneHead] = nil
	t.goneHead++
	return n
}

func (t *Throttle) free(n *node[thrRec]) {
	t.acct.bytes -= thrRecBytes + int64(len(n.key))
	t.o.recycle(n, func(r *thrRec) { *r = thrRec{} })
}

// Expired returns the next key whose period is over at now (keys evicted or
// found ended since the last call first) and how many of its events were
// suppressed. Its record stays readable until the next call.
func (t *Throttle) Expired(now int64) (string, int64, bool) {
	if t.cur != nil {
		t.free(t.cur)
		t.cur = nil
		_ = t.acct.sync()
	}
	if t.pending() > 0 {
		t.cur = t.popGone()
	} else if h := t.o.head; h != nil && now-h.val.first >= t.span {
		t.o.detach(h)
		t.acct.stats.Expirations++
		t.cur = h
	} else {
		return "", 0, false
	}
	return t.cur.key, max(t.cur.val.n-t.cfg.Limit, 0), true
}

func (t *Throttle) lookup(key string) *thrRec {
	if n := t.o.get(key); n != nil {
		return &n.val
	}
	if t.cur != nil && t.cur.key == key {
		return &t.cur.val
	}
	return nil
}

// Count returns the events of key's period and how many were suppressed.
func (t *Throttle) Count(key string) (events, suppressed int64) {
	if r := t.lookup(key); r != nil {
		return r.n, max(r.n-t.cfg.Limit, 0)
	}
	return 0, 0
}

// Times returns the nanoseconds of the first and newest events of key's
// period.
func (t *Throttle) Times(key string) (first, last int64, ok bool) {
	if r := t.lookup(key); r != nil {
		return r.first, r.last, true
	}
	return 0, 0, false
}

// Remove forgets key (its period ends without being reported).
func (t *Throttle) Remove(key string) {
	if n := t.o.get(key); n != nil {
		t.o.detach(n)
		t.free(n)
		_ = t.acct.sync()
	}
}

// Snapshot appends the throttle's parameters and records to b.
func (t *Throttle) Snapshot(b []byte) []byte {
	e := encoder{b: b}
	e.byte(tagThrottle)
	e.byte(snapshotVersion)
	e.i(t.span)
	e.i(t.cfg.Limit)
	e.limits(t.cfg.Limits)
	e.u(uint64(t.pending() + t.o.len()))
	rec := func(n *node[thrRec], gone bool) {
		e.str(n.key)
		e.bool(gone)
		e.i(n.val.first)
		e.i(n.val.last)
		e.i(n.val.n)
	}
	for i := t.goneHead; i < len(t.gone); i++ {
		rec(t.gone[i], true)
	}
	for n := t.o.head; n != nil; n = n.next {
		rec(n, false)
	}
	return e.b
}

// ThrottleConfigOf returns the configuration a throttle snapshot was taken
// with.
func ThrottleConfigOf(snap []byte) (ThrottleConfig, error) {
	d := decoder{b: snap}
	d.header(tagThrottle)
	cfg := ThrottleConfig{Span: time.Duration(d.i()), Limit: d.i()}
	cfg.Limits = d.limits()
	return cfg, d.err
}

// Load merges a snapshot into t (whose parameters may differ).
func (t *Throttle) Load(snap []byte) error {
	if _, err := ThrottleConfigOf(snap); err != nil {
		return err
	}
	d := decoder{b: snap}
	d.header(tagThrottle)
	d.i()
	d.i()
	d.limits()
	nrec := d.count(5)
	for k := 0; k < nrec && d.err == nil; k++ {
		key := d.str()
		gone := d.bool()
		r := thrRec{first: d.i(), last: d.i(), n: d.i()}
		if d.err != nil || len(key) > t.cfg.MaxKeyBytes {
			continue
		}
		if old := t.o.get(key); old != nil && !gone {
			t.o.detach(old)
			t.free(old)
		}
		if err := t.acct.reserve(thrRecBytes + int64(len(key))); err != nil {
			return err
		}
		var n *node[thrRec]
		if gone {
			n = &node[thrRec]{key: key}
		} else {
			for t.o.len() >= t.cfg.MaxKeys {
				t.evictFront(r.last)
			}
			n = t.o.insert(key)
		}
		n.val = r
		t.acct.bytes += thrRecBytes + int64(len(key))
		if gone {
			t.pushGone(n)
		} else {
			for t.acct.bytes > t.cfg.MaxBytes && t.o.head != n {
				t.evictFront(r.last)
			}
		}
	}
	if d.err != nil {
		return d.err
	}
	return t.acct.sync()
}
