package keyed

import (
	"fmt"
	"hash/maphash"
	"slices"
	"time"
)

// WindowConfig sets up a Window.
type WindowConfig struct {
	// Span is the sliding window; a key quiet for longer expires.
	Span time.Duration
	// Resolution is the width of a time slot: events are counted per slot
	// and a slot leaves the window whole. 0 means one second (or Span
	// when shorter). Span must be a multiple of it.
	Resolution time.Duration
	// Distinct is how many distinct values are counted per key (0: none),
	// by a 64-bit hash of each (seeded per window).
	Distinct int
	// Values keeps the distinct values themselves too (for Values).
	Values bool
	Limits
}

// Window counts the events of each key over a sliding window of Span, at the
// granularity of Resolution, and keeps up to Distinct distinct values per
// key.
//
// A key is active from its first event until it has been quiet for more than
// Span (its last event's slot has left the window): Total, First, Last and
// the distinct values cover that active period, Count the window. Keys are
// kept in the order they were last touched; Expired pops them from the front,
// so the work per event is O(1) amortised and keys expire exactly at the
// window's edge when time moves forward (a key touched with an older time
// than others can outlive its window until the keys before it expire; a touch
// of a stale key still starts a new period). An event older than the key's
// newest is counted in the newest slot.
//
// Memory per key is a fixed record, the key, 16 bytes per slot in use (at most
// Span/Resolution + 1) and the values kept.
type Window struct {
	cfg       WindowConfig
	res       int64
	spanSlots int64
	o         order[winRec]
	gone      []*node[winRec] // detached records Expired has yet to report
	goneHead  int
	cur       *node[winRec] // the record Expired reported last
	freeBytes int64         // bytes of the recycled records (in acct.bytes)
	seed      maphash.Seed  // of the distinct values' hashes
	acct      accounting
}

type slot struct{ at, n int64 }

// winRec is one key's record: small, since a window may hold 100,000s.
// The hashes of its first two distinct values sit in the record; more
// values, and the values themselves when kept, in an extension.
type winRec struct {
	first, last int64 // ns of the period's first and newest events
	total       int64
	count       int64 // events in ring
	ring        []slot
	h           [2]uint64 // hashes of the first distinct values
	ext         *winVals
	bytes       int64 // the record's bytes as counted in acct
	head, n     int32 // the ring's used part
	nh          int32 // distinct values counted
	capped      bool  // more distinct values were seen than counted
}

type winVals struct {
	hs       []uint64            // hashes beyond the first two
	set      map[uint64]struct{} // index of every hash once there are many
	vals     []string            // the values (WindowConfig.Values)
	valBytes int64
}

func (r *winRec) hasHash(h uint64) bool {
	switch {
	case r.nh > 0 && r.h[0] == h, r.nh > 1 && r.h[1] == h:
		return true
	case r.ext == nil:
		return false
	case r.ext.set != nil:
		_, ok := r.ext.set[h]
		return ok
	}
	return slices.Contains(r.ext.hs, h)
}

const (
	winRecBytes  = nodeBytes + 112
	winValsBytes = 96
	slotBytes    = 16
	hashBytes    = 8
	setEntry     = 32 // a map entry of the distinct-value index
	setFrom      = 32 // hashes in a slice before they get an index
	// maxGone is how many detached records wait for Expired; older ones
	// are dropped when the script does not drain them.
	maxGone = 64
	// keepRing and keepVals are the capacities a recycled record keeps.
	keepRing = 4
)

// size returns the bytes record r of key holds.
func (r *winRec) size(key string) int64 {
	b := winRecBytes + int64(len(key)) + slotBytes*int64(cap(r.ring))
	if x := r.ext; x != nil {
		b += winValsBytes + hashBytes*int64(cap(x.hs)) + stringBytes*int64(cap(x.vals)) + x.valBytes + setEntry*int64(len(x.set))
	}
	return b
}

// resize updates the bytes counted for r.
func (w *Window) resize(n *node[winRec]) {
	b := n.val.size(n.key)
	w.acct.bytes += b - n.val.bytes
	n.val.bytes = b
}

