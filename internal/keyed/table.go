package keyed

import "errors"

// Value is a scalar a Table holds: a string, a number or a boolean.
type Value struct {
	Kind ValueKind
	Num  float64
	Str  string
	Bool bool
}

// ValueKind tells which field of a Value is set.
type ValueKind uint8

// Value kinds.
const (
	KindNil ValueKind = iota
	KindNumber
	KindString
	KindBool
)

// TableConfig sets up a Table.
type TableConfig struct {
	Limits
}

// Table is a keyed table of scalars bounded by MaxKeys and MaxBytes: when
// full, the least recently used key (read or written) is evicted and
// counted. Strings longer than MaxKeyBytes are refused.
type Table struct {
	cfg  TableConfig
	o    order[Value]
	acct accounting
}

const tableRecBytes = nodeBytes + 48

// NewTable returns a Table; budget may be nil.
func NewTable(cfg TableConfig, budget Budget) (*Table, error) {
	if err := checkLimits(cfg.Limits); err != nil {
		return nil, err
	}
	cfg.Limits = cfg.Limits.withDefaults()
	return &Table{cfg: cfg, o: newOrder[Value](), acct: accounting{budget: budget}}, nil
}

// Config returns the effective configuration.
func (t *Table) Config() TableConfig { return t.cfg }

// Stats returns the gauges and counters.
func (t *Table) Stats() Stats {
	s := t.acct.stats
	s.Keys, s.Bytes = t.o.len(), t.acct.bytes
	return s
}

// Close releases the bytes charged to the budget.
func (t *Table) Close() { t.acct.Close() }

func recBytes(key string, v Value) int64 { return tableRecBytes + int64(len(key)+len(v.Str)) }

// Get returns key's value and marks it recently used.
func (t *Table) Get(key string) (Value, bool) {
	n := t.o.get(key)
	if n == nil {
		return Value{}, false
	}
	t.o.moveBack(n)
	return n.val, true
}

// Set stores v under key (a nil value deletes it).
func (t *Table) Set(key string, v Value) error {
	if v.Kind == KindNil {
		t.Delete(key)
		return nil
	}
	if len(key) > t.cfg.MaxKeyBytes || len(v.Str) > t.cfg.MaxKeyBytes {
		t.acct.stats.Rejected++
		return ErrTooLong
	}
	need := recBytes(key, v)
	old := t.o.get(key)
	for t.acct.bytes+need > t.cfg.MaxBytes && t.o.head != nil && t.o.head != old {
		t.evictFront()
	}
	if err := t.acct.reserve(need); err != nil {
		return err
	}
	if v.Kind == KindString {
		v.Str = clone(v.Str)
	}
	n := t.o.get(key)
	if n != nil {
		t.acct.bytes += recBytes(key, v) - recBytes(key, n.val)
		n.val = v
		t.o.moveBack(n)
	} else {
		for t.o.len() >= t.cfg.MaxKeys {
			t.evictFront()
		}
		n = t.o.insert(clone(key))
		n.val = v
		t.acct.bytes += recBytes(key, v)
	}
	for t.acct.bytes > t.cfg.MaxBytes && t.o.head != n {
		t.evictFront()
	}
	return t.acct.sync()
}

// Incr adds d to key's number (a missing key counts from 0) and returns
// the sum.
func (t *Table) Incr(key string, d float64) (float64, error) {
	if n := t.o.get(key); n != nil {
		if n.val.Kind != KindNumber {
			return 0, ErrNotNumber
		}
		n.val.Num += d
		t.o.moveBack(n)
		return n.val.Num, nil
	}
	return d, t.Set(key, Value{Kind: KindNumber, Num: d})
}

// ErrNotNumber is Incr's error for a key whose value is not a number.
var ErrNotNumber = errors.New("the value is not a number")

// Delete forgets key.
func (t *Table) Delete(key string) {
	if n := t.o.get(key); n != nil {
		t.o.detach(n)
		t.acct.bytes -= recBytes(n.key, n.val)
		t.o.recycle(n, func(v *Value) { *v = Value{} })
		_ = t.acct.sync()
	}
}

func (t *Table) evictFront() {
	h := t.o.head
	t.o.detach(h)
	t.acct.bytes -= recBytes(h.key, h.val)
	t.acct.stats.Evictions++
	t.o.recycle(h, func(v *Value) { *v = Value{} })
}

// Len returns the number of keys.
func (t *Table) Len() int { return t.o.len() }

// Each calls f for every key from the least to the most recently used,
// without changing the order, until f returns false.
func (t *Table) Each(f func(key string, v Value) bool) {
	for n := t.o.head; n != nil; n = n.next {
		if !f(n.key, n.val) {
			return
		}
	}
}

// Snapshot appends the table's keys (least recently used first) to b.
func (t *Table) Snapshot(b []byte) []byte {
	e := encoder{b: b}
	e.byte(tagTable)
	e.byte(snapshotVersion)
	e.limits(t.cfg.Limits)
	e.u(uint64(t.o.len()))
	for n := t.o.head; n != nil; n = n.next {
		e.str(n.key)
		e.byte(byte(n.val.Kind))
		switch n.val.Kind {
		case KindNumber:
			e.f(n.val.Num)
		case KindString:
			e.str(n.val.Str)
		case KindBool:
			e.bool(n.val.Bool)
		}
	}
	return e.b
}

// TableConfigOf returns the configuration a table snapshot was taken with.
func TableConfigOf(snap []byte) (TableConfig, error) {
	d := decoder{b: snap}
	d.header(tagTable)
	return TableConfig{Limits: d.limits()}, d.err
}

// Load merges a snapshot into t (keys beyond its caps are evicted, least
// recently used first).
func (t *Table) Load(snap []byte) error {
	if _, err := TableConfigOf(snap); err != nil {
		return err
	}
	d := decoder{b: snap}
	d.header(tagTable)
	d.limits()
	n := d.count(2)
	for i := 0; i < n && d.err == nil; i++ {
		key := d.str()
		v := Value{Kind: ValueKind(d.byte())}
		switch v.Kind {
		case KindNumber:
			v.Num = d.f()
		case KindString:
			v.Str = d.str()
		case KindBool:
			v.Bool = d.bool()
		default:
			d.fail()
		}
		if d.err != nil {
			break
		}
		if err := t.Set(key, v); err != nil && err != ErrTooLong {
			return err
		}
	}
	return d.err
}
