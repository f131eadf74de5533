// Package zeek is the encoder that writes Zeek logs: the ASCII writer's
// TSV rows with the "#" header block and "#close" trailer, byte for byte as
// Zeek writes them, or Zeek's JSON lines.
package zeek

import (
	_ "embed"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ternlog/tern/internal/alert"
	"github.com/ternlog/tern/internal/alertmsg"
	"github.com/ternlog/tern/internal/jsonx"
	"github.com/ternlog/tern/internal/rfc3339"
	"github.com/ternlog/tern/internal/zeekfmt"
	"github.com/ternlog/tern/pipeline"
)

//go:embed sample.toml
var sample string

// Type selects this encoder.
const Type = "zeek"

// Column is one column of the stream.
type Column struct {
	// Name is the column name, dotted for flattened records ("id.orig_h").
	Name string `toml:"name"`
	// Type is the Zeek type: time, interval, string, addr, subnet, port,
	// count, int, double, bool, enum, set[T], vector[T].
	Type string `toml:"type"`
	// Field is the message field to read (default: Name), or a header:
	// Timestamp, Type, Logger, Hostname, Payload, Severity, Pid, Uuid.
	Field string `toml:"field"`
}

// Config is the [encoders.<name>] table with type = "zeek".
type Config struct {
	// Preset is a predefined stream: "conn" (conn.log's columns) or
	// "notice" (notice.log's, with tern alerts mapped as docs/alerts.md
	// says). Empty: the columns come from Columns.
	Preset string `toml:"preset"`
	// Columns defines the stream when Preset is empty.
	Columns []Column `toml:"columns"`
	// Path is the log's name in the #path line; default: the preset's name,
	// else the first message's Type without its "zeek." prefix.
	Path string `toml:"path"`
	// Include keeps only these columns (Zeek's logging filter $include).
	Include []string `toml:"include"`
	// Exclude drops these columns (Zeek's $exclude).
	Exclude []string `toml:"exclude"`
	// Separator is the column separator.
	Separator string `toml:"separator"`
	// SetSeparator separates the elements of sets and vectors.
	SetSeparator string `toml:"set_separator"`
	// EmptyField marks an empty string, set or vector.
	EmptyField string `toml:"empty_field"`
	// UnsetField marks a column the message does not have.
	UnsetField string `toml:"unset_field"`
	// EnableUTF8 writes valid, printable UTF-8 as it is; false escapes every
	// byte outside printable ASCII (LogAscii::enable_utf_8).
	EnableUTF8 bool `toml:"enable_utf_8"`
	// IncludeMeta writes the "#" header block and the "#close" trailer.
	IncludeMeta bool `toml:"include_meta"`
	// TSV starts a file with one plain line of column names instead of the
	// "#" block, and writes no trailer (Zeek's per-filter tsv = T).
	TSV bool `toml:"tsv"`
	// UseJSON writes one JSON object per row instead (no header).
	UseJSON bool `toml:"use_json"`
	// JSONTimestamps is how JSON rows write times: "epoch" (seconds),
	// "millis" or "iso8601".
	JSONTimestamps string `toml:"json_timestamps"`
	// JSONIncludeUnset writes unset columns as null instead of leaving
	// them out.
	JSONIncludeUnset bool `toml:"json_include_unset_fields"`
	// AlertCache is how many alerts the notice stream remembers so that an
	// alert update is written as the whole updated alert.
	AlertCache int `toml:"alert_cache"`
}

// DefaultConfig returns the defaults (Zeek's).
func DefaultConfig() Config {
	return Config{
		Separator: "\t", SetSeparator: ",", EmptyField: "(empty)", UnsetField: "-",
		EnableUTF8: true, IncludeMeta: true, JSONTimestamps: "epoch", AlertCache: 10000,
	}
}

var presets = map[string]struct {
	path string
	cols []Column
}{
	"conn":   {"conn", cols("ts:time uid:string id.orig_h:addr id.orig_p:port id.resp_h:addr id.resp_p:port proto:enum service:string duration:interval orig_bytes:count resp_bytes:count conn_state:string local_orig:bool local_resp:bool missed_bytes:count history:string orig_pkts:count orig_ip_bytes:count resp_pkts:count resp_ip_bytes:count tunnel_parents:set[string]")},
	"notice": {"notice", cols("ts:time uid:string id.orig_h:addr id.orig_p:port id.resp_h:addr id.resp_p:port fuid:string file_mime_type:string file_desc:string proto:enum note:enum msg:string sub:string src:addr dst:addr p:port n:count peer_descr:string actions:set[enum] email_dest:set[string] suppress_for:interval")},
}

