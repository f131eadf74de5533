package watermark

import (
	"errors"
	"math/rand/v2"
	"testing"
)

func TestAdvanceOverDeliveredPrefix(t *testing.T) {
	w := New[int64](100)
	a := w.Add(110, 10)
	b := w.Add(120, 10)
	c := w.Add(130, 10)
	if passed, moved := w.Settle(b, nil); moved || passed != 0 || w.Pos() != 100 {
		t.Fatalf("b first: moved %v to %d", moved, w.Pos())
	}
	if passed, moved := w.Settle(a, nil); !moved || passed != 20 || w.Pos() != 120 {
		t.Fatalf("then a: passed %d, at %d", passed, w.Pos())
	}
	if w.InFlight() != 1 || w.Idle() {
		t.Fatalf("in flight %d", w.InFlight())
	}
	if _, moved := w.Settle(a, nil); moved {
		t.Fatal("settling twice moved")
	}
	w.Settle(c, nil)
	if w.Pos() != 130 || !w.Idle() {
		t.Fatalf("at %d, idle %v", w.Pos(), w.Idle())
	}
}

func TestSkip(t *testing.T) {
	w := New(0)
	if !w.Skip(5) || w.Pos() != 5 {
		t.Fatal("skip with nothing in flight")
	}
	a := w.Add(10, 1)
	if w.Skip(15) || w.Pos() != 5 {
		t.Fatal("skip behind a batch in flight moved")
	}
	w.Settle(a, nil)
	if w.Pos() != 15 {
		t.Fatalf("at %d, want 15 (the skip passed with the batch)", w.Pos())
	}
}

// A failure stops the line for good: what is delivered before it still
// counts, what settles behind it is dropped, what is in flight is waited for.
func TestFailureStops(t *testing.T) {
	w := New(0)
	a := w.Add(1, 1)
	b := w.Add(2, 1)
	c := w.Add(3, 1)
	w.Settle(b, errors.New("stopped"))
	w.Settle(c, nil)
	if w.InFlight() != 1 || !w.Failed() {
		t.Fatalf("in flight %d failed %v", w.InFlight(), w.Failed())
	}
	w.Settle(a, nil)
	if w.Pos() != 1 {
		t.Fatalf("at %d, want 1: up to the failed batch, not past it", w.Pos())
	}
	if w.Skip(9) || w.Pos() != 1 {
		t.Fatal("skip passed a failure")
	}
	if len(w.marks) > 1 {
		t.Fatalf("%d marks kept behind the failure", len(w.marks))
	}
}

// Against a model: random add and settle orders; the position is always
// the end of the longest delivered prefix.
func TestModel(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for round := range 200 {
		w := New(0)
		var marks []*Mark[int]
		var done []bool
		end := 0
		for range 200 {
			if len(marks) == 0 || r.IntN(2) == 0 {
				end += 1 + r.IntN(5)
				marks = append(marks, w.Add(end, 1))
				done = append(done, false)
				continue
			}
			i := r.IntN(len(marks))
			w.Settle(marks[i], nil)
			done[i] = true
			want := 0
			for j := range marks {
				if !done[j] {
					break
				}
				want = marks[j].End
			}
			if w.Pos() != want {
				t.Fatalf("round %d: at %d, want %d", round, w.Pos(), want)
			}
		}
	}
}
