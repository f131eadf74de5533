package lua

import (
	"fmt"
	"math"
	"sort"
	"strconv"

	golua "github.com/Shopify/go-lua"

	"github.com/ternlog/tern/internal/alert"
	"github.com/ternlog/tern/pipeline"
)

// The context of an alert (alert{context = …}, alert{http = …},
// alert.raise's info.context) becomes alert.context.<name> fields
// (docs/alerts.md): scalars of the names below with their EVE type, the
// protocol objects Suricata's schema lists (http, tls, dns, flow, files…)
// checked against it, and anything else as given, nested tables as dotted
// names. Nothing is dropped: what does not fit is an error. Sizes are
// bounded (alert.MaxEVEDepth, MaxEVEArray, MaxEVELeaves), as this data
// often comes from the traffic an attacker sends.

type ctxType uint8

const (
	ctxInt ctxType = iota + 1
	ctxString
	ctxBool
	ctxBytes
	ctxInts
	ctxAction
)

// contextTypes are the context names EVE writes as top-level or alert
// keys, and the repeats count of filters/dedupe.
var contextTypes = map[string]ctxType{
	"flow_id": ctxInt, "parent_id": ctxInt, "sensor_id": ctxInt, "pcap_cnt": ctxInt, "tx_id": ctxInt,
	"ip_v": ctxInt, "icmp_type": ctxInt, "icmp_code": ctxInt, "gid": ctxInt, "signature_id": ctxInt,
	"rev": ctxInt, "repeats": ctxInt,
	"vlan":     ctxInts,
	"in_iface": ctxString, "app_proto": ctxString, "host": ctxString, "proto": ctxString,
	"community_id": ctxString, "pkt_src": ctxString, "direction": ctxString, "xff": ctxString,
	"tx_guessed": ctxBool,
	"action":     ctxAction,
	"payload":    ctxBytes, "packet": ctxBytes,
}

type ctxReader struct {
	l      *golua.State
	out    []pipeline.Field
	seen   map[string]bool
	leaves int
	buf    []byte
}

// entries reads every entry of the context table at idx.
func (r *ctxReader) entries(idx int) error {
	idx = r.l.AbsIndex(idx)
	names, err := r.keys(idx, "context", 1)
	if err != nil {
		return err
	}
	for _, k := range names {
		r.l.Field(idx, k)
		err := r.entry(k, -1)
		r.l.Pop(1)
		if err != nil {
			return err
		}
	}
	return nil
}

// entry reads one context entry, name = the value at idx.
func (r *ctxReader) entry(name string, idx int) error {
	l := r.l
	idx = l.AbsIndex(idx)
	if r.seen[name] {
		return fmt.Errorf("context.%s: given twice", name)
	}
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	r.seen[name] = true
	if t, ok := contextTypes[name]; ok {
		return r.typed(name, t, idx)
	}
	if alert.IsEVEObject(name) {
		if !l.IsTable(idx) {
			return fmt.Errorf("context.%s: a table expected (Suricata's %s object)", name, name)
		}
		start := len(r.out)
		if err := r.eve(name, idx, 1); err != nil {
			return err
		}
		if req := alert.MissingEVE(name, r.out[start:]); req != "" {
			return fmt.Errorf("context.%s.%s: required by Suricata's schema", name, req)
		}
		return nil
	}
	return r.free(name, idx, 1)
}

func (r *ctxReader) add(f pipeline.Field) error {
	r.leaves++
	if r.leaves > alert.MaxEVELeaves {
		return fmt.Errorf("context: more than %d values", alert.MaxEVELeaves)
	}
	r.out = append(r.out, f)
	return nil
}