// NewWindow returns a Window; budget may be nil.
func NewWindow(cfg WindowConfig, budget Budget) (*Window, error) {
	if cfg.Span <= 0 {
		return nil, fmt.Errorf("span must be positive")
	}
	if cfg.Resolution == 0 {
		cfg.Resolution = min(time.Second, cfg.Span)
	}
	if cfg.Resolution < 0 || cfg.Span%cfg.Resolution != 0 {
		return nil, fmt.Errorf("span (%s) must be a multiple of resolution (%s)", cfg.Span, cfg.Resolution)
	}
	if cfg.Distinct < 0 || cfg.Distinct > 1<<16 {
		return nil, fmt.Errorf("distinct must be 0..65536")
	}
	if err := checkLimits(cfg.Limits); err != nil {
		return nil, err
	}
	cfg.Limits = cfg.Limits.withDefaults()
	return &Window{
		cfg: cfg, res: int64(cfg.Resolution), spanSlots: int64(cfg.Span / cfg.Resolution),
		o: newOrder[winRec](), acct: accounting{budget: budget}, seed: maphash.MakeSeed(),
	}, nil
}

// Config returns the effective configuration.
func (w *Window) Config() WindowConfig { return w.cfg }

// Stats returns the gauges and counters.
func (w *Window) Stats() Stats {
	s := w.acct.stats
	s.Keys, s.Bytes = w.o.len(), w.acct.bytes
	return s
}

// Close releases the bytes charged to the budget.
func (w *Window) Close() { w.acct.Close() }

// Add counts one event of key at now (ns) and, when hasValue, value as one
// of its distinct values. It returns the key's events within the window. A
// key longer than MaxKeyBytes is refused (ErrTooLong); a longer value is
// not kept (counted as rejected). Any other error is the budget's: the event
// was counted but the memory it took was not charged.
func (w *Window) Add(now int64, key, value string, hasValue bool) (int64, error) {
	if len(key) > w.cfg.MaxKeyBytes {
		w.acct.stats.Rejected++
		return 0, ErrTooLong
	}
	s := floorDiv(now, w.res)
	n := w.o.get(key)
	// Make room under MaxBytes, then charge the budget, before growing.
	need := w.growth(n, key, value, hasValue)
	w.trim(n, need)
	if err := w.acct.reserve(need); err != nil {
		return 0, err
	}
	if n != nil && s-w.slot(n.val.last) > w.spanSlots {
		// Stale: its period ended although Expired has not reached it.
		w.o.detach(n)
		w.acct.stats.Expirations++
		w.pushGone(n)
		n = nil
	}
	if n == nil {
		w.makeRoom(s)
		n = w.insert(clone(key))
		r := &n.val
		r.first, r.last = now, now
	} else {
		w.o.moveBack(n)
	}
	r := &n.val
	w.addEvent(r, s)
	r.last = max(r.last, now)
	r.total++
	if hasValue {
		w.addValue(r, value)
	}
	w.resize(n)
	w.trim(n, 0)
	return r.count, w.acct.sync()
}

// growth bounds what adding an event of key (record n, nil if new) can add
// to the bytes held.
func (w *Window) growth(n *node[winRec], key, value string, hasValue bool) int64 {
	var need int64
	if n == nil {
		need = winRecBytes + int64(len(key)) + slotBytes*keepRing
	} else {
		need = slotBytes * int64(max(2, len(n.val.ring))) // the ring may double
	}
	if hasValue && w.cfg.Distinct > 0 && len(value) <= w.cfg.MaxKeyBytes {
		need += winValsBytes + setEntry + int64(len(value)) // a new extension, a value
		if n != nil && n.val.ext != nil {
			x := n.val.ext // its slices may double, its index may grow
			need += hashBytes*int64(cap(x.hs)) + stringBytes*int64(cap(x.vals)) + setEntry*int64(setFrom+len(x.set))
		}
	}
	return need
}

// insert adds key, on a recycled record when there is one.
func (w *Window) insert(key string) *node[winRec] {
	n := w.o.insert(key)
	if b := n.val.bytes; b != 0 { // recycled: its bytes leave the free list
		w.freeBytes -= b
		w.acct.bytes -= b
		n.val.bytes = 0
	}
	w.resize(n)
	return n
}

// addEvent counts one event in slot s.
func (w *Window) addEvent(r *winRec, s int64) {
	w.dropBefore(r, s-w.spanSlots)
	r.count++
	if r.n > 0 {
		if last := &r.ring[r.at(r.n-1)]; last.at >= s {
			last.n++
			return
		}
	}
	if int(r.n) == len(r.ring) {
		w.grow(r)
	}
	r.ring[r.at(r.n)] = slot{at: s, n: 1}
	r.n++
}

