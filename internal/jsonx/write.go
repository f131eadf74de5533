// Package jsonx holds the JSON reading and writing primitives shared by the
// canonical message codec (pipeline), the json decoder and the json encoder:
// a string writer, a number writer and an allocation-free scanner. It does no
// reflection and keeps no state.
package jsonx

import (
	"math"
	"math/bits"
	"slices"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

const hexDigits = "0123456789abcdef"

// safe[c] is true for the ASCII bytes that appear verbatim inside a JSON
// string.
var safe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// load8 reads 8 bytes of s at i, little-endian (the compiler merges the loads).
func load8(s string, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// load4 reads 4 bytes of s at i, little-endian.
func load4(s string, i int) uint32 {
	s = s[i : i+4]
	return uint32(s[0]) | uint32(s[1])<<8 | uint32(s[2])<<16 | uint32(s[3])<<24
}

// nextAttention returns the index of the first byte of s at or after i
// that a JSON string cannot hold as it is (a control byte, '"', '\\') or
// that starts a multi-byte sequence (>= 0x80), or len(s). It tests eight
// bytes at a time, sixteen while it can (two independent words keep the
// core busier than one), and ends on a last word that overlaps the one
// before rather than byte by byte.
func nextAttention(s string, i int) int {
	if hasAVX2 && len(s)-i >= 32 {
		n := (len(s) - i) &^ 31
		if k := attention32(unsafe.StringData(s[i:]), n); k < n {
			return i + k
		}
		i += n
	}
	// The masks as variables: as constants, the compiler loads each 64-bit
	// immediate again in every round.
	l, h, sp, q, bs := swar[0], swar[1], swar[2], swar[3], swar[4]
	for ; i+16 <= len(s); i += 16 {
		x, y := load8(s, i), load8(s, i+8)
		qx, bx, qy, by := x^q, x^bs, y^q, y^bs
		a := ((x-sp)&^x | (qx-l)&^qx | (bx-l)&^bx | x) & h
		b := ((y-sp)&^y | (qy-l)&^qy | (by-l)&^by | y) & h
		if a|b != 0 {
			if a != 0 {
				return i + bits.TrailingZeros64(a)>>3
			}
			return i + 8 + bits.TrailingZeros64(b)>>3
		}
	}
	for ; i+8 <= len(s); i += 8 {
		if m := attention8(load8(s, i)); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	if i < len(s) && len(s) >= 8 {
		// The last bytes, in the word that ends with them. The bytes
		// before i in it are not ours to judge, and a borrow from one
		// may mark a byte after it: a mark sends us to the byte loop,
		// which ends within eight bytes.
		j := len(s) - 8
		if attention8(load8(s, j))>>(8*(i-j)) == 0 {
			return len(s)
		}
	} else if n := len(s) - i; n >= 4 {
		// A short string (most names): its first and last four bytes,
		// which overlap or meet, in one word. A mark (true, or borrowed
		// from one) sends us to the byte loop.
		if attention8(uint64(load4(s, i))|uint64(load4(s, len(s)-4))<<32) == 0 {
			return len(s)
		}
	}
	for ; i < len(s); i++ {
		if c := s[i]; c >= utf8.RuneSelf || !safe[c] {
			return i
		}
	}
	return i
}

// swar holds lsb, msb and the space, quote and backslash bytes repeated.
var swar = [5]uint64{lsb, msb, lsb * 0x20, lsb * '"', lsb * '\\'}

// attention8 marks (with its high bit) each byte of x that nextAttention
// stops at. A marked byte may also mark the bytes above it (borrows), so
// only the lowest mark is exact, and no mark means no such byte.
func attention8(x uint64) uint64 {
	return (special8(x) | x) & msb
}

// AppendString appends s as a quoted JSON string. It escapes '"', '\\',
// control characters (\n, \r, \t in short form, others as \u00XX) and
// U+2028/U+2029, and does no HTML escaping. Each byte of an invalid UTF-8
// sequence is written as U+FFFD; replaced counts them.
func AppendString(dst []byte, s string) (out []byte, replaced int) {
	// Fast path: nothing to escape, one copy.
	i := nextAttention(s, 0)
	if i == len(s) {
		n := len(dst)
		dst = slices.Grow(dst, len(s)+2)[:n+len(s)+2]
		dst[n] = '"'
		copy(dst[n+1:], s)
		dst[n+1+len(s)] = '"'
		return dst, 0
	}
	return appendStringSlow(dst, s, i)
}

// appendStringSlow is AppendString from the first byte that needs care.
func appendStringSlow(dst []byte, s string, i int) (out []byte, replaced int) {
	dst = append(dst, '"')
	start := 0
	for i < len(s) {
		if i = nextAttention(s, i); i >= len(s) {
			break
		}
		c := s[i]
		if c < utf8.RuneSelf {
			if safe[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\ufffd"...)
			replaced++
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"'), replaced
}

// AppendFloat appends f as a JSON number: the shortest text that reads back
// to the same float64, in plain decimal for 1e-6 <= |f| < 1e21 and in
// exponent form otherwise (as JavaScript and encoding/json write numbers).
// Integral values get ".0" so that a reader inferring types sees a double.
// NaN and ±Inf, which JSON lacks, are written as the strings "NaN",
// "Infinity" and "-Infinity".
func AppendFloat(dst []byte, f float64) []byte {
	switch {
	case math.IsNaN(f):
		return append(dst, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(dst, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(dst, `"-Infinity"`...)
	}
	abs := math.Abs(f)
	fmt := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		fmt = 'e'
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, fmt, -1, 64)
	if fmt == 'e' {
		// e-07 → e-7, as JavaScript writes it.
		n := len(dst)
		if n-start >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
		return dst
	}
	for _, c := range dst[start:] {
		if c == '.' {
			return dst
		}
	}
	return append(dst, '.', '0')
}

// AppendRaw appends raw, a JSON text, compacted (whitespace between tokens
// removed) with invalid UTF-8 inside strings replaced by U+FFFD. It returns
// ok=false and dst unchanged when raw is not exactly one JSON value, or is
// nested deeper than maxDepth.
func AppendRaw(dst []byte, raw string, maxDepth int) (out []byte, replaced int, ok bool) {
	var s Scanner
	s.Reset(unsafe.Slice(unsafe.StringData(raw), len(raw))) // only read
	if _, err := s.Skip(maxDepth); err != nil || !s.AtEnd() {
		return dst, 0, false
	}
	i := 0
	for i < len(raw) {
		c := raw[i]
		switch c {
		case ' ', '\t', '\n', '\r':
			i++
		case '"':
			// The scanner accepted it, so the string ends at the next
			// unescaped quote and holds no control bytes.
			j := i + 1
			for raw[j] != '"' {
				if raw[j] == '\\' {
					j++
				}
				j++
			}
			var n int
			dst, n = appendValidated(dst, raw[i:j+1])
			replaced += n
			i = j + 1
		default:
			dst = append(dst, c)
			i++
		}
	}
	return dst, replaced, true
}

// appendValidated copies s, the text of a JSON string, replacing each byte
// of an invalid UTF-8 sequence with U+FFFD and escaping U+2028/U+2029 as
// AppendString does.
func appendValidated(dst []byte, s string) ([]byte, int) {
	replaced := 0
	start := 0
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, "\ufffd"...)
			replaced++
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(dst, s[start:]...), replaced
}