func cols(spec string) []Column {
	var out []Column
	for _, c := range strings.Fields(spec) {
		name, typ, _ := strings.Cut(c, ":")
		out = append(out, Column{Name: name, Type: typ})
	}
	return out
}

var headerSources = map[string]bool{
	"Timestamp": true, "Type": true, "Logger": true, "Hostname": true,
	"Payload": true, "Severity": true, "Pid": true, "Uuid": true,
}

// Validate checks the config.
func (c Config) Validate() error {
	var errs []error
	columns := c.Columns
	switch p, ok := presets[c.Preset]; {
	case c.Preset == "":
		if len(c.Columns) == 0 {
			errs = append(errs, errors.New("columns: required unless preset is set"))
		}
	case !ok:
		errs = append(errs, fmt.Errorf("preset: must be conn or notice, not %q", c.Preset))
	case len(c.Columns) > 0:
		errs = append(errs, errors.New("columns: not allowed with a preset"))
	default:
		columns = p.cols
	}
	seen := map[string]bool{}
	for i, col := range columns {
		if col.Name == "" || strings.ContainsFunc(col.Name, func(r rune) bool { return r < 0x21 || r == 0x7f || r == '\\' }) ||
			strings.Contains(col.Name, c.Separator) && c.Separator != "" {
			errs = append(errs, fmt.Errorf("columns: entry %d: name %q must be non-empty, without spaces, controls, backslashes or the separator", i+1, col.Name))
		}
		if seen[col.Name] {
			errs = append(errs, fmt.Errorf("columns: entry %d: duplicate name %q", i+1, col.Name))
		}
		seen[col.Name] = true
		if _, err := zeekfmt.ParseType(col.Type); err != nil {
			errs = append(errs, fmt.Errorf("columns: entry %d (%s): %v", i+1, col.Name, err))
		}
	}
	for _, k := range []struct {
		key   string
		names []string
	}{{"include", c.Include}, {"exclude", c.Exclude}} {
		for _, n := range k.names {
			if !seen[n] {
				errs = append(errs, fmt.Errorf("%s: %q is not a column", k.key, n))
			}
		}
	}
	bad := func(s string) bool {
		return s == "" || strings.ContainsAny(s, "\\\n\r") || s[0] == '#'
	}
	for _, k := range []struct{ key, v string }{
		{"separator", c.Separator}, {"set_separator", c.SetSeparator},
		{"empty_field", c.EmptyField}, {"unset_field", c.UnsetField},
	} {
		if bad(k.v) {
			errs = append(errs, fmt.Errorf("%s: must be non-empty, without backslash, CR or LF, and not start with '#'", k.key))
		}
	}
	if c.Separator != "" && c.SetSeparator != "" {
		if strings.Contains(c.SetSeparator, c.Separator) || strings.Contains(c.Separator, c.SetSeparator) {
			errs = append(errs, errors.New("set_separator: must not overlap the separator"))
		}
		for _, k := range []struct{ key, v string }{{"empty_field", c.EmptyField}, {"unset_field", c.UnsetField}} {
			if strings.Contains(k.v, c.Separator) || strings.Contains(k.v, c.SetSeparator) {
				errs = append(errs, fmt.Errorf("%s: must not contain a separator", k.key))
			}
		}
	}
	if c.TSV && c.UseJSON {
		errs = append(errs, errors.New("tsv: not with use_json"))
	}
	switch c.JSONTimestamps {
	case "epoch", "millis", "iso8601":
	default:
		errs = append(errs, fmt.Errorf("json_timestamps: must be epoch, millis or iso8601, not %q", c.JSONTimestamps))
	}
	if c.AlertCache < 0 {
		errs = append(errs, errors.New("alert_cache: must not be negative"))
	}
	return errors.Join(errs...)
}

