// Package rfc3339 formats and parses RFC 3339 timestamps held as int64
// nanoseconds since the Unix epoch, without time.Time and without floats.
// It is shared by the codecs (pipeline, decoders, encoders).
package rfc3339

import (
	"encoding/binary"
	"errors"
	"math"
)

// Errors returned by Parse.
var (
	ErrSyntax = errors.New("not RFC 3339")
	ErrRange  = errors.New("out of range")
)

// Digits selects the fraction written by Append.
const (
	Trimmed = -1 // up to 9 digits, trailing zeros removed (Go's RFC3339Nano)
)

const (
	secondsPerDay = 86400
	// Unix day 0 is 1970-01-01; the civil algorithms count from 0000-03-01.
	epochShift = 719468
)

// Append appends ns as UTC "YYYY-MM-DDTHH:MM:SS[.fff]Z". digits is the
// number of fraction digits (0..9), or Trimmed.
func Append(dst []byte, ns int64, digits int) []byte {
	sec, frac := Split(ns)
	dst = AppendDateTime(dst, sec)
	dst = AppendFraction(dst, frac, digits)
	return append(dst, 'Z')
}

// Split returns the whole seconds of ns (rounded down) and the nanoseconds
// after them (0 <= frac < 1e9).
func Split(ns int64) (sec, frac int64) {
	sec, frac = ns/1e9, ns%1e9
	if frac < 0 {
		sec, frac = sec-1, frac+1e9
	}
	return sec, frac
}

// AppendDateTime appends "YYYY-MM-DDTHH:MM:SS" for sec seconds since the
// epoch, in UTC.
func AppendDateTime(dst []byte, sec int64) []byte {
	days, rem := sec/secondsPerDay, sec%secondsPerDay
	if rem < 0 {
		days, rem = days-1, rem+secondsPerDay
	}
	y, mo, d := civil(days)
	var b [19]byte
	put2(b[0:], y/100%100)
	put2(b[2:], y%100)
	b[4] = '-'
	put2(b[5:], mo)
	b[7] = '-'
	put2(b[8:], d)
	b[10] = 'T'
	put2(b[11:], rem/3600)
	b[13] = ':'
	put2(b[14:], rem/60%60)
	b[16] = ':'
	put2(b[17:], rem%60)
	return append(dst, b[:]...)
}

// AppendFraction appends ".fff" for frac nanoseconds (0 <= frac < 1e9):
// digits digits (0..9, none for 0), or up to 9 without trailing zeros
// (nothing when frac is 0) for Trimmed.
func AppendFraction(dst []byte, frac int64, digits int) []byte {
	if digits == 0 || digits == Trimmed && frac == 0 {
		return dst
	}
	// Unsigned 32-bit arithmetic: frac < 1e9, and dividing an int64 by a
	// constant costs a sign fix-up each time.
	u := uint32(frac) % 1e9
	hi, lo := u/100000, u%100000 // 4 digits and 5
	var f [10]byte
	f[0] = '.'
	put2u(f[1:], hi/100)
	put2u(f[3:], hi%100)
	put2u(f[5:], lo/1000)
	put2u(f[7:], lo%1000/10)
	f[9] = byte('0' + lo%10)
	k := digits
	if digits < 0 || digits > 9 {
		k = 9
		if digits < 0 {
			for f[k] == '0' {
				k--
			}
		}
	}
	return append(dst, f[:k+1]...)
}

// put2u writes v (0..99) as two digits.
func put2u(b []byte, v uint32) {
	v %= 100
	_ = b[1]
	b[0], b[1] = pairs[2*v], pairs[2*v+1]
}

const pairs = "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"

// put2 writes v (0..99) as two digits.
func put2(b []byte, v int64) {
	b[1] = pairs[2*v+1]
	b[0] = pairs[2*v]
}

// civil converts days since 1970-01-01 to a proleptic Gregorian date.
func civil(days int64) (y, m, d int64) {
	z := days + epochShift
	era := z
	if era < 0 {
		era -= 146096
	}
	era /= 146097
	doe := z - era*146097                                  // [0, 146096]
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365 // [0, 399]
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100) // [0, 365], from March 1
	mp := (5*doy + 2) / 153                  // [0, 11]
	d = doy - (153*mp+2)/5 + 1
	if mp < 10 {
		m = mp + 3
	} else {
		m = mp - 9
		y++
	}
	return y, m, d
}

// daysFrom converts a proleptic Gregorian date to days since 1970-01-01.
func daysFrom(y, m, d int64) int64 {
	if m <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400
	mp := m - 3
	if m <= 2 {
		mp = m + 9
	}
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - epochShift
}

func isLeap(y int64) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

var monthDays = [13]int64{0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}