// keys returns the keys of the table at idx, sorted; each must be a string
// and a valid name. where names the table in errors; depth is its level.
func (r *ctxReader) keys(idx int, where string, depth int) ([]string, error) {
	l := r.l
	if depth > alert.MaxEVEDepth {
		return nil, fmt.Errorf("%s: nested deeper than %d levels", where, alert.MaxEVEDepth)
	}
	var names []string
	l.PushNil()
	for l.Next(idx) {
		if l.TypeOf(-2) != golua.TypeString {
			k := tostr(l, -2)
			l.Pop(2)
			return nil, fmt.Errorf("%s: key %s: names are strings", where, k)
		}
		k, _ := l.ToString(-2)
		if !validName(k) {
			l.Pop(2)
			return nil, fmt.Errorf("%s: key %q: names are letters, digits, _ and -, not only digits, at most 64 bytes", where, k)
		}
		names = append(names, k)
		l.Pop(1)
		if len(names) > alert.MaxEVELeaves {
			l.Pop(1)
			return nil, fmt.Errorf("%s: more than %d keys", where, alert.MaxEVELeaves)
		}
	}
	sort.Strings(names)
	return names, nil
}

func validName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	digits := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case '0' <= c && c <= '9':
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '_', c == '-':
			digits = false
		default:
			return false
		}
	}
	return !digits
}

// sequence returns n when the table at idx is a sequence 1..n with no
// other keys; ok false otherwise.
func (r *ctxReader) sequence(idx int, where string) (n int, ok bool, err error) {
	l := r.l
	count := 0
	l.PushNil()
	for l.Next(idx) {
		count++
		num, isNum := l.ToNumber(-2)
		if l.TypeOf(-2) != golua.TypeNumber || !isNum || num != math.Trunc(num) || num < 1 {
			l.Pop(2)
			return 0, false, nil
		}
		l.Pop(1)
	}
	n = golua.LengthEx(l, idx)
	if n != count {
		return 0, false, nil
	}
	if n > alert.MaxEVEArray {
		return 0, false, fmt.Errorf("%s: more than %d elements", where, alert.MaxEVEArray)
	}
	return n, true, nil
}

// typed reads a context entry of contextTypes.
func (r *ctxReader) typed(name string, t ctxType, idx int) error {
	l := r.l
	where := "context." + name
	switch t {
	case ctxInt:
		v, ok := luaInt(l, idx)
		if !ok {
			return fmt.Errorf("%s: integer expected", where)
		}
		return r.add(pipeline.NewField(name, pipeline.TypeInteger, "", pipeline.IntValue(v)))
	case ctxInts:
		f := pipeline.NewField(name, pipeline.TypeInteger, "")
		if v, ok := luaInt(l, idx); ok {
			f.Append(pipeline.IntValue(v))
			return r.add(f)
		}
		n, ok, err := r.sequence(idx, where)
		if err != nil {
			return err
		}
		if !l.IsTable(idx) || !ok || n == 0 {
			return fmt.Errorf("%s: an integer or a list of integers expected", where)
		}
		for i := 1; i <= n; i++ {
			l.RawGetInt(idx, i)
			v, ok := luaInt(l, -1)
			l.Pop(1)
			if !ok {
				return fmt.Errorf("%s: an integer or a list of integers expected", where)
			}
			f.Append(pipeline.IntValue(v))
		}
		return r.add(f)
	case ctxString, ctxAction:
		if tt := l.TypeOf(idx); tt != golua.TypeString && tt != golua.TypeNumber {
			return fmt.Errorf("%s: string expected", where)
		}
		s := tostr(l, idx)
		if t == ctxAction && s != "allowed" && s != "blocked" {
			return fmt.Errorf("%s: allowed or blocked expected, got %q", where, s)
		}
		return r.add(pipeline.NewField(name, pipeline.TypeString, "", pipeline.StringValue(s)))
	case ctxBool:
		if l.TypeOf(idx) != golua.TypeBoolean {
			return fmt.Errorf("%s: boolean expected", where)
		}
		return r.add(pipeline.NewField(name, pipeline.TypeBool, "", pipeline.BoolValue(l.ToBoolean(idx))))
	case ctxBytes:
		if l.TypeOf(idx) != golua.TypeString {
			return fmt.Errorf("%s: string expected", where)
		}
		s, _ := l.ToString(idx)
		return r.add(pipeline.NewField(name, pipeline.TypeBytes, "", pipeline.StringValue(s)))
	}
	return nil
}