// header sources of a column
const (
	srcField = iota
	srcTimestamp
	srcType
	srcLogger
	srcHostname
	srcPayload
	srcSeverity
	srcPid
	srcUUID
)

type column struct {
	name  string
	field string
	t     zeekfmt.Type
	src   int
}

// Encoder writes Zeek log rows. It implements pipeline.Framer: file
// outputs get the header block and the #close trailer from it.
type Encoder struct {
	cfg    Config
	set    pipeline.Settings
	path   string
	cols   []column
	esc    zeekfmt.Escaper
	slots  []int
	notice bool
	alerts *alertmsg.Store
	scr    pipeline.Message // an alert mapped onto notice columns
}

var (
	_ pipeline.Encoder = (*Encoder)(nil)
	_ pipeline.Framer  = (*Encoder)(nil)
)

// New returns a Zeek encoder.
func New(set pipeline.Settings, cfg Config) (*Encoder, error) {
	e := &Encoder{cfg: cfg, set: set, path: cfg.Path}
	columns := cfg.Columns
	if p, ok := presets[cfg.Preset]; ok {
		columns = p.cols
		if e.path == "" {
			e.path = p.path
		}
	}
	for _, c := range columns {
		if len(cfg.Include) > 0 && !slices.Contains(cfg.Include, c.Name) || slices.Contains(cfg.Exclude, c.Name) {
			continue
		}
		t, err := zeekfmt.ParseType(c.Type)
		if err != nil {
			return nil, fmt.Errorf("columns: %s: %v", c.Name, err)
		}
		col := column{name: c.Name, field: c.Name, t: t}
		if c.Field != "" {
			col.field = c.Field
		}
		if headerSources[col.field] && c.Field != "" {
			col.src = map[string]int{
				"Timestamp": srcTimestamp, "Type": srcType, "Logger": srcLogger, "Hostname": srcHostname,
				"Payload": srcPayload, "Severity": srcSeverity, "Pid": srcPid, "Uuid": srcUUID,
			}[col.field]
		}
		e.cols = append(e.cols, col)
	}
	if len(e.cols) == 0 {
		return nil, errors.New("include: no column left")
	}
	e.slots = make([]int, len(e.cols))
	e.esc = zeekfmt.Escaper{
		Sep:  zeekfmt.Separators{Sep: cfg.Separator, SetSep: cfg.SetSeparator, Empty: cfg.EmptyField, Unset: cfg.UnsetField},
		UTF8: cfg.EnableUTF8,
	}
	if cfg.Preset == "notice" {
		e.notice = true
		e.alerts = alertmsg.NewStore(cfg.AlertCache)
	}
	return e, nil
}

// Factory registers the encoder.
func Factory() pipeline.Factory[pipeline.Encoder] {
	return pipeline.NewFactory(Type, sample, DefaultConfig, func(s pipeline.Settings, c Config) (pipeline.Encoder, error) {
		return New(s, c)
	}).WithSummary("Zeek ASCII logs, byte-exact")
}

// Header writes the header block Zeek starts a file with: separators,
// #path, #open (local time), #fields and #types; with tsv, one line of
// column names. Nothing with use_json or include_meta = false.
func (e *Encoder) Header(dst []byte, first *pipeline.Message, open time.Time) []byte {
	if e.cfg.TSV {
		for i, c := range e.cols {
			if i > 0 {
				dst = append(dst, e.cfg.Separator...)
			}
			dst = append(dst, c.name...)
		}
		return append(dst, '\n')
	}
	if e.cfg.UseJSON || !e.cfg.IncludeMeta {
		return dst
	}
	if open.IsZero() && e.set.Now != nil {
		open = e.set.Now()
	}
	sep := e.cfg.Separator
	dst = append(dst, "#separator "...)
	dst = zeekfmt.AppendMetaEscaped(dst, sep)
	dst = append(dst, '\n')
	meta := func(key, val string) {
		dst = append(dst, '#')
		dst = append(dst, key...)
		dst = append(dst, sep...)
		dst = zeekfmt.AppendMetaEscaped(dst, val)
		dst = append(dst, '\n')
	}
	meta("set_separator", e.cfg.SetSeparator)
	meta("empty_field", e.cfg.EmptyField)
	meta("unset_field", e.cfg.UnsetField)
	meta("path", e.pathFor(first))
	meta("open", open.Local().Format(zeekTime))
	dst = append(dst, "#fields"...)
	for _, c := range e.cols {
		dst = append(dst, sep...)
		dst = append(dst, c.name...)
	}
	dst = append(dst, "\n#types"...)
	for _, c := range e.cols {
		dst = append(dst, sep...)
		dst = append(dst, c.t.Name...)
	}
	return append(dst, '\n')
}

