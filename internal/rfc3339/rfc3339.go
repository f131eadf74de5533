// Package rfc3339 formats and parses RFC 3339 timestamps held as int64
// nanoseconds since the Unix epoch, without time.Time and without floats.
// It is shared by the codecs (pipeline, decoders, encoders).
package rfc3339

import (
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
	sec := ns / 1e9
	frac := ns % 1e9
	if frac < 0 {
		frac += 1e9
		sec--
	}
	days := sec / secondsPerDay
	rem := sec % secondsPerDay
	if rem < 0 {
		rem += secondsPerDay
		days--
	}
	y, mo, d := civil(days)
	var b [35]byte
	put4(b[0:], y)
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
	n := 19
	if digits != 0 {
		var f [9]byte
		v := frac
		for i := 8; i >= 0; i-- {
			f[i] = byte('0' + v%10)
			v /= 10
		}
		k := digits
		if digits < 0 || digits > 9 {
			k = 9
			if digits < 0 {
				for k > 0 && f[k-1] == '0' {
					k--
				}
			}
		}
		if k > 0 {
			b[n] = '.'
			n++
			n += copy(b[n:], f[:k])
		}
	}
	b[n] = 'Z'
	n++
	return append(dst, b[:n]...)
}

func put2(b []byte, v int64) {
	b[0] = byte('0' + v/10)
	b[1] = byte('0' + v%10)
}

func put4(b []byte, v int64) {
	b[0] = byte('0' + v/1000%10)
	b[1] = byte('0' + v/100%10)
	b[2] = byte('0' + v/10%10)
	b[3] = byte('0' + v%10)
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
	y, ok1 := num(b[0:4])
	mo, ok2 := num(b[5:7])
	d, ok3 := num(b[8:10])
	h, ok4 := num(b[11:13])
	mi, ok5 := num(b[14:16])
	s, ok6 := num(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || s > 59 {
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
