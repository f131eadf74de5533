package backoff

import (
	"testing"
	"time"
)

func TestDoublesToTheCapWithJitter(t *testing.T) {
	b := New(10*time.Millisecond, 75*time.Millisecond)
	b.Jitter = 5 * time.Millisecond
	want := []time.Duration{10, 20, 40, 75, 75}
	for i, w := range want {
		d := b.Next()
		if lo, hi := w*time.Millisecond, w*time.Millisecond+b.Jitter; d < lo || d >= hi {
			t.Fatalf("attempt %d: %v, want in [%v, %v)", i, d, lo, hi)
		}
	}
	b.Reset()
	if d := b.Next(); d >= 15*time.Millisecond {
		t.Fatalf("after Reset: %v", d)
	}
}

func TestDefaults(t *testing.T) {
	b := New(0, 0)
	if b.Base != 100*time.Millisecond || b.Max != b.Base || b.Jitter != b.Base {
		t.Fatalf("%+v", b)
	}
	b.Jitter = 0
	if d := b.Next(); d != 100*time.Millisecond {
		t.Fatal(d)
	}
}