// at is the ring index of the i-th slot in use.
func (r *winRec) at(i int32) int { return int(r.head+i) % len(r.ring) }

// slot is the slot of time ns.
func (w *Window) slot(ns int64) int64 { return floorDiv(ns, w.res) }

func (w *Window) grow(r *winRec) {
	ring := make([]slot, max(2, 2*len(r.ring)))
	for i := range r.n {
		ring[i] = r.ring[r.at(i)]
	}
	r.ring, r.head = ring, 0
}

// dropBefore forgets the slots before lo.
func (w *Window) dropBefore(r *winRec, lo int64) {
	for r.n > 0 && r.ring[r.head].at < lo {
		r.count -= r.ring[r.head].n
		r.head = int32((int(r.head) + 1) % len(r.ring))
		r.n--
	}
	if r.n == 0 {
		r.head = 0
	}
}

func (w *Window) addValue(r *winRec, v string) {
	if w.cfg.Distinct == 0 {
		return
	}
	if len(v) > w.cfg.MaxKeyBytes {
		w.acct.stats.Rejected++
		return
	}
	h := maphash.String(w.seed, v)
	if r.hasHash(h) {
		return
	}
	if int(r.nh) >= w.cfg.Distinct {
		r.capped = true
		return
	}
	w.addHash(r, h)
	if w.cfg.Values {
		x := r.extension()
		v = clone(v)
		x.vals = append(x.vals, v)
		x.valBytes += int64(len(v))
	}
}

// addHash counts a new distinct value.
func (w *Window) addHash(r *winRec, h uint64) {
	if r.nh < 2 {
		r.h[r.nh] = h
		r.nh++
		return
	}
	x := r.extension()
	x.hs = append(x.hs, h)
	r.nh++
	switch {
	case x.set != nil:
		x.set[h] = struct{}{}
	case len(x.hs) > setFrom:
		x.set = make(map[uint64]struct{}, 2*int(r.nh))
		x.set[r.h[0]], x.set[r.h[1]] = struct{}{}, struct{}{}
		for _, y := range x.hs {
			x.set[y] = struct{}{}
		}
	}
}

func (r *winRec) extension() *winVals {
	if r.ext == nil {
		r.ext = &winVals{}
	}
	return r.ext
}

func (w *Window) pending() int { return len(w.gone) - w.goneHead }

func (w *Window) pushGone(n *node[winRec]) {
	if w.goneHead > 0 && w.goneHead == len(w.gone) {
		w.gone, w.goneHead = w.gone[:0], 0
	}
	w.gone = append(w.gone, n)
	if w.pending() > maxGone {
		w.free(w.popGone())
	}
}

func (w *Window) popGone() *node[winRec] {
	n := w.gone[w.goneHead]
	w.gone[w.goneHead] = nil
	w.goneHead++
	return n
}

// free drops a detached record; it is kept for the next key (its small
// ring included: steady churn then allocates only the key) while the free
// list has room, and its bytes stay counted until then.
func (w *Window) free(n *node[winRec]) {
	w.acct.bytes -= n.val.bytes
	if len(w.o.free) >= maxFree || w.acct.bytes+winRecBytes+slotBytes*keepRing > w.cfg.MaxBytes {
		return
	}
	r := &n.val
	ring := r.ring
	*r = winRec{}
	if cap(ring) <= keepRing {
		r.ring = ring[:cap(ring)]
	}
	r.bytes = r.size("")
	w.freeBytes += r.bytes
	w.acct.bytes += r.bytes
	w.o.recycle(n, func(*winRec) {})
}

// dropFree lets the collector have the recycled records.
func (w *Window) dropFree() {
	w.acct.bytes -= w.freeBytes
	w.freeBytes = 0
	clear(w.o.free)
	w.o.free = w.o.free[:0]
}

// evictFront detaches the oldest key; it counts as expired when its window
// has passed at slot s.
func (w *Window) evictFront(s int64) {
	h := w.o.head
	w.o.detach(h)
	if s-w.slot(h.val.last) > w.spanSlots {
		w.acct.stats.Expirations++
	} else {
		w.acct.stats.Evictions++
	}
	w.pushGone(h)
}

// makeRoom makes room for one more key.
func (w *Window) makeRoom(s int64) {
	for w.o.len() >= w.cfg.MaxKeys && w.o.head != nil {
		w.evictFront(s)
	}
}