// Parse reads "YYYY-MM-DD(T|t| )HH:MM:SS[.frac](Z|z|±HH:MM)". Fraction
// digits past the ninth are ignored. Leap seconds (:60) are refused, as
// Go's time.Parse does.
func Parse(b []byte) (int64, error) {
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || b[13] != ':' || b[16] != ':' {
		return 0, ErrSyntax
	}
	if c := b[10]; c != 'T' && c != 't' && c != ' ' {
		return 0, ErrSyntax
	}
	y, mo, d, h, mi, s, ok := dateTime(b)
	if !ok {
		return 0, ErrSyntax
	}
	if mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59 {
		return 0, ErrSyntax
	}
	if md := monthDays[mo]; d > md && !(mo == 2 && d == 29 && isLeap(y)) {
		return 0, ErrSyntax
	}
	i := 19
	var frac int64
	if b[i] == '.' {
		i++
		start := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			if i-start < 9 {
				frac = frac*10 + int64(b[i]-'0')
			}
			i++
		}
		n := i - start
		if n == 0 {
			return 0, ErrSyntax
		}
		for ; n < 9; n++ {
			frac *= 10
		}
	}
	if i >= len(b) {
		return 0, ErrSyntax
	}
	var off int64
	switch b[i] {
	case 'Z', 'z':
		i++
	case '+', '-':
		if len(b)-i != 6 || b[i+3] != ':' {
			return 0, ErrSyntax
		}
		oh, ok1 := num(b[i+1 : i+3])
		om, ok2 := num(b[i+4 : i+6])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return 0, ErrSyntax
		}
		off = oh*3600 + om*60
		if b[i] == '-' {
			off = -off
		}
		i += 6
	default:
		return 0, ErrSyntax
	}
	if i != len(b) {
		return 0, ErrSyntax
	}
	sec := daysFrom(y, mo, d)*secondsPerDay + h*3600 + mi*60 + s - off
	return FromParts(sec, frac)
}

// FromParts returns sec seconds plus frac nanoseconds (0 <= frac < 1e9) as
// nanoseconds, or ErrRange when that does not fit an int64.
func FromParts(sec, frac int64) (int64, error) {
	const maxSec int64 = math.MaxInt64 / 1_000_000_000 // 9223372036
	if sec > maxSec || sec < -maxSec-1 {
		return 0, ErrRange
	}
	if sec >= 0 {
		if sec == maxSec && frac > math.MaxInt64%1_000_000_000 {
			return 0, ErrRange
		}
		return sec*1e9 + frac, nil
	}
	base := (sec + 1) * 1e9
	delta := frac - 1e9 // in [-1e9, 0)
	if base < math.MinInt64-delta {
		return 0, ErrRange
	}
	return base + delta, nil
}

// dateTime reads the digits of "YYYY-MM-DD?HH:MM:SS" at the start of b
// (at least 19 bytes), checked and read eight bytes at a time; the
// separators are the caller's.
func dateTime(b []byte) (y, mo, d, h, mi, s int64, ok bool) {
	w0 := binary.LittleEndian.Uint64(b)     // "YYYY-MM-"
	w1 := binary.LittleEndian.Uint64(b[8:]) // "DDTHH:MM"
	w2 := uint64(b[17]) | uint64(b[18])<<8  // "SS"
	const (
		m0 = 0x00FFFF00_FFFFFFFF // the digits of w0
		m1 = 0xFFFF00FF_FF00FFFF // and of w1
		m2 = 0xFFFF
	)
	if !digits8(w0, m0) || !digits8(w1, m1) || !digits8(w2, m2) {
		return 0, 0, 0, 0, 0, 0, false
	}
	y = int64(dig(w0, 0)*1000 + dig(w0, 1)*100 + dig(w0, 2)*10 + dig(w0, 3))
	mo = int64(dig(w0, 5)*10 + dig(w0, 6))
	d = int64(dig(w1, 0)*10 + dig(w1, 1))
	h = int64(dig(w1, 3)*10 + dig(w1, 4))
	mi = int64(dig(w1, 6)*10 + dig(w1, 7))
	s = int64(dig(w2, 0)*10 + dig(w2, 1))
	return y, mo, d, h, mi, s, true
}

// digits8 reports whether the bytes of w under mask (0xFF or 0x00 each) are
// all ASCII digits: a high nibble of 3, and a low one that does not carry
// when 6 is added. No byte's test spills into the next.
func digits8(w, mask uint64) bool {
	const hi, lo, six = 0xF0F0F0F0_F0F0F0F0, 0x0F0F0F0F_0F0F0F0F, 0x06060606_06060606
	return w&(mask&hi) == 0x30303030_30303030&mask && ((w&(mask&lo))+(six&mask))&(mask&hi) == 0
}

// dig is the value of the digit in byte i of w.
func dig(w uint64, i uint) uint64 { return w >> (8 * i) & 0xF }

func num(b []byte) (int64, bool) {
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}
