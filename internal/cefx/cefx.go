// Package cefx holds what the CEF decoder and encoder must agree on: the
// field names of CEF messages, the extension key grammar and the severity
// bands (formats.md §1).
package cefx

// Names of the header fields the CEF decoder writes, in record order, and
// the encoder and tern's client library read or write by default.
const (
	FieldVersion   = "cefVersion"
	FieldVendor    = "deviceVendor"
	FieldProduct   = "deviceProduct"
	FieldDevVer    = "deviceVersion"
	FieldSignature = "deviceEventClassId"
	FieldName      = "name"
	FieldSeverity  = "severity"
	FieldPrefix    = "cefPrefix"
)

// Field names of the syslog envelope a CEF message carries beside its
// line, as heka-cef named them: tern's client library writes them, the cef
// and syslog encoders build the syslog header from them.
const (
	MetaPrefix         = "cef_meta."
	MetaSyslogFacility = "cef_meta.syslog_facility"
	MetaSyslogIdent    = "cef_meta.syslog_ident"
	MetaSyslogPriority = "cef_meta.syslog_priority"
)

// KeyStart reports whether c may begin an extension key: [A-Za-z0-9_].
func KeyStart(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_'
}

// KeyChar reports whether c may continue a key: [A-Za-z0-9_.,\[\]].
func KeyChar(c byte) bool {
	return KeyStart(c) || c == '.' || c == ',' || c == '[' || c == ']'
}

// ValidKey reports whether s matches [A-Za-z0-9_][A-Za-z0-9_.,\[\]]*, the
// keys a decoder recognises before '='.
func ValidKey(s string) bool {
	if s == "" || !KeyStart(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !KeyChar(s[i]) {
			return false
		}
	}
	return true
}

// SeverityNames are the textual CEF severities.
var SeverityNames = [...]string{"Unknown", "Low", "Medium", "High", "Very-High"}

// ToSyslog maps a CEF severity as written (0..10 or a name, any case,
// surrounding spaces ignored) to a syslog severity, formats.md §7: Low
// (0-3) → 5, Medium (4-6) → 4, High (7-8) → 2, Very-High (9-10) → 1,
// Unknown or anything else → 7.
func ToSyslog(s string) int32 {
	for len(s) > 0 && s[0] == ' ' {
		s = s[1:]
	}
	for len(s) > 0 && s[len(s)-1] == ' ' {
		s = s[:len(s)-1]
	}
	if n, ok := smallInt(s); ok {
		switch {
		case n <= 3:
			return 5
		case n <= 6:
			return 4
		case n <= 8:
			return 2
		case n <= 10:
			return 1
		}
		return 7
	}
	switch {
	case equalFold(s, "low"):
		return 5
	case equalFold(s, "medium"):
		return 4
	case equalFold(s, "high"):
		return 2
	case equalFold(s, "very-high"):
		return 1
	}
	return 7
}

// FromSyslog maps a syslog severity to the CEF severity the encoder writes
// when a message carries none: 0 → 10, 1 → 9, 2 → 8, 3 → 7, 4 → 5,
// 5 → 2, 6 → 1, 7 → 0 (crit/warning/notice ↔ 8/5/2 as in formats.md §7).
func FromSyslog(sev int32) string {
	switch sev {
	case 0:
		return "10"
	case 1:
		return "9"
	case 2:
		return "8"
	case 3:
		return "7"
	case 4:
		return "5"
	case 5:
		return "2"
	case 6:
		return "1"
	}
	return "0"
}

// ValidSeverity reports whether s is a severity the encoder may write:
// "0".."10" or one of SeverityNames, exactly.
func ValidSeverity(s string) bool {
	if n, ok := smallInt(s); ok {
		return n <= 10 && (len(s) == 1 || s[0] != '0')
	}
	for _, n := range SeverityNames {
		if s == n {
			return true
		}
	}
	return false
}

func smallInt(s string) (int, bool) {
	if len(s) == 0 || len(s) > 2 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		n = n*10 + int(s[i]-'0')
	}
	return n, true
}

func equalFold(s, lower string) bool {
	if len(s) != len(lower) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}
