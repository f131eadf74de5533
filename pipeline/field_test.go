package pipeline

import (
	"math"
	"testing"
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