// zeekTime is Zeek's "%Y-%m-%d-%H-%M-%S".
const zeekTime = "2006-01-02-15-04-05"

// Trailer writes the "#close" line (local time); nothing with tsv.
func (e *Encoder) Trailer(dst []byte, close time.Time) []byte {
	if e.cfg.UseJSON || !e.cfg.IncludeMeta || e.cfg.TSV {
		return dst
	}
	if close.IsZero() && e.set.Now != nil {
		close = e.set.Now()
	}
	dst = append(dst, "#close"...)
	dst = append(dst, e.cfg.Separator...)
	dst = zeekfmt.AppendMetaEscaped(dst, close.Local().Format(zeekTime))
	return append(dst, '\n')
}

func (e *Encoder) pathFor(first *pipeline.Message) string {
	if e.path != "" {
		return e.path
	}
	if first != nil {
		if p, ok := strings.CutPrefix(first.Type, "zeek."); ok && p != "" {
			return p
		}
	}
	return "tern"
}

// locate fills e.slots with the index of each column's field in m (-1 when
// absent). Fields usually come in column order, so each lookup starts where
// the previous one matched.
func (e *Encoder) locate(m *pipeline.Message) {
	fs := m.Fields
	next := 0
	for i := range e.cols {
		c := &e.cols[i]
		e.slots[i] = -1
		if c.src != srcField {
			continue
		}
		if next < len(fs) && fs[next].Name == c.field {
			e.slots[i] = next
			next++
			continue
		}
		for k := range fs {
			if fs[k].Name == c.field {
				e.slots[i] = k
				next = k + 1
				break
			}
		}
	}
}

func (e *Encoder) Encode(dst []byte, m *pipeline.Message) ([]byte, error) {
	if e.notice && m.Type == alert.Type {
		m = e.noticeFromAlert(e.alerts.Resolve(m))
	}
	e.locate(m)
	if e.cfg.UseJSON {
		return e.encodeJSON(dst, m)
	}
	start := len(dst)
	for i := range e.cols {
		if i > 0 {
			dst = append(dst, e.cfg.Separator...)
		}
		var err error
		dst, err = e.appendColumn(dst, m, i)
		if err != nil {
			return dst[:start], err
		}
	}
	if len(dst) > start && dst[start] == '#' {
		// A row must never read as a header line (btest ascii-line-like-comment).
		dst = append(dst, 0, 0, 0)
		copy(dst[start+4:], dst[start+1:len(dst)-3])
		copy(dst[start:], `\x23`)
	}
	return dst, nil
}

func (e *Encoder) appendColumn(dst []byte, m *pipeline.Message, i int) ([]byte, error) {
	c := &e.cols[i]
	esc := &e.esc
	switch c.src {
	case srcTimestamp:
		return zeekfmt.AppendTime(dst, m.Timestamp), nil
	case srcType:
		return e.appendText(dst, m.Type), nil
	case srcLogger:
		return e.appendText(dst, m.Logger), nil
	case srcHostname:
		return e.appendText(dst, m.Hostname), nil
	case srcPayload:
		return e.appendText(dst, m.Payload), nil
	case srcSeverity:
		return strconv.AppendInt(dst, int64(m.Severity), 10), nil
	case srcPid:
		return strconv.AppendInt(dst, int64(m.Pid), 10), nil
	case srcUUID:
		return pipeline.AppendUUID(dst, m.UUID), nil
	}
	k := e.slots[i]
	if k < 0 {
		if c.name == "ts" && c.t.Kind == zeekfmt.KindTime && !c.t.Container {
			return zeekfmt.AppendTime(dst, m.Timestamp), nil
		}
		return append(dst, esc.Sep.Unset...), nil
	}
	f := &m.Fields[k]
	n := f.Len()
	if n == 0 {
		return append(dst, esc.Sep.Empty...), nil
	}
	if !c.t.Container {
		n = 1 // a scalar column shows the first value
	}
	for j := 0; j < n; j++ {
		if j > 0 {
			dst = append(dst, esc.Sep.SetSep...)
		}
		if f.Unset(j) {
			dst = append(dst, esc.Sep.Unset...) // a vector slot that holds nothing
			continue
		}
		var err error
		dst, err = e.appendValue(dst, c, f, j)
		if err != nil {
			return dst, fmt.Errorf("column %s: %w", c.name, err)
		}
	}
	return dst, nil
}

