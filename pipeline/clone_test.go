package pipeline

import (
	"testing"
	"unsafe"
)

// sharesMemory reports whether s points into [lo, hi).
func sharesMemory(s string, lo, hi uintptr) bool {
	if s == "" {
		return false
	}
	p := uintptr(unsafe.Pointer(unsafe.StringData(s)))
	return p >= lo && p < hi
}

func TestDeepCloneSharesNothingWithTheBatch(t *testing.T) {
	b := NewBatch()
	m := b.Add()
	m.Type = b.Str([]byte("auth"))
	m.Logger = b.Str([]byte("sshd"))
	m.Payload = b.Str([]byte("Failed password for root"))
	m.Hostname = b.Str([]byte("h1"))
	m.EnvVersion = b.Str([]byte("0.8"))
	m.AddString(b.Str([]byte("user")), b.Str([]byte("root")))
	f := NewField(b.Str([]byte("addrs")), TypeString, b.Str([]byte("ipv4")), StringValue(b.Str([]byte("10.0.0.1"))), StringValue(b.Str([]byte("10.0.0.2"))))
	f.AppendUnset()
	m.AddField(f)
	m.AddBytes("raw", []byte{0, 1, 2})
	m.AddInt("n", 42)
	lo := uintptr(unsafe.Pointer(unsafe.SliceData(b.chunk[:cap(b.chunk)])))
	hi := lo + uintptr(cap(b.chunk))

	c := m.DeepClone()
	if !c.Equal(m) {
		t.Fatalf("the clone differs from the original")
	}
	for _, s := range []string{c.Type, c.Logger, c.Payload, c.Hostname, c.EnvVersion} {
		if sharesMemory(s, lo, hi) {
			t.Errorf("header string %q still points into the batch's chunk", s)
		}
	}
	for i := range c.Fields {
		g := &c.Fields[i]
		if sharesMemory(g.Name, lo, hi) || sharesMemory(g.Representation(), lo, hi) {
			t.Errorf("field %q: name or representation points into the batch's chunk", g.Name)
		}
		for j := 0; j < g.Len(); j++ {
			if sharesMemory(g.Value(j).s, lo, hi) {
				t.Errorf("field %q value %d points into the batch's chunk", g.Name, j)
			}
		}
	}
	if !c.Fields[1].Unset(2) {
		t.Errorf("the unset slot was not kept")
	}
	// The clone's values slice is its own.
	c.Fields[1].SetValue(1, StringValue("x"))
	if m.Fields[1].Value(1).Str() != "10.0.0.2" {
		t.Errorf("changing the clone changed the original")
	}
}

func TestDeepCloneAllocations(t *testing.T) {
	m := NewMessage()
	m.Type, m.Payload = "t", "payload"
	m.AddString("a", "b")
	m.AddInt("n", 1)
	// The message, its fields and one buffer for every string.
	if n := testing.AllocsPerRun(100, func() { _ = m.DeepClone() }); n > 3 {
		t.Errorf("DeepClone made %v allocations, want at most 3", n)
	}
}