// trim evicts the oldest keys but keep while the bytes plus need exceed
// MaxBytes (recycled records go first). The evicted records wait for Expired (at
// most maxGone of them), so the bytes held can exceed MaxBytes by that many
// records.
func (w *Window) trim(keep *node[winRec], need int64) {
	if w.acct.bytes+need <= w.cfg.MaxBytes {
		return
	}
	w.dropFree()
	s := w.lastSlot()
	for w.acct.bytes+need > w.cfg.MaxBytes && w.o.head != nil && w.o.head != keep {
		w.evictFront(s)
	}
}

// lastSlot is the newest slot of the most recently touched key: the
// window's notion of now when it evicts.
func (w *Window) lastSlot() int64 {
	if w.o.tail == nil {
		return 0
	}
	return w.slot(w.o.tail.val.last)
}

// Expired returns the next key whose period is over at now: first the keys
// evicted or found stale since the last call, then, from the front, the
// keys quiet for more than Span. The key's record stays readable (Total,
// First, Last, Distinct, Values) until the next call of Expired; its total
// is returned too.
func (w *Window) Expired(now int64) (string, int64, bool) {
	w.releaseCur()
	if w.pending() > 0 {
		w.cur = w.popGone()
		return w.cur.key, w.cur.val.total, true
	}
	if h := w.o.head; h != nil && w.slot(now)-w.slot(h.val.last) > w.spanSlots {
		w.o.detach(h)
		w.acct.stats.Expirations++
		w.cur = h
		return h.key, h.val.total, true
	}
	return "", 0, false
}

func (w *Window) releaseCur() {
	if w.cur != nil {
		w.free(w.cur)
		w.cur = nil
		_ = w.acct.sync() // a release cannot fail
	}
}

func (w *Window) lookup(key string) *winRec {
	if n := w.o.get(key); n != nil {
		return &n.val
	}
	if w.cur != nil && w.cur.key == key {
		return &w.cur.val
	}
	return nil
}

// Has reports whether key is active (or is the one Expired just returned).
func (w *Window) Has(key string) bool { return w.lookup(key) != nil }

// Count returns the events of key within the window ending at now.
func (w *Window) Count(now int64, key string) int64 {
	r := w.lookup(key)
	if r == nil {
		return 0
	}
	w.dropBefore(r, floorDiv(now, w.res)-w.spanSlots)
	return r.count
}

// Total returns the events of key's active period.
func (w *Window) Total(key string) int64 {
	if r := w.lookup(key); r != nil {
		return r.total
	}
	return 0
}

// Times returns the nanoseconds of the first and newest events of key's
// active period.
func (w *Window) Times(key string) (first, last int64, ok bool) {
	if r := w.lookup(key); r != nil {
		return r.first, r.last, true
	}
	return 0, 0, false
}

// Distinct returns how many distinct values key has (at most Distinct) and
// whether more were seen than counted.
func (w *Window) Distinct(key string) (int, bool) {
	if r := w.lookup(key); r != nil {
		return int(r.nh), r.capped
	}
	return 0, false
}

// Values returns key's distinct values, sorted (a new slice); nil unless
// the window keeps them (WindowConfig.Values).
func (w *Window) Values(key string) []string {
	r := w.lookup(key)
	if r == nil || r.ext == nil {
		return nil
	}
	v := slices.Clone(r.ext.vals)
	slices.Sort(v)
	return v
}

// Remove forgets key.
func (w *Window) Remove(key string) {
	if n := w.o.get(key); n != nil {
		w.o.detach(n)
		w.free(n)
		_ = w.acct.sync()
	}
}