func (e *Encoder) appendText(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, e.esc.Sep.Empty...)
	}
	return e.esc.AppendString(dst, s, false)
}

// appendValue renders value j of f for column c in the column's type,
// converting from the field's type where that loses nothing.
func (e *Encoder) appendValue(dst []byte, c *column, f *pipeline.Field, j int) ([]byte, error) {
	v := f.Value(j)
	switch c.t.Kind {
	case zeekfmt.KindBool:
		b, ok := asBool(f.Type, v)
		if !ok {
			return dst, errors.New("not a bool")
		}
		if b {
			return append(dst, 'T'), nil
		}
		return append(dst, 'F'), nil
	case zeekfmt.KindInt:
		n, ok := asInt(f.Type, v)
		if !ok {
			return dst, fmt.Errorf("not a %s", c.t.Name)
		}
		return strconv.AppendInt(dst, n, 10), nil
	case zeekfmt.KindCount:
		n, ok := asUint(f.Type, v)
		if !ok {
			return dst, fmt.Errorf("not a %s", c.t.Name)
		}
		return strconv.AppendUint(dst, n, 10), nil
	case zeekfmt.KindDouble:
		x, ok := asDouble(f.Type, v)
		if !ok {
			return dst, errors.New("not a double")
		}
		return zeekfmt.AppendDouble(dst, x), nil
	case zeekfmt.KindTime, zeekfmt.KindInterval:
		switch f.Type {
		case pipeline.TypeDouble:
			return zeekfmt.AppendTimeDouble(dst, v.Double()), nil
		case pipeline.TypeInteger:
			return zeekfmt.AppendTime(dst, intNs(v.Int(), f.Representation())), nil
		case pipeline.TypeString, pipeline.TypeBytes:
			if ns, ok := zeekfmt.ParseSecondsNs([]byte(v.Str())); ok {
				return zeekfmt.AppendTime(dst, ns), nil
			}
		}
		return dst, fmt.Errorf("not a %s", c.t.Name)
	}
	switch f.Type {
	case pipeline.TypeString, pipeline.TypeBytes:
		s := v.Str()
		if s == "" {
			return append(dst, e.esc.Sep.Empty...), nil
		}
		if out, ok := appendNetwork(dst, c, s); ok {
			return out, nil
		}
		return e.esc.AppendString(dst, s, c.t.Container), nil
	case pipeline.TypeInteger:
		return strconv.AppendInt(dst, v.Int(), 10), nil
	case pipeline.TypeUnsigned:
		return strconv.AppendUint(dst, v.Uint(), 10), nil
	case pipeline.TypeDouble:
		return zeekfmt.AppendDouble(dst, v.Double()), nil
	case pipeline.TypeBool:
		if v.Bool() {
			return append(dst, 'T'), nil
		}
		return append(dst, 'F'), nil
	}
	return dst, fmt.Errorf("unknown field type %v", f.Type)
}

// appendNetwork writes an addr or subnet column's value in Zeek's canonical
// form (RFC 5952 IPv6, IPv4-mapped as IPv4, subnets with host bits cleared).
// ok is false when the column is neither or the text is not an address:
// such text is written escaped, as it came.
func appendNetwork(dst []byte, c *column, s string) ([]byte, bool) {
	switch {
	case c.t.Kind == zeekfmt.KindAddr:
		if a, ok := zeekfmt.CanonicalAddr(s); ok {
			return a.AppendTo(dst), true
		}
	case c.t.Subnet:
		if p, ok := zeekfmt.CanonicalSubnet(s); ok {
			return p.AppendTo(dst), true
		}
	}
	return dst, false
}

