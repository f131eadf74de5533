// Package cef is the encoder that writes messages as ArcSight Common Event
// Format records (formats.md §1), escaped so that no field content can end
// the record or forge another one (reliability.md §4.4), optionally behind
// a syslog header.
package cef

import (
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ternlog/tern/internal/alert"
	"github.com/ternlog/tern/internal/alertmsg"
	"github.com/ternlog/tern/internal/cefx"
	"github.com/ternlog/tern/internal/jsonx"
	"github.com/ternlog/tern/internal/rfc3339"
	"github.com/ternlog/tern/internal/syslogx"
	"github.com/ternlog/tern/pipeline"
)

//go:embed sample.toml
var sample string

// Type selects this encoder.
const Type = "cef"

// Config is the [encoders.<name>] table with type = "cef".
type Config struct {
	// Version is the CEF version written when the message has no
	// cefVersion field.
	Version int `toml:"version"`
	// Vendor, Product and DeviceVersion are the header values written when
	// the message lacks the fields named by VendorField, ProductField and
	// DeviceVersionField.
	Vendor        string `toml:"vendor"`
	Product       string `toml:"product"`
	DeviceVersion string `toml:"device_version"`
	// Signature is the Device Event Class ID written when the message lacks
	// SignatureField; empty means the message Type.
	Signature string `toml:"signature"`
	// Name is the event name written when the message lacks NameField;
	// empty means the message Type.
	Name string `toml:"name"`
	// Severity is the CEF severity written when the message lacks
	// SeverityField; empty derives it from the message Severity
	// (0→10, 1→9, 2→8, 3→7, 4→5, 5→2, 6→1, 7→0).
	Severity string `toml:"severity"`
	// The message fields the header values come from (as the CEF decoder
	// names them).
	VersionField       string `toml:"version_field"`
	VendorField        string `toml:"vendor_field"`
	ProductField       string `toml:"product_field"`
	DeviceVersionField string `toml:"device_version_field"`
	SignatureField     string `toml:"signature_field"`
	NameField          string `toml:"name_field"`
	SeverityField      string `toml:"severity_field"`
	// Fields lists the fields written as extensions, in this order (absent
	// ones are skipped). Empty writes every field the header did not use,
	// in message order, except cefPrefix and cef_meta.*.
	Fields []string `toml:"fields"`
	// PayloadKey writes a non-empty Payload under this extension key unless
	// a field already has that name; empty never writes the Payload.
	PayloadKey string `toml:"payload_key"`
	// TimestampKey writes the message Timestamp, in milliseconds, under this
	// extension key unless a field already has that name; empty (the
	// default) does not.
	TimestampKey string `toml:"timestamp_key"`
	// InvalidKeys is what happens to a field whose name is not a CEF key
	// ([A-Za-z0-9_][A-Za-z0-9_.,\[\]]*): "error" (the message goes to the
	// dead-letter route), "rename" (every other byte becomes '_') or "drop".
	// Renamed and dropped keys are counted.
	InvalidKeys string `toml:"invalid_keys"`
	// ControlChars is what happens to control characters other than TAB,
	// CR and LF (and to U+0085, U+2028, U+2029), which line-based receivers
	// may take for line ends: "escape" writes \xHH or \uHHHH text,
	// "strip" removes them.
	ControlChars string `toml:"control_chars"`
	// InvalidUTF8 is "replace" (each bad byte becomes U+FFFD, counted in
	// utf8_replaced_total; CEF is UTF-8) or "keep" (bytes pass unchanged).
	InvalidUTF8 string `toml:"invalid_utf8"`
	// Syslog puts a syslog header in front of each record.
	Syslog bool `toml:"syslog"`
	// SyslogFormat is that header's form: "rfc5424" or "rfc3164".
	SyslogFormat string `toml:"syslog_format"`
	// SyslogFacility, SyslogIdent and SyslogPriority fill the header unless
	// the message has cef_meta.syslog_facility, cef_meta.syslog_ident or
	// cef_meta.syslog_priority. Names as in the mozilla cef library:
	// KERN…LOCAL7, EMERG…DEBUG.
	SyslogFacility string `toml:"syslog_facility"`
	SyslogIdent    string `toml:"syslog_ident"`
	SyslogPriority string `toml:"syslog_priority"`
	// SyslogHostname is the header's HOSTNAME when the message Hostname is
	// empty; empty writes the NILVALUE "-" (RFC 5424) or leaves it out
	// (RFC 3164).
	SyslogHostname string `toml:"syslog_hostname"`
	// AlertCache is how many alerts are remembered so that an alert update
	// that carries only its changes (from producers before alert.updated)
	// is written as the whole alert.
	AlertCache int `toml:"alert_cache"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Vendor: "tern", Product: "tern", DeviceVersion: "1",
		VersionField: cefx.FieldVersion, VendorField: cefx.FieldVendor, ProductField: cefx.FieldProduct,
		DeviceVersionField: cefx.FieldDevVer, SignatureField: cefx.FieldSignature,
		NameField: cefx.FieldName, SeverityField: cefx.FieldSeverity,
		PayloadKey: "msg", InvalidKeys: "error", ControlChars: "escape", InvalidUTF8: "replace",
		SyslogFormat: "rfc5424", SyslogFacility: "LOCAL4", SyslogIdent: "tern", SyslogPriority: "INFO",
		AlertCache: 10000,
	}
}

// Validate checks the config.
func (c Config) Validate() error {
	var errs []error
	if c.Version < 0 {
		errs = append(errs, errors.New("version: must not be negative"))
	}
	if c.Severity != "" && !cefx.ValidSeverity(c.Severity) {
		errs = append(errs, fmt.Errorf("severity: must be 0..10 or Unknown, Low, Medium, High, Very-High, not %q", c.Severity))
	}
	for _, k := range []struct{ key, v string }{{"payload_key", c.PayloadKey}, {"timestamp_key", c.TimestampKey}} {
		if k.v != "" && !cefx.ValidKey(k.v) {
			errs = append(errs, fmt.Errorf("%s: %q is not a CEF key", k.key, k.v))
		}
	}
	if !oneOf(c.InvalidKeys, "error", "rename", "drop") {
		errs = append(errs, fmt.Errorf("invalid_keys: must be error, rename or drop, not %q", c.InvalidKeys))
	}
	if !oneOf(c.ControlChars, "escape", "strip") {
		errs = append(errs, fmt.Errorf("control_chars: must be escape or strip, not %q", c.ControlChars))
	}
	if !oneOf(c.InvalidUTF8, "replace", "keep") {
		errs = append(errs, fmt.Errorf("invalid_utf8: must be replace or keep, not %q", c.InvalidUTF8))
	}
	if !oneOf(c.SyslogFormat, "rfc5424", "rfc3164") {
		errs = append(errs, fmt.Errorf("syslog_format: must be rfc5424 or rfc3164, not %q", c.SyslogFormat))
	}
	if _, ok := syslogx.ParseFacility(c.SyslogFacility); !ok {
		errs = append(errs, fmt.Errorf("syslog_facility: unknown facility %q (KERN…LOCAL7)", c.SyslogFacility))
	}
	if _, ok := syslogx.ParseSeverity(c.SyslogPriority); !ok {
		errs = append(errs, fmt.Errorf("syslog_priority: unknown priority %q (EMERG…DEBUG)", c.SyslogPriority))
	}
	if c.AlertCache < 0 {
		errs = append(errs, errors.New("alert_cache: must not be negative"))
	}
	return errors.Join(errs...)
}

func oneOf(v string, set ...string) bool {
	for _, s := range set {
		if v == s {
			return true
		}
	}
	return false
}

// Encoder writes CEF records. It is used by one goroutine at a time.
type Encoder struct {
	cfg       Config
	set       pipeline.Settings
	facility  int
	priority  int
	headerSet map[string]bool
	replaced  func(float64, ...string)
	keys      func(float64, ...string)
	alerts    *alertmsg.Store
}

var _ pipeline.Encoder = (*Encoder)(nil)

// New returns a CEF encoder.
func New(set pipeline.Settings, cfg Config) (*Encoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Encoder{cfg: cfg, set: set, alerts: alertmsg.NewStore(cfg.AlertCache)}
	e.facility, _ = syslogx.ParseFacility(cfg.SyslogFacility)
	e.priority, _ = syslogx.ParseSeverity(cfg.SyslogPriority)
	e.headerSet = map[string]bool{FieldPrefix: true}
	for _, f := range []string{cfg.VersionField, cfg.VendorField, cfg.ProductField, cfg.DeviceVersionField,
		cfg.SignatureField, cfg.NameField, cfg.SeverityField} {
		if f != "" {
			e.headerSet[f] = true
		}
	}
	e.replaced = func(float64, ...string) {}
	e.keys = func(float64, ...string) {}
	if set.Telemetry != nil {
		e.replaced = set.Telemetry.Counter("utf8_replaced_total", "invalid UTF-8 bytes replaced with U+FFFD")
		e.keys = set.Telemetry.Counter("cef_invalid_keys_total", "field names that are not CEF keys, by what was done", "action")
	}
	e.keys(0, "drop")
	e.keys(0, "rename")
	return e, nil
}

// Factory registers the encoder.
func Factory() pipeline.Factory[pipeline.Encoder] {
	return pipeline.NewFactory(Type, sample, DefaultConfig, func(s pipeline.Settings, c Config) (pipeline.Encoder, error) {
		return New(s, c)
	}).WithSummary("CEF, optionally in a syslog header")
}

// Field names shared with the CEF decoder and tern's client library.
const (
	FieldPrefix        = cefx.FieldPrefix
	MetaPrefix         = cefx.MetaPrefix
	MetaSyslogFacility = cefx.MetaSyslogFacility
	MetaSyslogIdent    = cefx.MetaSyslogIdent
	MetaSyslogPriority = cefx.MetaSyslogPriority
	// AlertType is the Type of alert messages (docs/alerts.md).
	AlertType = alert.Type
)

// ErrInvalid is wrapped by every encoding error.
var ErrInvalid = errors.New("cef")

func (e *Encoder) Encode(dst []byte, m *pipeline.Message) ([]byte, error) {
	start := len(dst)
	if e.cfg.Syslog {
		var err error
		if dst, err = e.syslogHeader(dst, m); err != nil {
			return dst[:start], err
		}
	}
	w := writer{dst: dst, e: e}
	var err error
	switch {
	case m.Type == "cef" && strings.HasPrefix(m.Payload, "CEF:"):
		w.passthrough(m.Payload)
	case m.Type == AlertType:
		err = e.alert(&w, m)
	default:
		err = e.message(&w, m)
	}
	if w.replaced > 0 {
		e.replaced(float64(w.replaced))
	}
	if err != nil {
		return dst[:start], err
	}
	return w.dst, nil
}

// message writes a record from the message's fields.
func (e *Encoder) message(w *writer, m *pipeline.Message) error {
	c := &e.cfg
	version := int64(c.Version)
	if f := field(m, c.VersionField); f != nil {
		v, ok := intValue(f)
		if !ok || v < 0 {
			return fmt.Errorf("%w: %s must be a non-negative integer", ErrInvalid, c.VersionField)
		}
		version = v
	}
	w.dst = append(w.dst, "CEF:"...)
	w.dst = strconv.AppendInt(w.dst, version, 10)
	w.dst = append(w.dst, '|')
	sig, name := c.Signature, c.Name
	if sig == "" {
		sig = m.Type
	}
	if name == "" {
		name = m.Type
	}
	for _, h := range [...]struct{ field, def string }{
		{c.VendorField, c.Vendor}, {c.ProductField, c.Product}, {c.DeviceVersionField, c.DeviceVersion},
		{c.SignatureField, sig}, {c.NameField, name},
	} {
		w.header(stringOf(field(m, h.field), h.def))
		w.dst = append(w.dst, '|')
	}
	sev := c.Severity
	if f := field(m, c.SeverityField); f != nil {
		s, ok := severityValue(f)
		if !ok {
			return fmt.Errorf("%w: %s %q is not a CEF severity (0..10, Unknown, Low, Medium, High, Very-High)", ErrInvalid, c.SeverityField, s)
		}
		sev = s
	} else if sev == "" {
		sev = cefx.FromSyslog(m.Severity)
	}
	w.dst = append(w.dst, sev...)
	w.dst = append(w.dst, '|')

	n := 0
	ext := func(f *pipeline.Field) error {
		key := f.Name
		if !cefx.ValidKey(key) {
			switch c.InvalidKeys {
			case "drop":
				e.keys(1, "drop")
				return nil
			case "rename":
				e.keys(1, "rename")
				key = renameKey(key)
			default:
				return fmt.Errorf("%w: field name %q is not a CEF key", ErrInvalid, key)
			}
		}
		if f.Len() == 0 {
			return nil
		}
		w.pairStart(n, key)
		n++
		w.fieldValue(f)
		return nil
	}
	if len(c.Fields) > 0 {
		for _, name := range c.Fields {
			if f := m.FirstField(name); f != nil {
				if err := ext(f); err != nil {
					return err
				}
			}
		}
	} else {
		for i := range m.Fields {
			f := &m.Fields[i]
			if e.headerSet[f.Name] && isFirst(m, i) || strings.HasPrefix(f.Name, MetaPrefix) {
				continue
			}
			if err := ext(f); err != nil {
				return err
			}
		}
	}
	if k := c.TimestampKey; k != "" && m.Timestamp != 0 && m.FirstField(k) == nil {
		w.pairStart(n, k)
		n++
		w.dst = strconv.AppendInt(w.dst, floorDiv(m.Timestamp, 1e6), 10)
	}
	if k := c.PayloadKey; k != "" && m.Payload != "" && m.FirstField(k) == nil {
		w.pairStart(n, k)
		w.value(m.Payload)
	}
	return nil
}

// isFirst reports whether m.Fields[i] is the first field of its name (the
// one a header value came from; repeats are extensions).
func isFirst(m *pipeline.Message, i int) bool {
	for j := 0; j < i; j++ {
		if m.Fields[j].Name == m.Fields[i].Name {
			return false
		}
	}
	return true
}

func field(m *pipeline.Message, name string) *pipeline.Field {
	if name == "" {
		return nil
	}
	f := m.FirstField(name)
	if f == nil || f.Len() == 0 {
		return nil
	}
	return f
}

// stringOf renders the first value of f, or def when f is nil.
func stringOf(f *pipeline.Field, def string) string {
	if f == nil {
		return def
	}
	var b [32]byte
	switch f.Type {
	case pipeline.TypeString, pipeline.TypeBytes:
		return f.Value(0).Str()
	default:
		return string(appendScalar(b[:0], f, f.Value(0)))
	}
}

func intValue(f *pipeline.Field) (int64, bool) {
	switch f.Type {
	case pipeline.TypeInteger:
		return f.Value(0).Int(), true
	case pipeline.TypeString:
		v, err := strconv.ParseInt(f.Value(0).Str(), 10, 64)
		return v, err == nil
	}
	return 0, false
}

func severityValue(f *pipeline.Field) (string, bool) {
	if f.Type == pipeline.TypeInteger {
		v := f.Value(0).Int()
		s := strconv.FormatInt(v, 10)
		return s, v >= 0 && v <= 10
	}
	s := stringOf(f, "")
	return s, cefx.ValidSeverity(s)
}

func renameKey(k string) string {
	if k == "" {
		return "_"
	}
	b := []byte(k)
	if !cefx.KeyStart(b[0]) {
		b[0] = '_'
	}
	for i := 1; i < len(b); i++ {
		if !cefx.KeyChar(b[i]) {
			b[i] = '_'
		}
	}
	return string(b)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

// writer appends escaped CEF text.
type writer struct {
	dst      []byte
	e        *Encoder
	replaced int
}

func (w *writer) pairStart(n int, key string) {
	if n > 0 {
		w.dst = append(w.dst, ' ')
	}
	w.dst = append(w.dst, key...)
	w.dst = append(w.dst, '=')
}

// fieldValue writes every value of f, joined by ','. Integers with
// representation "ns" are written in milliseconds, CEF's time unit.
func (w *writer) fieldValue(f *pipeline.Field) {
	for i := 0; i < f.Len(); i++ {
		if i > 0 {
			w.dst = append(w.dst, ',')
		}
		v := f.Value(i)
		switch f.Type {
		case pipeline.TypeString, pipeline.TypeBytes:
			w.value(v.Str())
		default:
			w.dst = appendScalar(w.dst, f, v)
		}
	}
}

func appendScalar(dst []byte, f *pipeline.Field, v pipeline.Value) []byte {
	switch f.Type {
	case pipeline.TypeInteger:
		n := v.Int()
		if f.Representation() == "ns" {
			n = floorDiv(n, 1e6)
		}
		return strconv.AppendInt(dst, n, 10)
	case pipeline.TypeUnsigned:
		return strconv.AppendUint(dst, v.Uint(), 10)
	case pipeline.TypeDouble:
		return jsonx.AppendFloat(dst, v.Double())
	case pipeline.TypeBool:
		return strconv.AppendBool(dst, v.Bool())
	}
	return append(dst, v.Str()...)
}

// header writes a header value: \ and | escaped, CR LF, CR and LF each one
// space, other line-breaking characters escaped or stripped.
func (w *writer) header(s string) {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\' || c == '|':
			w.dst = append(w.dst, '\\', c)
		case c == '\r':
			w.dst = append(w.dst, ' ')
			if i+1 < len(s) && s[i+1] == '\n' {
				i++
			}
		case c == '\n':
			w.dst = append(w.dst, ' ')
		case c < 0x20 && c != '\t':
			w.control(rune(c))
		case c < utf8.RuneSelf:
			w.dst = append(w.dst, c)
		default:
			i += w.multibyte(s[i:])
			continue
		}
		i++
	}
}

// value writes an extension value: \ and = escaped, LF and CR as \n and
// \r, other line-breaking characters escaped or stripped.
func (w *writer) value(s string) {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\' || c == '=':
			w.dst = append(w.dst, '\\', c)
		case c == '\n':
			w.dst = append(w.dst, '\\', 'n')
		case c == '\r':
			w.dst = append(w.dst, '\\', 'r')
		case c < 0x20 && c != '\t':
			w.control(rune(c))
		case c < utf8.RuneSelf:
			w.dst = append(w.dst, c)
		default:
			i += w.multibyte(s[i:])
			continue
		}
		i++
	}
}

// passthrough writes a CEF record carried in the Payload as it is, but
// still as one line: raw CR and LF become \r and \n (which a decoder turns
// back into CR and LF inside an extension value), other control
// characters and bad UTF-8 are handled as everywhere else.
func (w *writer) passthrough(s string) {
	s = strings.TrimSuffix(strings.TrimSuffix(s, "\n"), "\r")
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\n':
			w.dst = append(w.dst, '\\', 'n')
		case c == '\r':
			w.dst = append(w.dst, '\\', 'r')
		case c < 0x20 && c != '\t':
			w.control(rune(c))
		case c < utf8.RuneSelf:
			w.dst = append(w.dst, c)
		default:
			i += w.multibyte(s[i:])
			continue
		}
		i++
	}
}

// multibyte writes the UTF-8 sequence (or bad byte) at the start of s and
// returns its length.
func (w *writer) multibyte(s string) int {
	r, n := utf8.DecodeRuneInString(s)
	switch {
	case r == utf8.RuneError && n == 1:
		if w.e.cfg.InvalidUTF8 == "keep" {
			w.dst = append(w.dst, s[0])
		} else {
			w.dst = append(w.dst, "\uFFFD"...)
			w.replaced++
		}
	case r >= 0x80 && r <= 0x9F, r == 0x2028, r == 0x2029:
		w.control(r)
	default:
		w.dst = append(w.dst, s[:n]...)
	}
	return n
}

const hexDigits = "0123456789abcdef"

// control escapes (\xHH for C0, \uHHHH beyond) or strips r.
func (w *writer) control(r rune) {
	if w.e.cfg.ControlChars == "strip" {
		return
	}
	if r < 0x80 {
		w.dst = append(w.dst, '\\', 'x', hexDigits[r>>4], hexDigits[r&15])
		return
	}
	w.dst = append(w.dst, '\\', 'u', hexDigits[r>>12&15], hexDigits[r>>8&15], hexDigits[r>>4&15], hexDigits[r&15])
}

// syslogHeader writes the syslog header the record travels behind, with
// facility, ident and priority from cef_meta.* fields or the config.
func (e *Encoder) syslogHeader(dst []byte, m *pipeline.Message) ([]byte, error) {
	fac, sev, ident := e.facility, e.priority, e.cfg.SyslogIdent
	if f := m.FirstField(MetaSyslogFacility); f != nil && f.Len() > 0 {
		v, ok := syslogx.FieldFacility(f)
		if !ok {
			return dst, fmt.Errorf("%w: %s: unknown facility", ErrInvalid, MetaSyslogFacility)
		}
		fac = v
	}
	if f := m.FirstField(MetaSyslogPriority); f != nil && f.Len() > 0 {
		v, ok := syslogx.FieldSeverity(f)
		if !ok {
			return dst, fmt.Errorf("%w: %s: unknown priority", ErrInvalid, MetaSyslogPriority)
		}
		sev = v
	}
	if s, ok := m.FieldString(MetaSyslogIdent); ok {
		ident = s
	}
	host := m.Hostname
	if host == "" {
		host = e.cfg.SyslogHostname
	}
	dst = syslogx.AppendPRI(dst, fac, sev)
	ts := m.Timestamp
	if e.cfg.SyslogFormat == "rfc3164" {
		if ts == 0 {
			ts = e.now()
		}
		dst = syslogx.AppendBSD(dst, ts, time.UTC)
		dst = append(dst, ' ')
		if host != "" {
			dst = append(syslogx.AppendPrintASCII(dst, hostname3164(host), syslogx.MaxHostname), ' ')
		}
		dst = appendTag(dst, ident)
		return append(dst, ':', ' '), nil
	}
	dst = append(dst, '1', ' ')
	if ts == 0 {
		dst = append(dst, '-')
	} else {
		dst = rfc3339.Append(dst, ts-ts%1000, rfc3339.Trimmed)
	}
	dst = append(dst, ' ')
	dst = syslogx.AppendPrintASCII(dst, host, syslogx.MaxHostname)
	dst = append(dst, ' ')
	dst = syslogx.AppendPrintASCII(dst, ident, syslogx.MaxAppName)
	return append(dst, " - - - "...), nil
}

func (e *Encoder) now() int64 {
	if e.set.Now != nil {
		return e.set.Now().UnixNano()
	}
	return time.Now().UnixNano()
}

// hostname3164 keeps a host name from reading as a TAG: one ending in ':'
// gets that colon replaced.
func hostname3164(h string) string {
	if strings.HasSuffix(h, ":") {
		return h[:len(h)-1] + "_"
	}
	return h
}

// appendTag writes an RFC 3164 TAG: 1..32 bytes without whitespace, ':',
// '[' or ']' ('_' instead); empty becomes "-".
func appendTag(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, '-')
	}
	if len(s) > 32 {
		s = s[:32]
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7F || c == ':' || c == '[' || c == ']' {
			c = '_'
		}
		dst = append(dst, c)
	}
	return dst
}
