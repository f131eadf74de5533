// Package zeekfmt holds what the Zeek decoder and encoder share: the column
// type model, exact time parsing, value rendering and the ASCII writer's
// escaping (formats.md §2). It knows nothing of plugins.
package zeekfmt

import (
	"errors"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Kind is the scalar kind of a Zeek type (the element kind for containers).
type Kind uint8

// The kinds tern distinguishes; every other Zeek type reads as KindString.
const (
	KindString Kind = iota // string, enum, subnet, pattern, file, func, unknown
	KindAddr
	KindBool
	KindInt   // int
	KindCount // count, port
	KindDouble
	KindTime
	KindInterval
)

// Type is a parsed #types entry such as "count" or "set[string]".
type Type struct {
	Name      string // as written, e.g. "set[addr]"
	Kind      Kind
	Container bool // set[T], vector[T] or table[T]
	Port      bool // port (a count whose column is a port)
	Subnet    bool // subnet (a string kind, written in canonical form)
}

// ParseType reads a Zeek type name. Unknown names are strings: Zeek adds
// types over time and a reader must not fail on them.
func ParseType(s string) (Type, error) {
	t := Type{Name: s}
	inner := s
	for _, p := range [...]string{"set[", "vector[", "table["} {
		if strings.HasPrefix(s, p) {
			if !strings.HasSuffix(s, "]") || len(s) == len(p)+1 {
				return t, errors.New("malformed container type " + strconv.Quote(s))
			}
			inner = s[len(p) : len(s)-1]
			t.Container = true
			break
		}
	}
	if inner == "" {
		return t, errors.New("empty type name")
	}
	switch inner {
	case "bool":
		t.Kind = KindBool
	case "int":
		t.Kind = KindInt
	case "count":
		t.Kind = KindCount
	case "port":
		t.Kind, t.Port = KindCount, true
	case "double":
		t.Kind = KindDouble
	case "time":
		t.Kind = KindTime
	case "interval":
		t.Kind = KindInterval
	case "addr":
		t.Kind = KindAddr
	case "subnet":
		t.Subnet = true
	default:
		t.Kind = KindString
	}
	return t, nil
}

// MustType is ParseType for names known to be valid (presets).
func MustType(s string) Type {
	t, err := ParseType(s)
	if err != nil {
		panic(err)
	}
	return t
}

// ParseSecondsNs reads decimal seconds ("1795161601.191199", "-1.25",
// "12") as exact nanoseconds; digits after the ninth decimal are
// truncated. It reports false for anything else, including exponents.
func ParseSecondsNs(b []byte) (int64, bool) {
	neg := false
	i := 0
	if i < len(b) && (b[i] == '-' || b[i] == '+') {
		neg = b[i] == '-'
		i++
	}
	start := i
	var sec int64
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		if i-start >= 12 {
			return 0, false // beyond year 2262 in nanoseconds anyway
		}
		sec = sec*10 + int64(b[i]-'0')
		i++
	}
	intDigits := i - start
	var frac int64
	fracDigits := 0
	if i < len(b) && b[i] == '.' {
		i++
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			if fracDigits < 9 {
				frac = frac*10 + int64(b[i]-'0')
				fracDigits++
			}
			i++
		}
		if intDigits == 0 && fracDigits == 0 {
			return 0, false
		}
	}
	if i != len(b) || intDigits == 0 && fracDigits == 0 {
		return 0, false
	}
	for k := fracDigits; k < 9; k++ {
		frac *= 10
	}
	if sec >= math.MaxInt64/1_000_000_000 {
		return 0, false
	}
	ns := sec*1e9 + frac
	if neg {
		ns = -ns
	}
	return ns, true
}

// AppendTime appends ns as seconds with exactly six decimals, as Zeek writes
// time and interval values (sub-microsecond digits are truncated toward
// negative infinity, so the text never reads back as a later instant).
func AppendTime(dst []byte, ns int64) []byte {
	us := ns / 1000
	if ns%1000 < 0 {
		us--
	}
	if us < 0 {
		dst = append(dst, '-')
		if us == math.MinInt64 {
			return append(dst, "9223372036854.775808"...)
		}
		us = -us
	}
	dst = strconv.AppendInt(dst, us/1e6, 10)
	frac := us % 1e6
	var f [7]byte
	f[0] = '.'
	for i := 6; i >= 1; i-- {
		f[i] = byte('0' + frac%10)
		frac /= 10
	}
	return append(dst, f[:]...)
}

// AppendTimeDouble appends a time held as float seconds with six decimals.
func AppendTimeDouble(dst []byte, v float64) []byte {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return AppendDouble(dst, v)
	}
	return strconv.AppendFloat(dst, v, 'f', 6, 64)
}

// AppendDouble appends v as Zeek writes a double: fixed notation with at
// most six decimals, trailing zeros removed but at least one decimal kept
// ("3.14", "50000.0", "-0.0"); NaN and infinities as C prints them.
func AppendDouble(dst []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(dst, "nan"...)
	case math.IsInf(v, 1):
		return append(dst, "inf"...)
	case math.IsInf(v, -1):
		return append(dst, "-inf"...)
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, v, 'f', 6, 64)
	n := len(dst)
	for n > start && dst[n-1] == '0' && dst[n-2] != '.' {
		n--
	}
	return dst[:n]
}

// ParseDouble reads a double as Zeek writes it (and the usual spellings of
// NaN and infinity).
func ParseDouble(b []byte) (float64, bool) {
	switch string(b) {
	case "nan", "NaN", "-nan":
		return math.NaN(), true
	case "inf", "+inf", "Inf", "+Inf":
		return math.Inf(1), true
	case "-inf", "-Inf":
		return math.Inf(-1), true
	}
	if len(b) == 0 || len(b) > 400 {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(b), 64)
	return f, err == nil
}