// intNs reads an integer time: nanoseconds with representation "ns", and
// so on for "us" and "ms"; seconds otherwise.
func intNs(n int64, repr string) int64 {
	mult := int64(1e9)
	switch repr {
	case "ns":
		return n
	case "us":
		mult = 1e3
	case "ms":
		mult = 1e6
	}
	if n > math.MaxInt64/mult || n < math.MinInt64/mult {
		if n < 0 {
			return math.MinInt64
		}
		return math.MaxInt64
	}
	return n * mult
}

func asBool(t pipeline.ValueType, v pipeline.Value) (bool, bool) {
	switch t {
	case pipeline.TypeBool:
		return v.Bool(), true
	case pipeline.TypeInteger, pipeline.TypeUnsigned:
		return v.Uint() != 0, v.Uint() == 0 || v.Uint() == 1
	case pipeline.TypeString, pipeline.TypeBytes:
		switch v.Str() {
		case "T", "true", "TRUE", "True", "1":
			return true, true
		case "F", "false", "FALSE", "False", "0":
			return false, true
		}
	}
	return false, false
}

func asInt(t pipeline.ValueType, v pipeline.Value) (int64, bool) {
	switch t {
	case pipeline.TypeInteger:
		return v.Int(), true
	case pipeline.TypeUnsigned:
		return v.Int(), v.Uint() <= math.MaxInt64
	case pipeline.TypeDouble:
		x := v.Double()
		if x == math.Trunc(x) && math.Abs(x) < 1<<63 {
			return int64(x), true
		}
	case pipeline.TypeBool:
		if v.Bool() {
			return 1, true
		}
		return 0, true
	case pipeline.TypeString, pipeline.TypeBytes:
		n, err := strconv.ParseInt(v.Str(), 10, 64)
		return n, err == nil
	}
	return 0, false
}

// asUint reads a count: unsigned as it is, other numbers when they are
// whole and not negative.
func asUint(t pipeline.ValueType, v pipeline.Value) (uint64, bool) {
	switch t {
	case pipeline.TypeUnsigned:
		return v.Uint(), true
	case pipeline.TypeDouble:
		x := v.Double()
		if x == math.Trunc(x) && x >= 0 && x < 1<<64 {
			return uint64(x), true
		}
		return 0, false
	case pipeline.TypeString, pipeline.TypeBytes:
		n, err := strconv.ParseUint(v.Str(), 10, 64)
		return n, err == nil
	}
	n, ok := asInt(t, v)
	return uint64(n), ok && n >= 0
}

func asDouble(t pipeline.ValueType, v pipeline.Value) (float64, bool) {
	switch t {
	case pipeline.TypeDouble:
		return v.Double(), true
	case pipeline.TypeInteger:
		return float64(v.Int()), true
	case pipeline.TypeUnsigned:
		return float64(v.Uint()), true
	case pipeline.TypeString, pipeline.TypeBytes:
		return zeekfmt.ParseDouble([]byte(v.Str()))
	}
	return 0, false
}

// encodeJSON writes a row as Zeek's JSON writer does: keys in column
// order, unset columns left out (or null), sets as arrays.
func (e *Encoder) encodeJSON(dst []byte, m *pipeline.Message) ([]byte, error) {
	start := len(dst)
	dst = append(dst, '{')
	n := 0
	for i := range e.cols {
		c := &e.cols[i]
		k := e.slots[i]
		var f *pipeline.Field
		if k >= 0 {
			f = &m.Fields[k]
		}
		header := c.src != srcField || k < 0 && c.name == "ts" && c.t.Kind == zeekfmt.KindTime && !c.t.Container
		if f == nil && !header && !e.cfg.JSONIncludeUnset {
			continue
		}
		if n > 0 {
			dst = append(dst, ',')
		}
		n++
		dst, _ = jsonx.AppendString(dst, c.name)
		dst = append(dst, ':')
		if header {
			dst = e.jsonHeader(dst, c, m)
			continue
		}
		if f == nil {
			dst = append(dst, "null"...)
			continue
		}
		if c.t.Container {
			dst = append(dst, '[')
		}
		cnt := f.Len()
		if !c.t.Container && cnt > 1 {
			cnt = 1
		}
		if cnt == 0 && !c.t.Container {
			// An empty value: Zeek writes "" for an empty string.
			if c.t.Kind == zeekfmt.KindString || c.t.Kind == zeekfmt.KindAddr {
				dst = append(dst, `""`...)
			} else {
				dst = append(dst, "null"...)
			}
			continue
		}
		for j := 0; j < cnt; j++ {
			if j > 0 {
				dst = append(dst, ',')
			}
			if f.Unset(j) {
				dst = append(dst, "null"...) // Zeek's JSON writes a vector hole as null
				continue
			}
			var err error
			if dst, err = e.jsonValue(dst, c, f, j); err != nil {
				return dst[:start], fmt.Errorf("column %s: %w", c.name, err)
			}
		}
		if c.t.Container {
			dst = append(dst, ']')
		}
	}
	return append(dst, '}'), nil
}

