package pipeline

import (
	"fmt"
	"math"
	"unsafe"
)

// ValueType is the type of every value of a field (Heka's value_type).
type ValueType uint8

// The value types, numbered as in Heka's message.proto, which has the first
// five. TypeUnsigned holds unsigned 64-bit integers (Zeek's count) that an
// int64 cannot carry whole.
const (
	TypeString ValueType = iota
	TypeBytes
	TypeInteger
	TypeDouble
	TypeBool
	TypeUnsigned
)

var typeNames = [...]string{"string", "bytes", "integer", "double", "bool", "unsigned"}

func (t ValueType) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return fmt.Sprintf("ValueType(%d)", t)
}

// Known reports whether t is one of the value types.
func (t ValueType) Known() bool { return int(t) < len(typeNames) }

// ParseValueType maps the canonical JSON names back to a ValueType.
func ParseValueType(s string) (ValueType, bool) {
	for i, n := range typeNames {
		if n == s {
			return ValueType(i), true
		}
	}
	return 0, false
}

// Numeric reports whether values of type t are numbers (integer, unsigned or
// double).
func (t ValueType) Numeric() bool {
	return t == TypeInteger || t == TypeUnsigned || t == TypeDouble
}

// Value is one value of a field. Its interpretation comes from the field's
// Type: strings and bytes live in s, integers, unsigned integers, doubles
// and bools in n.
type Value struct {
	s string
	n uint64
}

// unset is the value of a slot that holds nothing (Zeek's unset element
// inside a vector). No other value looks like it: strings keep n at zero
// and numbers keep s empty, and the accessors rely on that to read it as the
// zero value of every type, so code that ignores unset values sees what it
// saw before they existed.
var unset = Value{s: "\x00", n: 0x7ff8_0000_7e57_0000}

// UnsetValue is the value of a slot that holds nothing. Append it with
// Field.AppendUnset; it reads back as null in canonical JSON and nil in
// msgpack, and matches NIL in a matcher.
func UnsetValue() Value { return unset }

// IsUnset reports whether v is the unset value.
func (v Value) IsUnset() bool { return v == unset }

// UintValue makes an unsigned integer value.
func UintValue(u uint64) Value { return Value{n: u} }

// StringValue makes a string value (also used for bytes held as a string).
func StringValue(s string) Value { return Value{s: s} }

// BytesValue makes a bytes value holding a copy of b.
func BytesValue(b []byte) Value { return Value{s: string(b)} }

// IntValue makes an integer value.
func IntValue(i int64) Value { return Value{n: uint64(i)} }

// DoubleValue makes a double value.
func DoubleValue(f float64) Value { return Value{n: math.Float64bits(f)} }

// BoolValue makes a bool value.
func BoolValue(b bool) Value {
	if b {
		return Value{n: 1}
	}
	return Value{}
}

// Str returns a string or bytes value ("" for the unset value).
func (v Value) Str() string {
	if v.n != 0 { // only the unset value has both
		return ""
	}
	return v.s
}