// CanonicalAddr returns an address as Zeek writes one: IPv4 dotted, IPv6 in
// RFC 5952 form (lower case, longest zero run compressed), an IPv4-mapped
// IPv6 address as its IPv4 address (Zeek keeps IPv4 as mapped IPv6 and
// prints it back as IPv4). ok is false for text that is no address.
func CanonicalAddr(s string) (addr netip.Addr, ok bool) {
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// CanonicalSubnet returns a subnet as Zeek writes one: the network address
// with host bits cleared and the prefix length ("10.0.0.1/24" is
// "10.0.0.0/24"), IPv4-mapped prefixes as IPv4 ("::ffff:10.0.0.0/104" is
// "10.0.0.0/8"). ok is false for text that is no subnet.
func CanonicalSubnet(s string) (p netip.Prefix, ok bool) {
	pfx, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, false
	}
	a, bits := pfx.Addr(), pfx.Bits()
	if a.Is4In6() {
		if bits < 96 {
			return pfx.Masked(), true // not inside the mapped range: stays IPv6
		}
		a, bits = a.Unmap(), bits-96
	}
	return netip.PrefixFrom(a, bits).Masked(), true
}

// Separators are a log's separators and markers (#separator and friends).
type Separators struct {
	Sep, SetSep, Empty, Unset string
}

// DefaultSeparators are Zeek's defaults.
var DefaultSeparators = Separators{Sep: "\t", SetSep: ",", Empty: "(empty)", Unset: "-"}

const hexDigits = "0123456789abcdef"

func appendHex(dst []byte, c byte) []byte {
	return append(dst, '\\', 'x', hexDigits[c>>4], hexDigits[c&0xf])
}

// AppendMetaEscaped appends s with every whitespace, non-printable and
// non-ASCII byte as \xNN (Zeek's get_escaped_string, used for header
// values such as "#separator \x09").
func AppendMetaEscaped(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '\\' {
			dst = appendHex(dst, c)
		} else {
			dst = append(dst, c)
		}
	}
	return dst
}

// Escaper renders string values the way Zeek's ASCII writer does, so that
// no value can forge a column, a set element or a row.
type Escaper struct {
	Sep       Separators
	UTF8      bool // enable_utf_8: keep valid, printable UTF-8 raw
	MetaFirst byte // meta prefix a data line must not start with ('#')
}

// AppendString appends s escaped; inSet also escapes the set separator
// (values inside set[T] and vector[T]). Values equal to the unset or empty
// markers get their first byte hex-escaped so they read back as text.
func (e *Escaper) AppendString(dst []byte, s string, inSet bool) []byte {
	if s == e.Sep.Unset || s == e.Sep.Empty {
		dst = appendHex(dst, s[0])
		s = s[1:]
	}
	sep, setSep := e.Sep.Sep, e.Sep.SetSep
	run := 0 // start of the run of bytes between escape points
	for i := 0; i < len(s); {
		c := s[i]
		var n int // length of an escape point at i
		switch {
		case c == '\\':
			n = 1
		case c == sep[0] && strings.HasPrefix(s[i:], sep):
			n = len(sep)
		case inSet && c == setSep[0] && strings.HasPrefix(s[i:], setSep):
			n = len(setSep)
		}
		if n == 0 {
			i++
			continue
		}
		dst = e.appendRun(dst, s[run:i])
		if c == '\\' {
			dst = append(dst, '\\', '\\')
		} else {
			for k := 0; k < n; k++ {
				dst = appendHex(dst, s[i+k])
			}
		}
		i += n
		run = i
	}
	return e.appendRun(dst, s[run:])
}

// appendRun writes bytes between escape points: raw when they are
// printable (ASCII, or valid UTF-8 without bad code points with UTF8 on);
// otherwise, as Zeek does, the whole run with every control and non-ASCII
// byte as \xNN.
func (e *Escaper) appendRun(dst []byte, r string) []byte {
	clean := true
	for i := 0; i < len(r); {
		c := r[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				clean = false
				break
			}
			i++
			continue
		}
		if !e.UTF8 {
			clean = false
			break
		}
		cp, size := utf8.DecodeRuneInString(r[i:])
		if cp == utf8.RuneError && size <= 1 || badRune(cp) {
			clean = false
			break
		}
		i += size
	}
	if clean {
		return append(dst, r...)
	}
	for i := 0; i < len(r); i++ {
		c := r[i]
		if c < 0x20 || c >= 0x7f {
			dst = appendHex(dst, c)
		} else {
			dst = append(dst, c)
		}
	}
	return dst
}

// badRune reports the code points Zeek's escape_utf8 refuses to write raw:
// C1 controls, private use and the U+FFF0..U+FFFF specials.
func badRune(r rune) bool {
	return r >= 0x80 && r <= 0x9f || r >= 0xe000 && r <= 0xf8ff || r >= 0xfff0 && r <= 0xffff
}

// Unescape appends s with \xNN and \\ sequences decoded; any other
// backslash is kept as it is.
func Unescape(dst, s []byte) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			dst = append(dst, c)
			continue
		}
		switch s[i+1] {
		case '\\':
			dst = append(dst, '\\')
			i++
			continue
		case 'x':
			if i+3 < len(s) {
				hi, ok1 := unhex(s[i+2])
				lo, ok2 := unhex(s[i+3])
				if ok1 && ok2 {
					dst = append(dst, hi<<4|lo)
					i += 3
					continue
				}
			}
		}
		dst = append(dst, c)
	}
	return dst
}

// HasEscape reports whether s holds a backslash (so Unescape may change it).
func HasEscape(s []byte) bool {
	for _, c := range s {
		if c == '\\' {
			return true
		}
	}
	return false
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
