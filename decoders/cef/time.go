package cef

import (
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ternlog/tern/internal/rfc3339"
	"github.com/ternlog/tern/internal/syslogx"
)

// parseTime reads a CEF timestamp (formats.md §1.5): milliseconds since
// the epoch (a fraction allowed), "MMM dd [yyyy ]HH:mm:ss[.SSS][ zzz]", or
// RFC 3339. Zone-less values are in dtz when it names a zone, else in the
// configured zone; year-less ones get a recent year from the clock.
func (d *Decoder) parseTime(v, dtz string) (int64, bool) {
	b := []byte(v) // small; does not escape
	if len(b) == 0 {
		return 0, false
	}
	if isDigit(b[0]) {
		if ns, ok := epochMillis(b); ok {
			return ns, true
		}
		if len(b) >= 20 && b[4] == '-' {
			ns, err := rfc3339.Parse(b)
			return ns, err == nil
		}
		return 0, false
	}
	st, n, ok := syslogx.ParseBSD(b)
	if !ok {
		return 0, false
	}
	var z zone
	switch {
	case n == len(b):
		z, ok = d.zone(dtz)
		if !ok {
			z = zone{loc: d.loc}
		}
	case b[n] == ' ':
		if z, ok = d.zone(v[n+1:]); !ok {
			return 0, false
		}
	default:
		return 0, false
	}
	if z.loc != nil {
		return st.UnixNano(z.loc, d.now())
	}
	ns, ok := st.UnixNano(time.UTC, d.now())
	return ns - int64(z.off)*1e9, ok
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// epochMillis reads "1426000000000" or "1616623591694.176".
func epochMillis(b []byte) (int64, bool) {
	var ms int64
	i := 0
	for ; i < len(b) && isDigit(b[i]); i++ {
		if ms > (1<<63-1)/10_000_000 { // keeps ms*1e6 in range
			return 0, false
		}
		ms = ms*10 + int64(b[i]-'0')
	}
	ns := ms * 1e6
	if i < len(b) && b[i] == '.' && i+1 < len(b) {
		i++
		scale := int64(1e5)
		for ; i < len(b) && isDigit(b[i]); i++ {
			ns += int64(b[i]-'0') * scale
			scale /= 10
		}
	}
	return ns, i == len(b)
}

// zone is a fixed offset in seconds east of UTC, or a location.
type zone struct {
	off int
	loc *time.Location
}

var abbrevs = map[string]int{
	"Z": 0, "UT": 0, "UTC": 0, "GMT": 0, "WET": 0,
	"EST": -5 * 3600, "EDT": -4 * 3600, "CST": -6 * 3600, "CDT": -5 * 3600,
	"MST": -7 * 3600, "MDT": -6 * 3600, "PST": -8 * 3600, "PDT": -7 * 3600,
	"AKST": -9 * 3600, "AKDT": -8 * 3600, "HST": -10 * 3600,
	"WEST": 3600, "CET": 3600, "CEST": 2 * 3600, "EET": 2 * 3600, "EEST": 3 * 3600,
	"MSK": 3 * 3600, "JST": 9 * 3600, "KST": 9 * 3600, "AEST": 10 * 3600, "AEDT": 11 * 3600,
}

// zone reads "Z", "+05", "+0500", "+05:00", "GMT+05:00", an abbreviation
// from a short unambiguous list, or an IANA name.
func (d *Decoder) zone(s string) (zone, bool) {
	if s == "" {
		return zone{}, false
	}
	if off, ok := abbrevs[s]; ok {
		return zone{off: off}, true
	}
	t := s
	if len(t) > 3 && (t[:3] == "GMT" || t[:3] == "UTC") {
		t = t[3:]
	}
	if t[0] == '+' || t[0] == '-' {
		if off, ok := numericOffset(t); ok {
			return zone{off: off}, true
		}
		return zone{}, false
	}
	if loc := d.zones.load(s); loc != nil {
		return zone{loc: loc}, true
	}
	return zone{}, false
}

// numericOffset reads ±hh, ±hhmm, ±hh:mm (also ±h).
func numericOffset(t string) (int, bool) {
	sign := 1
	if t[0] == '-' {
		sign = -1
	}
	t = t[1:]
	var h, m int
	switch {
	case len(t) == 1 && isDigit(t[0]):
		h = int(t[0] - '0')
	case len(t) == 2 && isDigit(t[0]) && isDigit(t[1]):
		h = int(t[0]-'0')*10 + int(t[1]-'0')
	case len(t) == 4 && allDigits(t):
		h, m = int(t[0]-'0')*10+int(t[1]-'0'), int(t[2]-'0')*10+int(t[3]-'0')
	case len(t) == 5 && t[2] == ':' && allDigits(t[:2]) && allDigits(t[3:]):
		h, m = int(t[0]-'0')*10+int(t[1]-'0'), int(t[3]-'0')*10+int(t[4]-'0')
	default:
		return 0, false
	}
	if h > 23 || m > 59 {
		return 0, false
	}
	return sign * (h*3600 + m*60), true
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}

// zoneCache remembers IANA zone lookups. Zone names come from untrusted
// records and a lookup reads the zone database, so only the first maxZones
// distinct well-formed names are ever looked up; later unknown names are
// not (their timestamps stay unparsed and the receive time is used).
type zoneCache struct {
	m sync.Map // string -> *time.Location (nil: unknown)
	n atomic.Int32
}

const maxZones = 64

func (c *zoneCache) load(name string) *time.Location {
	if v, ok := c.m.Load(name); ok {
		return v.(*time.Location)
	}
	if c.n.Load() >= maxZones || !zoneName(name) {
		return nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		loc = nil
	}
	if c.n.Add(1) <= maxZones {
		// A copy: name is a view into the record's batch (pipeline.Retain).
		c.m.Store(strings.Clone(name), loc)
	}
	return loc
}

// zoneName accepts what IANA zone names look like ("America/New_York",
// "Etc/GMT+5"): a letter, then letters, digits, '/', '_', '+' or '-'.
// "Local" is refused: the router's zone says nothing about the device's.
func zoneName(s string) bool {
	if len(s) == 0 || len(s) > 40 || s == "Local" {
		return false
	}
	if c := s[0] | 0x20; c < 'a' || c > 'z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isDigit(c) || 'a' <= c|0x20 && c|0x20 <= 'z' || c == '/' || c == '_' || c == '+' || c == '-') {
			return false
		}
	}
	return true
}

// addrKind returns "ipv4" or "ipv6" for an IP literal.
func addrKind(s string) (string, bool) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return "", false
	}
	if a.Is4() {
		return "ipv4", true
	}
	return "ipv6", true
}

// isMAC accepts six or eight hex octets separated by ':' or '-'.
func isMAC(s string) bool {
	if len(s) != 17 && len(s) != 23 {
		return false
	}
	sep := s[2]
	if sep != ':' && sep != '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if i%3 == 2 {
			if s[i] != sep {
				return false
			}
		} else if !isHex(s[i]) {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