func (e *Encoder) jsonHeader(dst []byte, c *column, m *pipeline.Message) []byte {
	switch c.src {
	case srcSeverity:
		return strconv.AppendInt(dst, int64(m.Severity), 10)
	case srcPid:
		return strconv.AppendInt(dst, int64(m.Pid), 10)
	case srcUUID:
		dst = append(dst, '"')
		return append(pipeline.AppendUUID(dst, m.UUID), '"')
	case srcType:
		return appendZeekJSONString(dst, m.Type)
	case srcLogger:
		return appendZeekJSONString(dst, m.Logger)
	case srcHostname:
		return appendZeekJSONString(dst, m.Hostname)
	case srcPayload:
		return appendZeekJSONString(dst, m.Payload)
	}
	return e.jsonTime(dst, m.Timestamp)
}

func (e *Encoder) jsonTime(dst []byte, ns int64) []byte {
	switch e.cfg.JSONTimestamps {
	case "millis":
		ms := ns / 1e6
		if ns%1e6 < 0 {
			ms--
		}
		return strconv.AppendInt(dst, ms, 10)
	case "iso8601":
		dst = append(dst, '"')
		return append(rfc3339.Append(dst, ns, 6), '"')
	}
	// Seconds with up to six decimals, as Zeek's double rendering.
	var buf [32]byte
	t := zeekfmt.AppendTime(buf[:0], ns)
	n := len(t)
	for n > 0 && t[n-1] == '0' && t[n-2] != '.' {
		n--
	}
	return append(dst, t[:n]...)
}

func (e *Encoder) jsonValue(dst []byte, c *column, f *pipeline.Field, j int) ([]byte, error) {
	v := f.Value(j)
	switch c.t.Kind {
	case zeekfmt.KindBool:
		b, ok := asBool(f.Type, v)
		if !ok {
			return dst, errors.New("not a bool")
		}
		return strconv.AppendBool(dst, b), nil
	case zeekfmt.KindInt:
		n, ok := asInt(f.Type, v)
		if !ok {
			return dst, fmt.Errorf("not a %s", c.t.Name)
		}
		return strconv.AppendInt(dst, n, 10), nil
	case zeekfmt.KindCount:
		n, ok := asUint(f.Type, v)
		if !ok {
			return dst, fmt.Errorf("not a %s", c.t.Name)
		}
		return strconv.AppendUint(dst, n, 10), nil
	case zeekfmt.KindDouble, zeekfmt.KindInterval:
		x, ok := asDouble(f.Type, v)
		if c.t.Kind == zeekfmt.KindInterval && f.Type == pipeline.TypeInteger {
			x, ok = float64(intNs(v.Int(), f.Representation()))/1e9, true
		}
		if !ok {
			return dst, fmt.Errorf("not a %s", c.t.Name)
		}
		return jsonx.AppendFloat(dst, x), nil
	case zeekfmt.KindTime:
		switch f.Type {
		case pipeline.TypeDouble:
			x := v.Double()
			if math.IsNaN(x) || math.IsInf(x, 0) || math.Abs(x) > 9.2e9 {
				return jsonx.AppendFloat(dst, x), nil
			}
			return e.jsonTime(dst, int64(math.Round(x*1e6))*1e3), nil
		case pipeline.TypeInteger:
			return e.jsonTime(dst, intNs(v.Int(), f.Representation())), nil
		case pipeline.TypeString, pipeline.TypeBytes:
			if ns, ok := zeekfmt.ParseSecondsNs([]byte(v.Str())); ok {
				return e.jsonTime(dst, ns), nil
			}
		}
		return dst, errors.New("not a time")
	}
	switch f.Type {
	case pipeline.TypeInteger:
		dst = append(dst, '"')
		return append(strconv.AppendInt(dst, v.Int(), 10), '"'), nil
	case pipeline.TypeUnsigned:
		dst = append(dst, '"')
		return append(strconv.AppendUint(dst, v.Uint(), 10), '"'), nil
	case pipeline.TypeString, pipeline.TypeBytes:
		if c.t.Kind == zeekfmt.KindAddr || c.t.Subnet {
			dst = append(dst, '"')
			if out, ok := appendNetwork(dst, c, v.Str()); ok {
				return append(out, '"'), nil
			}
			dst = dst[:len(dst)-1]
		}
	case pipeline.TypeDouble:
		dst = append(dst, '"')
		return append(zeekfmt.AppendDouble(dst, v.Double()), '"'), nil
	case pipeline.TypeBool:
		if v.Bool() {
			return append(dst, `"T"`...), nil
		}
		return append(dst, `"F"`...), nil
	}
	return appendZeekJSONString(dst, v.Str()), nil
}