// Snapshot appends the window's parameters and records (those awaiting
// Expired first, then the active keys from the front) to b.
func (w *Window) Snapshot(b []byte) []byte {
	e := encoder{b: b}
	e.byte(tagWindow)
	e.byte(snapshotVersion)
	e.i(int64(w.cfg.Span))
	e.i(w.res)
	e.u(uint64(w.cfg.Distinct))
	e.bool(w.cfg.Values)
	e.limits(w.cfg.Limits)
	e.u(uint64(w.pending() + w.o.len()))
	rec := func(n *node[winRec], gone bool) {
		r := &n.val
		e.str(n.key)
		e.bool(gone)
		e.i(r.first)
		e.i(r.last)
		e.i(r.total)
		e.bool(r.capped)
		e.u(uint64(r.n))
		for i := range r.n {
			s := r.ring[r.at(i)]
			e.i(s.at * w.res)
			e.i(s.n)
		}
		// The values when kept, else their hashes (whose seed dies with
		// the window: after a restart, a value seen before counts again).
		if w.cfg.Values {
			var vals []string
			if r.ext != nil {
				vals = r.ext.vals
			}
			e.u(uint64(len(vals)))
			for _, v := range vals {
				e.str(v)
			}
		} else {
			e.u(uint64(r.nh))
			for i := range r.nh {
				e.u(r.hash(int(i)))
			}
		}
	}
	for i := w.goneHead; i < len(w.gone); i++ {
		rec(w.gone[i], true)
	}
	for n := w.o.head; n != nil; n = n.next {
		rec(n, false)
	}
	return e.b
}

// hash returns the i-th distinct value's hash.
func (r *winRec) hash(i int) uint64 {
	if i < 2 {
		return r.h[i]
	}
	return r.ext.hs[i-2]
}

// WindowConfigOf returns the configuration a window snapshot was taken with.
func WindowConfigOf(snap []byte) (WindowConfig, error) {
	d := decoder{b: snap}
	d.header(tagWindow)
	cfg := WindowConfig{Span: time.Duration(d.i()), Resolution: time.Duration(d.i()), Distinct: int(min(d.u(), 1<<16)), Values: d.bool()}
	cfg.Limits = d.limits()
	return cfg, d.err
}

// Load merges a snapshot into w, which may have other parameters: events
// move to w's slots, values beyond w's Distinct are dropped, keys beyond its
// caps are evicted (counted). A key already active is replaced.
func (w *Window) Load(snap []byte) error {
	if _, err := WindowConfigOf(snap); err != nil {
		return err
	}
	d := decoder{b: snap}
	d.header(tagWindow)
	d.i()
	d.i()
	d.u()
	hasValues := d.bool()
	d.limits()
	nrec := d.count(6)
	for k := 0; k < nrec && d.err == nil; k++ {
		key := d.str()
		gone := d.bool()
		first, last, total := d.i(), d.i(), d.i()
		capped := d.bool()
		nslots := d.count(2)
		slots := make([]slot, 0, nslots)
		for i := 0; i < nslots; i++ {
			slots = append(slots, slot{at: d.i(), n: d.i()})
		}
		nvals := d.count(1)
		var vals []string
		var hashes []uint64
		for i := 0; i < nvals; i++ {
			if hasValues {
				vals = append(vals, d.str())
			} else {
				hashes = append(hashes, d.u())
			}
		}
		if d.err != nil || len(key) > w.cfg.MaxKeyBytes {
			continue
		}
		if old := w.o.get(key); old != nil && !gone {
			w.o.detach(old)
			w.free(old)
		}
		need := winRecBytes + winValsBytes + int64(len(key)) + slotBytes*2*int64(len(slots)) + (setEntry+hashBytes)*int64(nvals)
		for _, v := range vals {
			need += stringBytes*2 + int64(len(v))
		}
		if err := w.acct.reserve(need); err != nil {
			return err
		}
		var n *node[winRec]
		if gone {
			n = &node[winRec]{key: key}
			w.resize(n)
		} else {
			w.makeRoom(floorDiv(last, w.res))
			n = w.insert(key)
		}
		r := &n.val
		r.first, r.last, r.total, r.capped = first, last, total, capped
		for _, s := range slots {
			at := floorDiv(s.at, w.res)
			if s.n <= 0 {
				continue
			}
			if r.n > 0 {
				if l := &r.ring[r.at(r.n-1)]; l.at >= at {
					l.n += s.n
					r.count += s.n
					continue
				}
			}
			if int(r.n) == len(r.ring) {
				w.grow(r)
			}
			r.ring[r.at(r.n)] = slot{at: at, n: s.n}
			r.n++
			r.count += s.n
		}
		for _, v := range vals {
			w.addValue(r, v)
		}
		for _, h := range hashes {
			if r.hasHash(h) {
				continue
			}
			if int(r.nh) >= w.cfg.Distinct {
				r.capped = true
				break
			}
			w.addHash(r, h)
		}
		w.resize(n)
		if gone {
			w.pushGone(n)
		} else {
			w.trim(n, 0)
		}
	}
	if d.err != nil {
		return d.err
	}
	return w.acct.sync()
}
