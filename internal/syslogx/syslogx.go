// Package syslogx holds the syslog pieces the syslog and CEF codecs share:
// facility and severity names and fields, PRI, the BSD ("Mmm dd hh:mm:ss") timestamp
// with its year inference, and PRINTUSASCII sanitising of header fields.
package syslogx

import (
	"strconv"
	"strings"
	"time"

	"github.com/ternlog/tern/pipeline"
)

// MaxPRI is the largest PRIVAL: facility 23 (local7), severity 7 (debug).
const MaxPRI = 191

// RFC 5424 §6 caps on the header fields, in bytes of PRINTUSASCII.
const (
	MaxHostname = 255
	MaxAppName  = 48
	MaxProcID   = 128
	MaxMsgID    = 32
)

// facilityNames are the lower-case keywords of facilities 0..23 (formats.md
// §4.1); 12..15 vary between implementations, so compare numbers.
var facilityNames = [24]string{
	"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
	"uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
}

var severityNames = [8]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

// Aliases seen in configs (Python's syslog module, rsyslog, logger(1)).
var severityAliases = map[string]int{
	"emergency": 0, "panic": 0, "critical": 2, "error": 3, "warn": 4, "informational": 6,
}

var facilityAliases = map[string]int{"audit": 13, "clock": 15, "cron2": 15}

// FacilityName returns the keyword of facility f ("local4"), or its number.
func FacilityName(f int) string {
	if f >= 0 && f < len(facilityNames) {
		return facilityNames[f]
	}
	return strconv.Itoa(f)
}

// ParseFacility reads a facility name (KERN…LOCAL7, any case, with or
// without Python's "LOG_" prefix) or a number 0..23.
func ParseFacility(s string) (int, bool) {
	s = strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(s, "LOG_"), "log_"))
	if n, err := strconv.Atoi(s); err == nil {
		return n, n >= 0 && n <= 23
	}
	for i, n := range facilityNames {
		if n == s {
			return i, true
		}
	}
	f, ok := facilityAliases[s]
	return f, ok
}

// FacilityFromInt maps an integer facility to 0..23: values up to 23 are
// facility codes; larger multiples of 8 up to 184 are Python's shifted
// constants (syslog.LOG_LOCAL4 == 160).
func FacilityFromInt(v int64) (int, bool) {
	switch {
	case v >= 0 && v <= 23:
		return int(v), true
	case v > 23 && v <= 23*8 && v%8 == 0:
		return int(v / 8), true
	}
	return 0, false
}

// ParseSeverity reads a severity name (EMERG…DEBUG, any case, "LOG_"
// prefix allowed, and the usual aliases) or a number 0..7.
func ParseSeverity(s string) (int, bool) {
	s = strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(s, "LOG_"), "log_"))
	if n, err := strconv.Atoi(s); err == nil {
		return n, n >= 0 && n <= 7
	}
	for i, n := range severityNames {
		if n == s {
			return i, true
		}
	}
	v, ok := severityAliases[s]
	return v, ok
}

// FieldFacility reads a facility from the first value of a message field:
// a name (ParseFacility) or a number (FacilityFromInt, so Python's shifted
// constants too, as tern's client library may send them).
func FieldFacility(f *pipeline.Field) (int, bool) {
	switch f.Type {
	case pipeline.TypeInteger:
		return FacilityFromInt(f.Value(0).Int())
	case pipeline.TypeString, pipeline.TypeBytes:
		return ParseFacility(f.Value(0).Str())
	}
	return 0, false
}

// FieldSeverity reads a severity from the first value of a message field:
// a name (ParseSeverity) or a number 0..7.
func FieldSeverity(f *pipeline.Field) (int, bool) {
	switch f.Type {
	case pipeline.TypeInteger:
		v := f.Value(0).Int()
		return int(v), v >= 0 && v <= 7
	case pipeline.TypeString, pipeline.TypeBytes:
		return ParseSeverity(f.Value(0).Str())
	}
	return 0, false
}

// AppendPRI appends "<PRIVAL>".
func AppendPRI(dst []byte, facility, severity int) []byte {
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(facility*8+severity), 10)
	return append(dst, '>')
}

// AppendPrintASCII appends s for a header field that must be 1..max bytes
// of PRINTUSASCII (0x21..0x7E): other bytes become '_', the value is cut
// at max bytes, and an empty value becomes the NILVALUE "-".
func AppendPrintASCII(dst []byte, s string, max int) []byte {
	if s == "" {
		return append(dst, '-')
	}
	if len(s) > max {
		s = s[:max]
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7E {
			c = '_'
		}
		dst = append(dst, c)
	}
	return dst
}

