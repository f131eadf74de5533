// Package watermark is how an input learns how far it may advance its
// position (a Kafka offset to commit, a file checkpoint): batches are
// handed on in order and acknowledged in any order, each output settling
// on its own; the position moves only over the contiguous prefix of
// delivered batches, so it never covers a record that is still in flight
// or failed. A failed batch stops the position for good (the process is
// stopping, or the input must read again from there after a restart).
//
// A Line is not safe for concurrent use: its owner guards it with the
// mutex that guards the rest of its state.
package watermark

// Mark is one batch on a Line: the position just after it, and a weight
// (its records or lines) the owner counts.
type Mark[P any] struct {
	End    P
	Weight int
	state  uint8
}

const (
	pending uint8 = iota
	delivered
	failed
)

// Settled reports whether m was settled.
func (m *Mark[P]) Settled() bool { return m.state != pending }

// Line is the position of one source (a partition, a file) and its marks
// not yet passed, in order.
type Line[P any] struct {
	pos    P
	marks  []*Mark[P]
	failed bool
}

// New returns a line at position start.
func New[P any](start P) *Line[P] { return &Line[P]{pos: start} }

// Pos is the position: everything before it is delivered.
func (w *Line[P]) Pos() P { return w.pos }

// Set moves the position to p outright (the source was read from p on):
// only valid with no mark in flight.
func (w *Line[P]) Set(p P) { w.pos = p }

// Add hands on a batch that ends at end; Settle it when it is delivered or
// failed.
func (w *Line[P]) Add(end P, weight int) *Mark[P] {
	m := &Mark[P]{End: end, Weight: weight}
	w.marks = append(w.marks, m)
	return m
}

// Skip records a stretch with nothing to deliver (bytes skipped, records
// filtered) ending at end: the position passes it as soon as every batch
// before it is delivered. It reports whether the position moved.
func (w *Line[P]) Skip(end P) bool {
	if w.failed {
		return false
	}
	if len(w.marks) == 0 {
		w.pos = end
		return true
	}
	w.marks = append(w.marks, &Mark[P]{End: end, state: delivered})
	return false
}

// Settle records the fate of m (err nil: delivered) and advances the
// position over the delivered prefix, up to a failed batch at most. It
// returns the weight the position passed and whether it moved. Settling a
// mark twice changes nothing.
func (w *Line[P]) Settle(m *Mark[P], err error) (passed int, moved bool) {
	if m.state != pending {
		return 0, false
	}
	if err != nil {
		m.state = failed
		w.failed = true
	} else {
		m.state = delivered
	}
	n := 0
	for n < len(w.marks) && w.marks[n].state == delivered {
		w.pos = w.marks[n].End
		passed += w.marks[n].Weight
		n++
	}
	if n > 0 {
		copy(w.marks, w.marks[n:])
		clear(w.marks[len(w.marks)-n:])
		w.marks = w.marks[:len(w.marks)-n]
	}
	if w.failed {
		// Nothing behind a failure is ever passed: keep only the marks
		// up to it and those still in flight (their owner waits for them).
		kept := w.marks[:0]
		behind := false
		for _, x := range w.marks {
			if !behind || x.state == pending {
				kept = append(kept, x)
			}
			behind = behind || x.state == failed
		}
		clear(w.marks[len(kept):])
		w.marks = kept
	}
	return passed, n > 0
}

// InFlight counts the marks handed on and not yet settled.
func (w *Line[P]) InFlight() int {
	n := 0
	for _, m := range w.marks {
		if m.state == pending {
			n++
		}
	}
	return n
}

// Idle reports whether no mark waits on the line (all passed, none in
// flight).
func (w *Line[P]) Idle() bool { return len(w.marks) == 0 }

// Failed reports whether a batch failed: the position is final.
func (w *Line[P]) Failed() bool { return w.failed }
