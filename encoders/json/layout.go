package json

import (
	"hash/maphash"

	"github.com/ternlog/tern/pipeline"
)

// A layout is what flat mode writes around the field values of messages
// whose field names are, in order, names: keys, commas, braces. Working it
// out (repeated names, nesting) costs more than writing the values, and
// most streams send few distinct shapes, so the encoder records the layout
// of a shape it meets a second time and replays it after that.
//
// The state is bounded: nLayouts layouts of at most maxLayoutFields names
// and maxLayoutBytes bytes of names each, owned copies. Recording is
// rationed (Encoder.credit), so a stream of ever new shapes costs about
// what it cost without layouts.
type layout struct {
	first    bool     // no header precedes the fields
	names    []string // copies, in one allocation
	lit      []byte   // the bytes between values, all slots
	slots    []slot
	groups   []int32 // field indices, slots' groups one after another
	tail     int32   // lit[tail:] follows the last value
	replaced int     // U+FFFD bytes the keys cost, counted at each use
}

// slot is one member's value: lit[from:to] goes before it, then the values
// of the fields groups[g:h] (a name and its repeats).
type slot struct {
	from, to int32
	g, h     int32
}

const (
	nLayouts        = 16
	maxLayoutFields = 64
	maxLayoutBytes  = 4 << 10
)

// shapeHash mixes what tells shapes apart cheaply: the number of fields
// and each name's length, first and last byte. Layouts found through it
// are checked name by name.
func shapeHash(fs []pipeline.Field, first bool) uint64 {
	h := uint64(len(fs))<<1 | 1
	if first {
		h ^= 0x5bd1e995
	}
	for i := range fs {
		name := fs[i].Name
		var fp uint64
		if name != "" {
			fp = uint64(len(name))<<16 | uint64(name[0])<<8 | uint64(name[len(name)-1])
		}
		h = (h ^ fp) * 0x9E3779B97F4A7C15
	}
	return h ^ h>>29
}

// shapeID identifies fs's shape exactly enough to decide whether to record
// it: shapeHash is cheap but easy to collide (names alike but for a middle
// byte), and a sender could make every message look like one met before.
// It runs only when no layout matched.
func (e *Encoder) shapeID(fs []pipeline.Field, first bool) uint64 {
	var h maphash.Hash
	h.SetSeed(e.seed)
	if first {
		h.WriteByte(1)
	}
	for i := range fs {
		h.WriteString(fs[i].Name)
		h.WriteByte(0)
	}
	return h.Sum64()
}

// layoutFor returns the layout recorded for fs's names, or nil.
func (e *Encoder) layoutFor(fs []pipeline.Field, first bool, h uint64) *layout {
	l := e.layouts[h%nLayouts]
	if l == nil || l.first != first || len(l.names) != len(fs) {
		return nil
	}
	for i := range fs {
		if fs[i].Name != l.names[i] {
			return nil
		}
	}
	return l
}

// replay writes fs's members as l lays them out.
func (e *Encoder) replay(dst []byte, fs []pipeline.Field, l *layout) ([]byte, int) {
	replaced := l.replaced
	for i := range l.slots {
		s := &l.slots[i]
		dst = append(dst, l.lit[s.from:s.to]...)
		var n int
		dst, n = writeGroup(dst, fs, l.groups[s.g:s.h])
		replaced += n
	}
	return append(dst, l.lit[l.tail:]...), replaced
}

// recorder notes, while members writes a message, the bytes between its
// values: what a layout needs.
type recorder struct {
	mark   int // in dst, the end of the last value written (or the start)
	l      *layout
	values int // U+FFFD bytes in values, not in keys
}

// value is called by appendValues before it writes the values of group:
// the bytes since the last value are the slot's.
func (r *recorder) value(dst []byte, group []int32) {
	l := r.l
	from, g := int32(len(l.lit)), int32(len(l.groups))
	l.lit = append(l.lit, dst[r.mark:]...)
	l.groups = append(l.groups, group...)
	l.slots = append(l.slots, slot{from: from, to: int32(len(l.lit)), g: g, h: int32(len(l.groups))})
}

// record starts recording fs's layout, when fs is small enough to keep.
func (e *Encoder) record(fs []pipeline.Field, first bool, start int) *recorder {
	if len(fs) > maxLayoutFields {
		return nil
	}
	size := 0
	for i := range fs {
		size += len(fs[i].Name)
	}
	if size > maxLayoutBytes {
		return nil
	}
	buf := make([]byte, 0, size)
	for i := range fs {
		buf = append(buf, fs[i].Name...)
	}
	all := string(buf) // one copy for all the names
	names := make([]string, len(fs))
	at := 0
	for i := range fs {
		names[i] = all[at : at+len(fs[i].Name)]
		at += len(fs[i].Name)
	}
	// Sized for the usual keys and separators, so that recording costs
	// a handful of allocations.
	l := &layout{first: first, names: names,
		lit: make([]byte, 0, 2*size+8*len(fs)+8), slots: make([]slot, 0, len(fs)), groups: make([]int32, 0, len(fs))}
	e.recorder = recorder{mark: start, l: l}
	return &e.recorder
}