// appendZeekJSONString writes s as Zeek's JSON writer does: control bytes
// and invalid UTF-8 become the text \xNN, then JSON escaping applies.
func appendZeekJSONString(dst []byte, s string) []byte {
	clean := true
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == 0x7f {
				clean = false
				break
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 {
			clean = false
			break
		}
		i += size
	}
	if clean {
		dst, _ = jsonx.AppendString(dst, s)
		return dst
	}
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c < 0x20 || c == 0x7f:
				dst = append(dst, '\\', '\\', 'x', hex[c>>4], hex[c&0xf])
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size <= 1 {
			dst = append(dst, '\\', '\\', 'x', hex[c>>4], hex[c&0xf])
			i++
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xf])
		} else {
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

// noticeFromAlert maps an alert onto notice.log's columns
// (docs/alerts.md, "Zeek").
func (e *Encoder) noticeFromAlert(a *pipeline.Message) *pipeline.Message {
	m := &e.scr
	fields := m.Fields[:0]
	*m = pipeline.Message{Type: a.Type, Timestamp: a.Timestamp, Logger: a.Logger, Hostname: a.Hostname, UUID: a.UUID}
	str := func(name, v string) {
		fields = append(fields, pipeline.NewField(name, pipeline.TypeString, "", pipeline.StringValue(v)))
	}
	port := func(name string, v int64) {
		fields = append(fields, pipeline.NewField(name, pipeline.TypeInteger, "", pipeline.IntValue(v)))
	}
	if f := a.FirstField(alert.FieldStartTime); f != nil && f.Len() > 0 && f.Type == pipeline.TypeInteger {
		fields = append(fields, pipeline.NewField("ts", pipeline.TypeInteger, "ns", f.Value(0)))
	}
	src := alertmsg.EndpointOf(a, alert.FieldSource)
	dst := alertmsg.EndpointOf(a, alert.FieldTarget)
	if src.IP != "" {
		str("id.orig_h", src.IP)
	}
	if src.HasPort {
		port("id.orig_p", src.Port)
	}
	if dst.IP != "" {
		str("id.resp_h", dst.IP)
	}
	if dst.HasPort {
		port("id.resp_p", dst.Port)
	}
	if p := alertmsg.Proto(a, src, dst); p != "" {
		str("proto", strings.ToLower(p))
	}
	note := "Tern::Alert"
	if k, ok := a.FieldString(alert.FieldKeyName); ok && k != "" {
		note = "Tern::" + k
	}
	str("note", note)
	if s, ok := a.FieldString(alert.FieldDescription); ok {
		str("msg", s)
	}
	if s, ok := a.FieldString(alert.FieldMethodDescription); ok {
		str("sub", s)
	}
	if src.IP != "" {
		str("src", src.IP)
	}
	if dst.IP != "" {
		str("dst", dst.IP)
	}
	if dst.HasPort {
		port("p", dst.Port)
	}
	str("actions", "Notice::ACTION_LOG")
	m.Fields = fields
	return m
}
