package keyed

import (
	"encoding/binary"
	"errors"
	"math"
)

// Snapshots are a primitive's parameters and records in a compact binary
// form (varints and length-prefixed strings) that the sandbox stores with the
// script's preserved globals. Each starts with the kind's tag and a version.

const snapshotVersion = 1

// Kind tags of snapshots.
const (
	tagWindow   = 'W'
	tagThrottle = 'T'
	tagTopN     = 'N'
	tagTable    = 'L'
)

var errSnapshot = errors.New("corrupt snapshot")

type encoder struct{ b []byte }

func (e *encoder) u(v uint64)   { e.b = binary.AppendUvarint(e.b, v) }
func (e *encoder) i(v int64)    { e.b = binary.AppendVarint(e.b, v) }
func (e *encoder) f(v float64)  { e.u(math.Float64bits(v)) }
func (e *encoder) byte(c byte)  { e.b = append(e.b, c) }
func (e *encoder) str(s string) { e.u(uint64(len(s))); e.b = append(e.b, s...) }
func (e *encoder) bool(v bool) {
	if v {
		e.byte(1)
	} else {
		e.byte(0)
	}
}

type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errSnapshot
	}
	d.b = nil
}

func (d *decoder) u() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) i() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) f() float64 { return math.Float64frombits(d.u()) }

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail()
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) bool() bool { return d.byte() != 0 }

// str returns a copy: the snapshot's bytes are not kept.
func (d *decoder) str() string {
	n := d.u()
	if n > uint64(len(d.b)) {
		d.fail()
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

// count reads a element count that each need at least min bytes, so a
// corrupt count cannot make the reader allocate without bound.
func (d *decoder) count(min int) int {
	n := d.u()
	if n > uint64(len(d.b)/max(min, 1)) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *decoder) header(tag byte) {
	if d.byte() != tag || d.byte() != snapshotVersion {
		d.fail()
	}
}

func (e *encoder) limits(l Limits) {
	e.u(uint64(l.MaxKeys))
	e.u(uint64(l.MaxBytes))
	e.u(uint64(l.MaxKeyBytes))
}

func (d *decoder) limits() Limits {
	return Limits{MaxKeys: int(min(d.u(), 1<<40)), MaxBytes: int64(min(d.u(), 1<<62)), MaxKeyBytes: int(min(d.u(), 1<<40))}
}

// Kind returns the primitive kind a snapshot holds ("window", "throttle",
// "topn", "table") or "".
func Kind(snap []byte) string {
	if len(snap) < 2 || snap[1] != snapshotVersion {
		return ""
	}
	switch snap[0] {
	case tagWindow:
		return "window"
	case tagThrottle:
		return "throttle"
	case tagTopN:
		return "topn"
	case tagTable:
		return "table"
	}
	return ""
}