// luaInt reads an integral number, or a decimal string (exact 64-bit).
func luaInt(l *golua.State, idx int) (int64, bool) {
	switch l.TypeOf(idx) {
	case golua.TypeNumber:
		n, _ := l.ToNumber(idx)
		if n != math.Trunc(n) || n < -(1<<63) || n >= 1<<63 {
			return 0, false
		}
		return int64(n), true
	case golua.TypeString:
		s, _ := l.ToString(idx)
		v, err := strconv.ParseInt(s, 10, 64)
		return v, err == nil
	}
	return 0, false
}

// scalar converts the Lua scalar at idx to a field value of kind k
// (alert.EVEAny: by its Lua type).
func scalar(l *golua.State, idx int, k alert.EVEKind) (pipeline.ValueType, pipeline.Value, bool) {
	switch k {
	case alert.EVEString, alert.EVEDate:
		if l.TypeOf(idx) != golua.TypeString {
			return 0, pipeline.Value{}, false
		}
		s, _ := l.ToString(idx)
		if k == alert.EVEDate && !alert.ValidEVEDate(s) {
			return 0, pipeline.Value{}, false
		}
		return pipeline.TypeString, pipeline.StringValue(s), true
	case alert.EVEInteger:
		v, ok := luaInt(l, idx)
		return pipeline.TypeInteger, pipeline.IntValue(v), ok
	case alert.EVENumber:
		if l.TypeOf(idx) != golua.TypeNumber {
			return 0, pipeline.Value{}, false
		}
		n, _ := l.ToNumber(idx)
		return pipeline.TypeDouble, pipeline.DoubleValue(n), !math.IsNaN(n) && !math.IsInf(n, 0)
	case alert.EVEBool:
		if l.TypeOf(idx) != golua.TypeBoolean {
			return 0, pipeline.Value{}, false
		}
		return pipeline.TypeBool, pipeline.BoolValue(l.ToBoolean(idx)), true
	case alert.EVEAny:
		switch l.TypeOf(idx) {
		case golua.TypeString:
			s, _ := l.ToString(idx)
			return pipeline.TypeString, pipeline.StringValue(s), true
		case golua.TypeBoolean:
			return pipeline.TypeBool, pipeline.BoolValue(l.ToBoolean(idx)), true
		case golua.TypeNumber:
			n, _ := l.ToNumber(idx)
			if math.IsNaN(n) || math.IsInf(n, 0) {
				return 0, pipeline.Value{}, false
			}
			if n == math.Trunc(n) && math.Abs(n) < 1<<53 {
				return pipeline.TypeInteger, pipeline.IntValue(int64(n)), true
			}
			return pipeline.TypeDouble, pipeline.DoubleValue(n), true
		}
	}
	return 0, pipeline.Value{}, false
}

// eve reads the value at idx for path (below a protocol object) as the
// schema says.
func (r *ctxReader) eve(path string, idx int, depth int) error {
	l := r.l
	where := "context." + path
	var k alert.EVEKey
	var ok bool
	k, r.buf, ok = alert.LookupEVE(path, r.buf)
	if !ok {
		return fmt.Errorf("%s: not a key of Suricata's %s object", where, alert.ContextName(path))
	}
	switch k.Kind {
	case alert.EVEObject:
		if !l.IsTable(idx) {
			return fmt.Errorf("%s: a table expected", where)
		}
		names, err := r.keys(idx, where, depth)
		if err != nil {
			return err
		}
		for _, n := range names {
			l.Field(idx, n)
			err := r.eve(path+"."+n, l.AbsIndex(-1), depth+1)
			l.Pop(1)
			if err != nil {
				return err
			}
		}
		return nil
	case alert.EVEArray:
		if k.Elem != alert.EVEObject && k.Elem != alert.EVEArray && !l.IsTable(idx) {
			// One scalar for a list of scalars.
			t, v, ok := scalar(l, idx, k.Elem)
			if !ok {
				return fmt.Errorf("%s: a list of %s expected", where, k.Elem)
			}
			return r.add(pipeline.NewField(path, t, "", v))
		}
		if !l.IsTable(idx) {
			return fmt.Errorf("%s: a list of %s expected", where, k.Elem)
		}
		if depth > alert.MaxEVEDepth {
			return fmt.Errorf("%s: nested deeper than %d levels", where, alert.MaxEVEDepth)
		}
		n, seq, err := r.sequence(idx, where)
		if err != nil {
			return err
		}
		if !seq {
			return fmt.Errorf("%s: a list expected", where)
		}
		if n == 0 {
			return nil // the schema wants at least one element: write none
		}
		if k.Elem == alert.EVEObject {
			for i := 1; i <= n; i++ {
				l.RawGetInt(idx, i)
				err := r.eve(path+"."+strconv.Itoa(i-1), l.AbsIndex(-1), depth+1)
				l.Pop(1)
				if err != nil {
					return err
				}
			}
			return nil
		}
		var f pipeline.Field
		for i := 1; i <= n; i++ {
			l.RawGetInt(idx, i)
			t, v, ok := scalar(l, -1, k.Elem)
			l.Pop(1)
			if !ok || i > 1 && t != f.Type {
				return fmt.Errorf("%s: a list of %s expected", where, k.Elem)
			}
			if i == 1 {
				f = pipeline.NewField(path, t, "")
			}
			f.Append(v)
		}
		return r.add(f)
	}
	t, v, ok := scalar(l, idx, k.Kind)
	if !ok {
		return fmt.Errorf("%s: %s expected", where, k.Kind)
	}
	return r.add(pipeline.NewField(path, t, "", v))
}