// Bytes returns a bytes value without copying; the result must not be modified.
func (v Value) Bytes() []byte {
	s := v.Str()
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// Int returns an integer value (0 for the unset value).
func (v Value) Int() int64 { return int64(v.num()) }

// Uint returns an unsigned integer value (0 for the unset value).
func (v Value) Uint() uint64 { return v.num() }

// Double returns a double value (0 for the unset value).
func (v Value) Double() float64 { return math.Float64frombits(v.num()) }

// Bool returns a bool value (false for the unset value).
func (v Value) Bool() bool { return v.num() != 0 }

// num is n, or 0 for the unset value (the only number with s set).
func (v Value) num() uint64 {
	if v.s != "" {
		return 0
	}
	return v.n
}

// Field is a named, typed array of values with a representation hint
// (a unit or format such as "ms", "ipv4", "date-time"). A field usually holds
// one value, kept inline so that it costs no allocation; it may hold none
// (Zeek's "(empty)") or many.
//
// A field is 56 bytes: the representation and the values after the first,
// which most fields lack, live out of line, because every byte of a field
// is written by the decoder on one core and read by the outputs on another.
type Field struct {
	Name  string
	Type  ValueType
	flags uint8 // hasUnset; sits in padding, so costs no space
	n     int32 // number of values
	v0    Value
	x     *fieldExt // nil when there is no representation and one value at most
}

// fieldExt holds what few fields have. Copies of a Field share it, as
// copies of a slice share its array: the values a field sees are
// x.more[:n-1], and x.more is extended in place only by a field whose
// values end at its end, so no copy sees its values change but through
// SetValue (Clone gives a field values of its own).
type fieldExt struct {
	repr   string
	more   []Value // values 1..; len(more) >= n-1
	inline [2]Value
}

// commonReprs are the representations tern's decoders set on every record:
// fields that carry one of them and a single value share a read-only
// fieldExt instead of allocating one each.
var commonReprs = [...]fieldExt{
	{repr: "ipv4"}, {repr: "ipv6"}, {repr: "mac"}, {repr: "ns"}, {repr: "ms"},
	{repr: "date-time"}, {repr: "interval"}, {repr: "json"}, {repr: "count"},
	{repr: "port"}, {repr: "subnet"},
}

func commonExt(r string) *fieldExt {
	for i := range commonReprs {
		if commonReprs[i].repr == r {
			return &commonReprs[i]
		}
	}
	return nil
}

// isCommon reports whether x is one of commonReprs, which nobody may change.
func isCommon(x *fieldExt) bool {
	d := uintptr(unsafe.Pointer(x)) - uintptr(unsafe.Pointer(&commonReprs[0]))
	return d < unsafe.Sizeof(commonReprs)
}

const hasUnset = 1 // some value is the unset value

// NewField makes a field of type t holding vals.
func NewField(name string, t ValueType, repr string, vals ...Value) Field {
	f := Field{Name: name, Type: t}
	if repr != "" {
		f.SetRepresentation(repr)
	}
	if len(vals) > 1 {
		f.Grow(len(vals))
	}
	for _, v := range vals {
		f.Append(v)
	}
	return f
}

// Representation is the field's representation hint, "" for none.
func (f *Field) Representation() string {
	if f.x == nil {
		return ""
	}
	return f.x.repr
}

// SetRepresentation sets the representation hint. Copies of f made
// before keep theirs.
func (f *Field) SetRepresentation(r string) {
	if f.x == nil && r == "" || f.x != nil && f.x.repr == r {
		return
	}
	var more []Value
	if f.n > 1 {
		more = f.x.more[: f.n-1 : f.n-1] // an append copies, leaving copies of f theirs
	}
	if more == nil {
		if r == "" {
			f.x = nil
			return
		}
		if c := commonExt(r); c != nil {
			f.x = c
			return
		}
	}
	f.x = &fieldExt{repr: r, more: more}
}

// Len is the number of values.
func (f *Field) Len() int { return int(f.n) }

// Value returns value i (0-based); it panics when i is out of range.
func (f *Field) Value(i int) Value {
	if i == 0 && f.n > 0 {
		return f.v0
	}
	if i < 0 || i >= int(f.n) {
		f.outOfRange(i)
	}
	return f.x.more[i-1]
}

// outOfRange is kept out of Value so that Value inlines.
//
//go:noinline
func (f *Field) outOfRange(i int) {
	panic(fmt.Sprintf("pipeline: field %q has %d values, index %d", f.Name, f.n, i))
}

// Append adds a value; its meaning follows f.Type.
func (f *Field) Append(v Value) {
	if v.n == unset.n && v == unset {
		f.flags |= hasUnset
	}
	if f.n == 0 {
		f.v0 = v
	} else {
		x := f.ownMore(0)
		x.more = append(x.more, v)
	}
	f.n++
}

// ownMore returns f's ext, made its own to extend in place (values
// 1..n-1 and room for extra more) unless it already is: an ext that a copy
// of f has extended, or a common one, is left to its other users.
func (f *Field) ownMore(extra int) *fieldExt {
	x := f.x
	k := max(int(f.n)-1, 0) // values in more
	if x != nil && !isCommon(x) && len(x.more) == k && cap(x.more)-k >= extra {
		return x
	}
	nx := &fieldExt{}
	if x != nil {
		nx.repr = x.repr
	}
	// A short array (a pair of tags, a vector of three) costs this one
	// allocation.
	if c := k + max(extra, 1); c <= len(nx.inline) {
		nx.more = nx.inline[:k]
	} else {
		nx.more = make([]Value, k, c)
	}
	if k > 0 {
		copy(nx.more, x.more[:k])
	}
	f.x = nx
	return nx
}

// Grow makes room for n more values, so a decoder that knows the count
// appends without reallocating.
func (f *Field) Grow(n int) {
	if f.n == 0 {
		n-- // the first goes to v0
	}
	if n > 0 {
		f.ownMore(n)
	}
}

// AppendUnset adds a slot that holds nothing (an unset vector element).
func (f *Field) AppendUnset() { f.Append(unset) }

// HasUnset reports whether any value of f is the unset value, so readers
// that care check each value only when it is true.
func (f *Field) HasUnset() bool { return f.flags&hasUnset != 0 }

// Unset reports whether value i is the unset value.
func (f *Field) Unset(i int) bool { return f.flags&hasUnset != 0 && f.Value(i) == unset }

// SetValue replaces value i.
func (f *Field) SetValue(i int, v Value) {
	if v == unset {
		f.flags |= hasUnset
	}
	if i == 0 && f.n > 0 {
		f.v0 = v
		return
	}
	if i < 0 || i >= int(f.n) {
		f.outOfRange(i)
	}
	f.x.more[i-1] = v
}

// Truncate keeps the first n values.
func (f *Field) Truncate(n int) {
	if n < 0 || n >= int(f.n) {
		return
	}
	f.n = int32(n)
	if n == 0 {
		f.v0 = Value{}
	}
	// x.more keeps its length, which a copy of f may rely on; values past
	// n are no longer f's, and the next Append gives f an ext of its own.
	if n <= 1 && f.x != nil && !isCommon(f.x) {
		r := f.x.repr
		f.x = nil
		f.SetRepresentation(r)
	}
}

// clone returns f with values of its own.
func (f Field) clone() Field {
	if f.x != nil && !isCommon(f.x) {
		x := &fieldExt{repr: f.x.repr}
		if f.n > 1 {
			x.more = append([]Value(nil), f.x.more[:f.n-1]...)
		}
		f.x = x
	}
	return f
}

// Equal reports whether two fields have the same name, type, representation
// and values. Doubles compare by bit pattern, so NaN equals NaN.
func (f *Field) Equal(g *Field) bool {
	if f.Name != g.Name || f.Type != g.Type || f.Representation() != g.Representation() || f.n != g.n {
		return false
	}
	for i := 0; i < int(f.n); i++ {
		if f.Value(i) != g.Value(i) {
			return false
		}
	}
	return true
}

// Equal reports whether two messages are identical, header and fields.
func (m *Message) Equal(o *Message) bool {
	if m.UUID != o.UUID || m.Timestamp != o.Timestamp || m.Type != o.Type || m.Logger != o.Logger ||
		m.Severity != o.Severity || m.Payload != o.Payload || m.EnvVersion != o.EnvVersion ||
		m.Pid != o.Pid || m.Hostname != o.Hostname || len(m.Fields) != len(o.Fields) {
		return false
	}
	for i := range m.Fields {
		if !m.Fields[i].Equal(&o.Fields[i]) {
			return false
		}
	}
	return true
}
