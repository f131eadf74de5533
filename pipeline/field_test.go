package pipeline

import (
	"math"
	"slices"
	"testing"
	"unsafe"
)

// The unset value is told apart from every real value, and reads as the
// zero value of each type, so code that ignores it sees what it saw before.
func TestUnsetValue(t *testing.T) {
	u := UnsetValue()
	if !u.IsUnset() {
		t.Fatal("UnsetValue is not unset")
	}
	if u.Str() != "" || len(u.Bytes()) != 0 || u.Int() != 0 || u.Uint() != 0 || u.Double() != 0 || u.Bool() {
		t.Errorf("unset reads as %q %d %d %v %v", u.Str(), u.Int(), u.Uint(), u.Double(), u.Bool())
	}
	for _, v := range []Value{
		StringValue(""), StringValue("\x00"), BytesValue([]byte{0}), IntValue(0), IntValue(-1),
		IntValue(math.MaxInt64), UintValue(math.MaxUint64), UintValue(0x7ff8_0000_7e57_0000),
		DoubleValue(math.Float64frombits(0x7ff8_0000_7e57_0000)), DoubleValue(0), BoolValue(true),
	} {
		if v.IsUnset() {
			t.Errorf("%+v reads as unset", v)
		}
	}
	if StringValue("\x00").Str() != "\x00" || UintValue(0x7ff8_0000_7e57_0000).Uint() != 0x7ff8_0000_7e57_0000 {
		t.Error("a value that looks half like unset lost its contents")
	}

	f := NewField("v", TypeString, "", StringValue("a"))
	if f.HasUnset() || f.Unset(0) {
		t.Error("a field without unset values reports one")
	}
	f.AppendUnset()
	f.Append(StringValue("c"))
	if !f.HasUnset() || f.Unset(0) || !f.Unset(1) || f.Unset(2) || f.Len() != 3 {
		t.Errorf("unset slots: %v %v %v %v", f.HasUnset(), f.Unset(0), f.Unset(1), f.Unset(2))
	}
	g := NewField("v", TypeString, "", StringValue("a"), StringValue("b"))
	g.SetValue(0, UnsetValue())
	if !g.Unset(0) || g.Unset(1) {
		t.Error("SetValue with the unset value")
	}
	h := NewField("v", TypeUnsigned, "")
	h.Append(UnsetValue()) // Append notices the unset value too
	if !h.Unset(0) {
		t.Error("Append(UnsetValue()) is not unset")
	}
}

// Unsigned values hold the whole uint64 range; FieldInt reads those that
// fit an int64.
func TestUnsignedField(t *testing.T) {
	m := NewMessage()
	m.AddUint("big", math.MaxUint64)
	m.AddUint("small", 42)
	if v := m.FirstField("big").Value(0).Uint(); v != math.MaxUint64 {
		t.Errorf("big = %d", v)
	}
	if _, ok := m.FieldInt("big"); ok {
		t.Error("FieldInt read a count beyond int64")
	}
	if v, ok := m.FieldInt("small"); !ok || v != 42 {
		t.Errorf("FieldInt(small) = %d, %v", v, ok)
	}
	if TypeUnsigned.String() != "unsigned" || !TypeUnsigned.Known() || !TypeUnsigned.Numeric() {
		t.Error("TypeUnsigned's name or kind")
	}
	if vt, ok := ParseValueType("unsigned"); !ok || vt != TypeUnsigned {
		t.Error("ParseValueType(unsigned)")
	}
}

// Validate refuses a registry with two plugins of a kind under one type.
func TestRegistryValidate(t *testing.T) {
	f := func(typ string) Factory[Output] {
		return NewFactory(typ, "", func() struct{} { return struct{}{} }, func(Settings, struct{}) (Output, error) { return nil, nil })
	}
	r := &Registry{Outputs: []Factory[Output]{f("file"), f("http")}}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	r.Outputs = append(r.Outputs, f("file"))
	if err := r.Validate(); err == nil {
		t.Fatal("a type registered twice was accepted")
	}
}

// A Field is 56 bytes: the representation and the values after the first
// live out of line (fieldExt), since every byte of a field crosses from the
// decoding core to the encoding one.
func TestFieldSize(t *testing.T) {
	if s := unsafe.Sizeof(Field{}); s != 56 {
		t.Errorf("Field is %d bytes, want 56", s)
	}
}

// Copies of a field share its out-of-line values the way copies of a slice
// share their array, but never see their own values change when another
// copy appends, truncates or takes a new representation; the shared
// representations nobody may change stay as they were.
func TestFieldCopiesKeepTheirValues(t *testing.T) {
	s := StringValue
	vals := func(f *Field) []string {
		var out []string
		for i := 0; i < f.Len(); i++ {
			out = append(out, f.Value(i).Str())
		}
		return out
	}
	a := NewField("f", TypeString, "ipv4", s("1"), s("2"))
	b := a // shares a's ext
	a.Append(s("3"))
	b.Append(s("x"))
	if got := vals(&a); !slices.Equal(got, []string{"1", "2", "3"}) {
		t.Errorf("a = %q", got)
	}
	if got := vals(&b); !slices.Equal(got, []string{"1", "2", "x"}) {
		t.Errorf("b = %q", got)
	}
	c := a
	c.Truncate(1)
	c.Append(s("y"))
	c.SetRepresentation("mac")
	if got := vals(&a); !slices.Equal(got, []string{"1", "2", "3"}) || a.Representation() != "ipv4" {
		t.Errorf("a after c changed = %q %q", got, a.Representation())
	}
	if got := vals(&c); !slices.Equal(got, []string{"1", "y"}) || c.Representation() != "mac" {
		t.Errorf("c = %q %q", got, c.Representation())
	}

	// One value and a common representation: no ext of its own, and
	// growing it leaves the common one alone.
	d := NewField("d", TypeString, "ipv4", s("10.0.0.1"))
	if !isCommon(d.x) {
		t.Fatal("a single-valued ipv4 field has an ext of its own")
	}
	d.Append(s("10.0.0.2"))
	if isCommon(d.x) || commonExt("ipv4").more != nil || commonExt("ipv4").repr != "ipv4" {
		t.Fatal("Append changed a common ext")
	}
	e := NewField("e", TypeInteger, "")
	e.Grow(5)
	for i := range 5 {
		e.Append(IntValue(int64(i)))
	}
	if e.Len() != 5 || e.Value(4).Int() != 4 || e.Representation() != "" {
		t.Errorf("grown field: %d values, last %d", e.Len(), e.Value(4).Int())
	}
	g := e.clone()
	g.SetValue(1, IntValue(9))
	if e.Value(1).Int() != 1 {
		t.Error("SetValue on a clone changed the original")
	}
	if allocs := testing.AllocsPerRun(100, func() {
		f := NewField("ts", TypeInteger, "ns", IntValue(1))
		f.SetRepresentation("date-time")
		if f.Representation() != "date-time" {
			t.Fatal("repr")
		}
	}); allocs != 0 {
		t.Errorf("a single-valued field with a common representation allocates %.0f times", allocs)
	}
}
