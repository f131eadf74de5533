// Package syslog is the encoder that writes messages as RFC 5424 or RFC
// 3164 syslog messages, with every header field sanitised so that no
// message content can change how a receiver splits the record.
package syslog

import (
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ternlog/tern/internal/cefx"
	"github.com/ternlog/tern/internal/jsonx"
	"github.com/ternlog/tern/internal/rfc3339"
	"github.com/ternlog/tern/internal/syslogx"
	"github.com/ternlog/tern/pipeline"
)

//go:embed sample.toml
var sample string

// Type selects this encoder.
const Type = "syslog"

// Config is the [encoders.<name>] table with type = "syslog".
type Config struct {
	// Format is "rfc5424" or "rfc3164".
	Format string `toml:"format"`
	// Facility is used when the message has neither a facility field nor
	// cef_meta.syslog_facility: a name (KERN…LOCAL7) or 0..23.
	Facility string `toml:"facility"`
	// AppName is the APP-NAME (TAG in RFC 3164) when the message has
	// neither an appname field nor cef_meta.syslog_ident; empty means the
	// message Logger.
	AppName string `toml:"appname"`
	// Hostname is the HOSTNAME when the message Hostname is empty; empty
	// writes the NILVALUE "-" (RFC 5424) or leaves it out (RFC 3164).
	Hostname string `toml:"hostname"`
	// Timezone is the zone of RFC 3164 timestamps, which do not say it.
	// RFC 5424 timestamps are always written in UTC.
	Timezone string `toml:"timezone"`
	// BOM marks a MSG that is valid UTF-8 with a byte order mark, as RFC
	// 5424 asks of MSG-UTF8.
	BOM bool `toml:"bom"`
	// EscapeNewlines writes each control character other than TAB in MSG
	// and in PARAM-VALUEs as '#' and three octal digits (LF is #012), as
	// rsyslog does, so that LF-framed outputs (files, non-transparent TCP)
	// get exactly one line per message. Outputs that frame by octet
	// counting, UDP and message outputs may set it to false to carry MSG
	// byte for byte.
	EscapeNewlines bool `toml:"escape_newlines"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Format: "rfc5424", Facility: "user", Timezone: "UTC", EscapeNewlines: true}
}

// Validate checks the config.
func (c Config) Validate() error {
	var errs []error
	if c.Format != "rfc5424" && c.Format != "rfc3164" {
		errs = append(errs, fmt.Errorf("format: must be rfc5424 or rfc3164, not %q", c.Format))
	}
	if _, ok := syslogx.ParseFacility(c.Facility); !ok {
		errs = append(errs, fmt.Errorf("facility: unknown facility %q (KERN…LOCAL7 or 0..23)", c.Facility))
	}
	if _, err := syslogx.LoadLocation(c.Timezone); err != nil {
		errs = append(errs, fmt.Errorf("timezone: unknown time zone %q", c.Timezone))
	}
	return errors.Join(errs...)
}

// Encoder writes syslog messages. It is used by one goroutine at a time.
type Encoder struct {
	cfg      Config
	facility int
	loc      *time.Location
	now      func() time.Time
	replaced func(float64, ...string)
}

var _ pipeline.Encoder = (*Encoder)(nil)

// New returns a syslog encoder.
func New(set pipeline.Settings, cfg Config) (*Encoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Encoder{cfg: cfg, now: set.Now}
	if e.now == nil {
		e.now = time.Now
	}
	e.facility, _ = syslogx.ParseFacility(cfg.Facility)
	e.loc, _ = syslogx.LoadLocation(cfg.Timezone)
	e.replaced = func(float64, ...string) {}
	if set.Telemetry != nil {
		e.replaced = set.Telemetry.Counter("utf8_replaced_total", "invalid UTF-8 bytes replaced with U+FFFD")
	}
	return e, nil
}

// Factory registers the encoder.
func Factory() pipeline.Factory[pipeline.Encoder] {
	return pipeline.NewFactory(Type, sample, DefaultConfig, func(s pipeline.Settings, c Config) (pipeline.Encoder, error) {
		return New(s, c)
	}).WithSummary("RFC 5424 / RFC 3164")
}

// The message fields the encoder reads (those the syslog decoder writes,
// and the envelope of CEF messages from tern's client library).
const (
	FieldFacility      = "facility"
	FieldAppName       = "appname"
	FieldProcID        = "procid"
	FieldMsgID         = "msgid"
	SDPrefix           = "sd."
	MetaSyslogFacility = cefx.MetaSyslogFacility
	MetaSyslogIdent    = cefx.MetaSyslogIdent
	MetaSyslogPriority = cefx.MetaSyslogPriority
)

// ErrInvalid is wrapped by every encoding error.
var ErrInvalid = errors.New("syslog")

func (e *Encoder) Encode(dst []byte, m *pipeline.Message) ([]byte, error) {
	start := len(dst)
	fac, sev, err := e.pri(m)
	if err != nil {
		return dst, err
	}
	app := e.cfg.AppName
	if s, ok := m.FieldString(FieldAppName); ok {
		app = s
	} else if s, ok := m.FieldString(MetaSyslogIdent); ok {
		app = s
	} else if app == "" {
		app = m.Logger
	}
	procid, _ := m.FieldString(FieldProcID)
	if procid == "" && m.Pid != 0 {
		procid = strconv.Itoa(int(m.Pid))
	}
	host := m.Hostname
	if host == "" {
		host = e.cfg.Hostname
	}
	dst = syslogx.AppendPRI(dst, fac, sev)
	replaced := 0
	if e.cfg.Format == "rfc3164" {
		dst, replaced = e.rfc3164(dst, m, host, app, procid)
	} else {
		dst, replaced, err = e.rfc5424(dst, m, host, app, procid)
		if err != nil {
			return dst[:start], err
		}
	}
	if replaced > 0 {
		e.replaced(float64(replaced))
	}
	return dst, nil
}

// pri finds facility and severity: the facility field, else
// cef_meta.syslog_facility, else the config; cef_meta.syslog_priority,
// else the message Severity. Out-of-range values are errors.
func (e *Encoder) pri(m *pipeline.Message) (fac, sev int, err error) {
	fac = e.facility
	if f := m.FirstField(FieldFacility); f != nil && f.Len() > 0 {
		if fac, err = facilityOf(f, false); err != nil {
			return 0, 0, err
		}
	} else if f := m.FirstField(MetaSyslogFacility); f != nil && f.Len() > 0 {
		if fac, err = facilityOf(f, true); err != nil {
			return 0, 0, err
		}
	}
	if f := m.FirstField(MetaSyslogPriority); f != nil && f.Len() > 0 {
		var ok bool
		if sev, ok = syslogx.FieldSeverity(f); !ok {
			return 0, 0, fmt.Errorf("%w: %s is not a severity", ErrInvalid, MetaSyslogPriority)
		}
		return fac, sev, nil
	}
	if m.Severity < 0 || m.Severity > 7 {
		return 0, 0, fmt.Errorf("%w: severity %d is out of range 0..7", ErrInvalid, m.Severity)
	}
	return fac, int(m.Severity), nil
}

// facilityOf reads a facility field: a name or a number 0..23, and for
// the client library's cef_meta field (python) also Python's shifted
// constants (syslog.LOG_LOCAL4 == 160).
func facilityOf(f *pipeline.Field, python bool) (int, error) {
	v, ok := syslogx.FieldFacility(f)
	if !python && f.Type == pipeline.TypeInteger && f.Value(0).Int() > 23 {
		ok = false // a shifted constant: only in the client library's field
	}
	if !ok {
		return 0, fmt.Errorf("%w: field %s is not a facility (0..23 or KERN…LOCAL7)", ErrInvalid, f.Name)
	}
	return v, nil
}

// rfc5424 writes VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP
// MSGID SP STRUCTURED-DATA [SP MSG].
func (e *Encoder) rfc5424(dst []byte, m *pipeline.Message, host, app, procid string) ([]byte, int, error) {
	dst = append(dst, '1', ' ')
	if m.Timestamp == 0 {
		dst = append(dst, '-')
	} else {
		// At most six fraction digits: truncate to microseconds.
		ts := m.Timestamp - m.Timestamp%1000
		if m.Timestamp < 0 && m.Timestamp%1000 != 0 {
			ts -= 1000
		}
		dst = rfc3339.Append(dst, ts, rfc3339.Trimmed)
	}
	dst = append(dst, ' ')
	dst = syslogx.AppendPrintASCII(dst, host, syslogx.MaxHostname)
	dst = append(dst, ' ')
	dst = syslogx.AppendPrintASCII(dst, app, syslogx.MaxAppName)
	dst = append(dst, ' ')
	dst = syslogx.AppendPrintASCII(dst, procid, syslogx.MaxProcID)
	dst = append(dst, ' ')
	msgid, _ := m.FieldString(FieldMsgID)
	dst = syslogx.AppendPrintASCII(dst, msgid, syslogx.MaxMsgID)
	dst = append(dst, ' ')
	dst, replaced := e.structuredData(dst, m)
	if m.Payload != "" {
		dst = append(dst, ' ')
		if e.cfg.BOM && utf8.ValidString(m.Payload) {
			dst = append(dst, 0xEF, 0xBB, 0xBF)
		}
		dst = e.msg(dst, m.Payload)
	}
	return dst, replaced, nil
}

// structuredData writes the sd.<SD-ID>.<PARAM-NAME> fields as SD-ELEMENTs,
// params grouped by SD-ID in the order the IDs first appear (RFC 5424
// allows each SD-ID once). The name is split at its last dot; a field
// sd.<SD-ID> with no value makes an element without params. Names are
// sanitised as SD-NAMEs (1..32 PRINTUSASCII except = SP ] "), values
// escaped (" \ ]) and made valid UTF-8.
func (e *Encoder) structuredData(dst []byte, m *pipeline.Message) ([]byte, int) {
	replaced := 0
	open := false
	for i := range m.Fields {
		f := &m.Fields[i]
		id, _, ok := sdName(f)
		if !ok || e.seenID(m, i, id) {
			continue
		}
		open = true
		dst = append(dst, '[')
		dst = appendSDName(dst, id)
		for j := i; j < len(m.Fields); j++ {
			g := &m.Fields[j]
			gid, param, ok := sdName(g)
			if !ok || !sanitizedEqual(gid, id) || param == "" {
				continue
			}
			for k := 0; k < g.Len(); k++ {
				dst = append(dst, ' ')
				dst = appendSDName(dst, param)
				dst = append(dst, '=', '"')
				var n int
				dst, n = e.paramValue(dst, g, g.Value(k))
				replaced += n
				dst = append(dst, '"')
			}
		}
		dst = append(dst, ']')
	}
	if !open {
		dst = append(dst, '-')
	}
	return dst, replaced
}

// sdName splits a field name sd.<SD-ID>[.<PARAM-NAME>] at its last dot.
// A name without a dot after the prefix is an element without params,
// and only counts when the field has no values.
func sdName(f *pipeline.Field) (id, param string, ok bool) {
	rest, ok := strings.CutPrefix(f.Name, SDPrefix)
	if !ok || rest == "" {
		return "", "", false
	}
	if k := strings.LastIndexByte(rest, '.'); k > 0 && k < len(rest)-1 {
		return rest[:k], rest[k+1:], true
	}
	if f.Len() == 0 {
		return rest, "", true
	}
	return rest, "", false
}

// seenID reports whether a field before index i already opened the element
// whose (sanitised) SD-ID is id.
func (e *Encoder) seenID(m *pipeline.Message, i int, id string) bool {
	for j := 0; j < i; j++ {
		if gid, _, ok := sdName(&m.Fields[j]); ok && sanitizedEqual(gid, id) {
			return true
		}
	}
	return false
}

func sanitizedEqual(a, b string) bool {
	if len(a) > 32 {
		a = a[:32]
	}
	if len(b) > 32 {
		b = b[:32]
	}
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if sdSafe(a[i]) != sdSafe(b[i]) {
			return false
		}
	}
	return true
}

func sdSafe(c byte) byte {
	if c < 0x21 || c > 0x7E || c == '=' || c == ']' || c == '"' {
		return '_'
	}
	return c
}

func appendSDName(dst []byte, s string) []byte {
	if len(s) > 32 {
		s = s[:32]
	}
	for i := 0; i < len(s); i++ {
		dst = append(dst, sdSafe(s[i]))
	}
	return dst
}

// paramValue writes one PARAM-VALUE: '"', '\' and ']' escaped, control
// characters octal-escaped when EscapeNewlines, invalid UTF-8 replaced.
func (e *Encoder) paramValue(dst []byte, f *pipeline.Field, v pipeline.Value) ([]byte, int) {
	var s string
	switch f.Type {
	case pipeline.TypeString, pipeline.TypeBytes:
		s = v.Str()
	case pipeline.TypeInteger:
		return strconv.AppendInt(dst, v.Int(), 10), 0
	case pipeline.TypeUnsigned:
		return strconv.AppendUint(dst, v.Uint(), 10), 0
	case pipeline.TypeDouble:
		return jsonx.AppendFloat(dst, v.Double()), 0
	case pipeline.TypeBool:
		return strconv.AppendBool(dst, v.Bool()), 0
	}
	replaced := 0
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\' || c == ']':
			dst = append(dst, '\\', c)
		case c < 0x20 && c != '\t' && e.cfg.EscapeNewlines:
			dst = appendOctal(dst, c)
		case c < utf8.RuneSelf:
			dst = append(dst, c)
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				dst = append(dst, "\uFFFD"...)
				replaced++
			} else {
				dst = append(dst, s[i:i+n]...)
			}
			i += n
			continue
		}
		i++
	}
	return dst, replaced
}

// msg writes MSG: any octets, or with EscapeNewlines every control
// character but TAB as #ooo.
func (e *Encoder) msg(dst []byte, s string) []byte {
	if !e.cfg.EscapeNewlines {
		return append(dst, s...)
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' {
			dst = appendOctal(dst, c)
		} else {
			dst = append(dst, c)
		}
	}
	return dst
}

func appendOctal(dst []byte, c byte) []byte {
	return append(dst, '#', '0'+c>>6, '0'+c>>3&7, '0'+c&7)
}

// rfc3164 writes "Mmm dd hh:mm:ss [HOSTNAME ]TAG[[PID]]: MSG". The TAG is
// always written (a message could otherwise pass for one), and a host
// name ending in ':' has that colon replaced, for the same reason.
func (e *Encoder) rfc3164(dst []byte, m *pipeline.Message, host, app, procid string) ([]byte, int) {
	ts := m.Timestamp
	if ts == 0 {
		ts = e.now().UnixNano()
	}
	dst = syslogx.AppendBSD(dst, ts, e.loc)
	dst = append(dst, ' ')
	if host != "" {
		if strings.HasSuffix(host, ":") {
			host = host[:len(host)-1] + "_"
		}
		dst = syslogx.AppendPrintASCII(dst, host, syslogx.MaxHostname)
		dst = append(dst, ' ')
	}
	dst = appendTagPart(dst, app, 32, true)
	if procid != "" {
		dst = append(dst, '[')
		dst = appendTagPart(dst, procid, syslogx.MaxProcID, false)
		dst = append(dst, ']')
	}
	dst = append(dst, ':', ' ')
	return e.msg(dst, m.Payload), 0
}

// appendTagPart writes a TAG (no whitespace, ':', '[' or ']') or a PID (no
// whitespace, '[' or ']'), cut at max bytes; an empty one becomes "-".
func appendTagPart(dst []byte, s string, max int, tag bool) []byte {
	if s == "" {
		return append(dst, '-')
	}
	if len(s) > max {
		s = s[:max]
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7F || c == '[' || c == ']' || (tag && c == ':') {
			c = '_'
		}
		dst = append(dst, c)
	}
	return dst
}