var months = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// Stamp is a BSD timestamp as written; Year is 0 when the text had none.
type Stamp struct {
	Year, Month, Day, Hour, Min, Sec, Nano int
}

// ParseBSD reads "Mmm d[d][ yyyy] hh:mm:ss[.fraction]" at the start of b:
// an English month abbreviation (any case), one or two spaces, a one- or
// two-digit day (space- or zero-padded), an optional four-digit year, the
// time and an optional fraction of 1 to 9 digits (more are ignored). It
// returns the bytes consumed; what follows is the caller's business.
func ParseBSD(b []byte) (s Stamp, n int, ok bool) {
	if len(b) < 14 { // "Mmm d hh:mm:ss"
		return s, 0, false
	}
	s.Month = monthIndex(b[0], b[1], b[2])
	if s.Month == 0 || b[3] != ' ' {
		return s, 0, false
	}
	i := 4
	if b[i] == ' ' {
		i++
	}
	d, j := digits(b, i, 2)
	if j == i || d < 1 || d > 31 {
		return s, 0, false
	}
	s.Day, i = d, j
	if i >= len(b) || b[i] != ' ' {
		return s, 0, false
	}
	i++
	// Optional year: four digits and a space (a time has a colon at 2).
	if i+5 <= len(b) && b[i+4] == ' ' {
		y, j := digits(b, i, 4)
		if j != i+4 {
			return s, 0, false
		}
		s.Year, i = y, i+5
	}
	if i+8 > len(b) || b[i+2] != ':' || b[i+5] != ':' {
		return s, 0, false
	}
	h, j1 := digits(b, i, 2)
	mi, j2 := digits(b, i+3, 2)
	se, j3 := digits(b, i+6, 2)
	if j1 != i+2 || j2 != i+5 || j3 != i+8 || h > 23 || mi > 59 || se > 59 {
		return s, 0, false
	}
	s.Hour, s.Min, s.Sec = h, mi, se
	i += 8
	if i+1 < len(b) && b[i] == '.' && isDigit(b[i+1]) {
		i++
		k := 0
		for ; i < len(b) && isDigit(b[i]); i++ {
			if k < 9 {
				s.Nano = s.Nano*10 + int(b[i]-'0')
				k++
			}
		}
		for ; k < 9; k++ {
			s.Nano *= 10
		}
	}
	return s, i, true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// digits reads up to max digits at b[i:] and returns the value and the end.
func digits(b []byte, i, max int) (int, int) {
	v, j := 0, i
	for j < len(b) && j-i < max && isDigit(b[j]) {
		v = v*10 + int(b[j]-'0')
		j++
	}
	return v, j
}

func monthIndex(a, b, c byte) int {
	a, b, c = a|0x20, b|0x20, c|0x20 // lower case; non-letters never match
	for i, m := range months {
		if m[0]|0x20 == a && m[1] == b && m[2] == c {
			return i + 1
		}
	}
	return 0
}

// UnixNano places s in loc. A missing year is taken from now (in loc):
// its year, minus one for a December stamp seen in January, plus one for a
// January stamp seen in December. It fails when the day does not exist in
// that month.
func (s Stamp) UnixNano(loc *time.Location, now time.Time) (int64, bool) {
	y := s.Year
	if y == 0 {
		n := now.In(loc)
		y = n.Year()
		switch {
		case s.Month == 12 && n.Month() == time.January:
			y--
		case s.Month == 1 && n.Month() == time.December:
			y++
		}
	}
	if s.Day > daysIn(y, s.Month) {
		return 0, false
	}
	t := time.Date(y, time.Month(s.Month), s.Day, s.Hour, s.Min, s.Sec, s.Nano, loc)
	return t.UnixNano(), true
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// AppendBSD appends ns as "Mmm dd hh:mm:ss" in loc, the day padded with a
// space as RFC 3164 writes it.
func AppendBSD(dst []byte, ns int64, loc *time.Location) []byte {
	t := time.Unix(0, ns).In(loc)
	dst = append(dst, months[t.Month()-1]...)
	dst = append(dst, ' ')
	d := t.Day()
	if d < 10 {
		dst = append(dst, ' ', byte('0'+d))
	} else {
		dst = append(dst, byte('0'+d/10), byte('0'+d%10))
	}
	h, mi, s := t.Clock()
	return append(dst, ' ', byte('0'+h/10), byte('0'+h%10), ':', byte('0'+mi/10), byte('0'+mi%10), ':', byte('0'+s/10), byte('0'+s%10))
}

// LoadLocation is time.LoadLocation that also accepts "" for UTC.
func LoadLocation(name string) (*time.Location, error) {
	if name == "" || name == "UTC" {
		return time.UTC, nil
	}
	return time.LoadLocation(name)
}