// free reads a context entry the router has no schema for: scalars by
// their Lua type, tables as nested names, lists of scalars as one field
// with several values, lists of tables with 0-based indexes.
func (r *ctxReader) free(path string, idx int, depth int) error {
	l := r.l
	where := "context." + path
	if !l.IsTable(idx) {
		t, v, ok := scalar(l, idx, alert.EVEAny)
		if !ok {
			return fmt.Errorf("%s: string, number, boolean or table expected, got %s", where, golua.TypeNameOf(l, idx))
		}
		return r.add(pipeline.NewField(path, t, "", v))
	}
	if depth > alert.MaxEVEDepth {
		return fmt.Errorf("%s: nested deeper than %d levels", where, alert.MaxEVEDepth)
	}
	n, seq, err := r.sequence(idx, where)
	if err != nil {
		return err
	}
	if seq && n > 0 {
		l.RawGetInt(idx, 1)
		tables := l.IsTable(-1)
		l.Pop(1)
		if tables {
			for i := 1; i <= n; i++ {
				l.RawGetInt(idx, i)
				if !l.IsTable(-1) {
					l.Pop(1)
					return fmt.Errorf("%s: a list mixes tables and values", where)
				}
				err := r.free(path+"."+strconv.Itoa(i-1), l.AbsIndex(-1), depth+1)
				l.Pop(1)
				if err != nil {
					return err
				}
			}
			return nil
		}
		// Integers and other numbers mix: the list is of doubles then.
		types := make([]pipeline.ValueType, n)
		vals := make([]pipeline.Value, n)
		typ := pipeline.ValueType(0)
		for i := range n {
			l.RawGetInt(idx, i+1)
			t, v, ok := scalar(l, -1, alert.EVEAny)
			l.Pop(1)
			num := func(t pipeline.ValueType) bool { return t == pipeline.TypeInteger || t == pipeline.TypeDouble }
			switch {
			case !ok:
				return fmt.Errorf("%s: a list of values of one type expected", where)
			case i == 0:
				typ = t
			case t == typ:
			case num(t) && num(typ):
				typ = pipeline.TypeDouble
			default:
				return fmt.Errorf("%s: a list of values of one type expected", where)
			}
			types[i], vals[i] = t, v
		}
		f := pipeline.NewField(path, typ, "")
		f.Grow(n)
		for i, v := range vals {
			if typ == pipeline.TypeDouble && types[i] == pipeline.TypeInteger {
				v = pipeline.DoubleValue(float64(v.Int()))
			}
			f.Append(v)
		}
		return r.add(f)
	}
	if seq { // empty table
		return nil
	}
	names, err := r.keys(idx, where, depth)
	if err != nil {
		return err
	}
	for _, k := range names {
		l.Field(idx, k)
		err := r.free(path+"."+k, l.AbsIndex(-1), depth+1)
		l.Pop(1)
		if err != nil {
			return err
		}
	}
	return nil
}
