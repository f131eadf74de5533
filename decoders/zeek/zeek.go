// Package zeek is the decoder for Zeek logs: the ASCII (TSV) writer's
// format with its "#" header block, and Zeek's JSON logs.
package zeek

import (
	_ "embed"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"unsafe"

	"github.com/ternlog/tern/internal/jsonx"
	"github.com/ternlog/tern/internal/rfc3339"
	"github.com/ternlog/tern/internal/zeekfmt"
	"github.com/ternlog/tern/pipeline"
)

//go:embed sample.toml
var sample string

// Type selects this decoder.
const Type = "zeek"

// Limits on one log's shape; larger headers and rows are refused.
const (
	MaxColumns = 4096
	maxDepth   = 16 // nesting of JSON objects flattened into dotted names
)

// Config is the [decoders.<name>] table with type = "zeek".
type Config struct {
	// Format is "auto" (JSON when a record starts with '{', TSV otherwise),
	// "tsv" or "json".
	Format string `toml:"format"`
	// Path names the log (message Type "zeek.<path>") for sources that send
	// no #path line and JSON records without a "_path" key.
	Path string `toml:"path"`
	// Fields and Types are the columns of sources that send rows without a
	// #fields/#types header (Zeek with include_meta = F); they also type the
	// keys of JSON records. Empty: such rows are decode errors.
	Fields []string `toml:"fields"`
	// Types holds one Zeek type name per entry of Fields ("time", "count",
	// "set[string]", …).
	Types []string `toml:"types"`
	// JSONTimestamps says how JSON logs write time values: "auto", "epoch"
	// (seconds), "millis" or "iso8601".
	JSONTimestamps string `toml:"json_timestamps"`
	// MaxSources caps the sources whose header is kept at once; beyond it
	// the header of an arbitrary other source is forgotten (counted as
	// tern_plugin_errors_total{kind="header_evicted"}).
	MaxSources int `toml:"max_sources"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Format: "auto", JSONTimestamps: "auto", MaxSources: 1024}
}

// Validate checks the config.
func (c Config) Validate() error {
	var errs []error
	switch c.Format {
	case "auto", "tsv", "json":
	default:
		errs = append(errs, fmt.Errorf("format: must be auto, tsv or json, not %q", c.Format))
	}
	switch c.JSONTimestamps {
	case "auto", "epoch", "millis", "iso8601":
	default:
		errs = append(errs, fmt.Errorf("json_timestamps: must be auto, epoch, millis or iso8601, not %q", c.JSONTimestamps))
	}
	if len(c.Fields) != len(c.Types) {
		errs = append(errs, fmt.Errorf("types: %d types for %d fields", len(c.Types), len(c.Fields)))
	}
	if len(c.Fields) > MaxColumns {
		errs = append(errs, fmt.Errorf("fields: more than %d", MaxColumns))
	}
	for i, t := range c.Types {
		if _, err := zeekfmt.ParseType(t); err != nil {
			errs = append(errs, fmt.Errorf("types: entry %d: %v", i+1, err))
		}
	}
	if c.MaxSources < 1 {
		errs = append(errs, errors.New("max_sources: must be at least 1"))
	}
	return errors.Join(errs...)
}

// header is what a source's "#" lines said. It is never changed once
// published: a new header line makes a modified copy.
type header struct {
	sep   zeekfmt.Separators
	path  string
	typ   string // message Type, "zeek.<path>"
	names []string
	types []zeekfmt.Type
	index map[string]int // column by name, for JSON keys
}

func (h *header) withPath(p string) {
	h.path = p
	h.typ = "zeek"
	if p != "" {
		h.typ = "zeek." + p
	}
}

func (h *header) setColumns(names []string, types []zeekfmt.Type) {
	h.names, h.types = names, types
	h.index = make(map[string]int, len(names))
	for i, n := range names {
		if _, dup := h.index[n]; !dup {
			h.index[n] = i
		}
	}
}

// Decoder decodes Zeek logs. It is safe for concurrent use: each source's
// header sits behind a mutex and is replaced, never modified.
type Decoder struct {
	cfg     Config
	set     pipeline.Settings
	def     *header
	mu      sync.Mutex
	sources map[string]*header
}

var _ pipeline.Decoder = (*Decoder)(nil)

// New returns a Zeek decoder.
func New(set pipeline.Settings, cfg Config) (*Decoder, error) {
	def := &header{sep: zeekfmt.DefaultSeparators}
	def.withPath(cfg.Path)
	types := make([]zeekfmt.Type, len(cfg.Types))
	for i, t := range cfg.Types {
		var err error
		if types[i], err = zeekfmt.ParseType(t); err != nil {
			return nil, fmt.Errorf("types: %v", err)
		}
	}
	def.setColumns(slices.Clone(cfg.Fields), types)
	set.DeclareErrors("header_evicted")
	return &Decoder{cfg: cfg, set: set, def: def, sources: map[string]*header{}}, nil
}

// Factory registers the decoder.
func Factory() pipeline.Factory[pipeline.Decoder] {
	return pipeline.NewFactory(Type, sample, DefaultConfig, func(s pipeline.Settings, c Config) (pipeline.Decoder, error) {
		return New(s, c)
	}).WithSummary("Zeek ASCII (TSV) and JSON logs")
}

func (d *Decoder) Decode(rec pipeline.Record, out *pipeline.Batch) error {
	data := rec.Data
	if len(data) == 0 {
		return nil // a blank line carries no event
	}
	n := out.Len()
	var err error
	switch {
	case d.cfg.Format == "json" || d.cfg.Format == "auto" && data[0] == '{':
		err = d.decodeJSON(rec, out)
	case data[0] == '#':
		return d.meta(rec.Source, data)
	default:
		err = d.decodeRow(rec, out)
	}
	if err != nil {
		out.Truncate(n)
	}
	return err
}

func (d *Decoder) current(source string) *header {
	d.mu.Lock()
	h := d.sources[source]
	d.mu.Unlock()
	return h
}

func (d *Decoder) store(source string, h *header) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.sources[source]; !ok && len(d.sources) >= d.cfg.MaxSources {
		for k := range d.sources {
			delete(d.sources, k)
			d.set.Error("header_evicted")
			break
		}
	}
	d.sources[source] = h
}

// meta handles a header line. It produces no message.
func (d *Decoder) meta(source string, line []byte) error {
	const sepKey = "#separator "
	if len(line) >= len(sepKey) && string(line[:len(sepKey)]) == sepKey {
		sep := string(zeekfmt.Unescape(nil, line[len(sepKey):]))
		if sep == "" {
			return errors.New("#separator: empty")
		}
		h := &header{sep: zeekfmt.DefaultSeparators}
		h.sep.Sep = sep
		h.withPath(d.cfg.Path)
		d.store(source, h)
		return nil
	}
	cur := d.current(source)
	if cur == nil {
		// No #separator line came first (a reader that started late, or a
		// header forgotten for max_sources): a partial header could give
		// rows the wrong columns, so wait for the next whole header.
		return nil
	}
	sep := cur.sep.Sep
	key, val, ok := cut(line[1:], sep)
	if !ok {
		key, val = line[1:], nil
	}
	h := *cur
	switch string(key) {
	case "set_separator":
		h.sep.SetSep = string(zeekfmt.Unescape(nil, val))
		if h.sep.SetSep == "" {
			return errors.New("#set_separator: empty")
		}
	case "empty_field":
		h.sep.Empty = string(zeekfmt.Unescape(nil, val))
	case "unset_field":
		h.sep.Unset = string(zeekfmt.Unescape(nil, val))
	case "path":
		h.withPath(string(zeekfmt.Unescape(nil, val)))
	case "fields":
		names := splitAll(val, sep)
		if len(names) > MaxColumns {
			return fmt.Errorf("#fields: more than %d columns", MaxColumns)
		}
		types := h.types
		if len(types) != len(names) {
			types = nil // the #types line that follows will match
		}
		h.setColumns(names, types)
	case "types":
		names := splitAll(val, sep)
		if len(names) > MaxColumns {
			return fmt.Errorf("#types: more than %d columns", MaxColumns)
		}
		types := make([]zeekfmt.Type, len(names))
		for i, n := range names {
			t, err := zeekfmt.ParseType(n)
			if err != nil {
				return fmt.Errorf("#types: column %d: %v", i+1, err)
			}
			types[i] = t
		}
		h.types = types
	case "close":
		d.mu.Lock()
		delete(d.sources, source)
		d.mu.Unlock()
		return nil
	default:
		return nil // #open and unknown keys change nothing
	}
	d.store(source, &h)
	return nil
}

func cut(b []byte, sep string) (before, after []byte, ok bool) {
	for i := 0; i+len(sep) <= len(b); i++ {
		if b[i] == sep[0] && string(b[i:i+len(sep)]) == sep {
			return b[:i], b[i+len(sep):], true
		}
	}
	return b, nil, false
}

func splitAll(b []byte, sep string) []string {
	var out []string
	for {
		before, after, ok := cut(b, sep)
		out = append(out, string(before))
		if !ok || len(out) > MaxColumns {
			return out
		}
		b = after
	}
}

func (d *Decoder) decodeRow(rec pipeline.Record, out *pipeline.Batch) error {
	h := d.current(rec.Source)
	if h == nil || h.names == nil {
		h = d.def
	}
	if len(h.names) == 0 {
		return errors.New("row before any #fields header (and no fields in the config)")
	}
	if len(h.types) != len(h.names) {
		return fmt.Errorf("header has %d #fields but %d #types", len(h.names), len(h.types))
	}
	m := out.Add()
	m.Type = h.typ
	var scratch [512]byte
	rest := rec.Data
	for i := range h.names {
		col, after, more := cut(rest, h.sep.Sep)
		if more != (i < len(h.names)-1) {
			return fmt.Errorf("row has %s columns than the %d of #fields", ternary(more, "more", "fewer"), len(h.names))
		}
		rest = after
		t := h.types[i]
		kind := valueKind(t)
		name := h.names[i]
		switch string(col) {
		case h.sep.Unset:
			continue
		case h.sep.Empty:
			m.AddField(pipeline.NewField(name, valueType(kind), repr(kind, nil)))
			continue
		}
		f := pipeline.Field{Name: name, Type: valueType(kind)}
		if !t.Container {
			v, err := parseValue(kind, col, out, scratch[:0])
			if err != nil {
				return fmt.Errorf("column %s: %v", name, err)
			}
			f.Append(v)
			f.SetRepresentation(repr(kind, col))
			if kind == zeekfmt.KindTime && name == "ts" {
				ns, ok := zeekfmt.ParseSecondsNs(col)
				if !ok {
					ns = int64(v.Double() * 1e9)
				}
				m.Timestamp = ns
			}
		} else {
			first := true
			for elems := col; ; {
				e, after, more := cut(elems, h.sep.SetSep)
				if f.Len() >= pipeline.MaxValues {
					return fmt.Errorf("column %s: more than %d values", name, pipeline.MaxValues)
				}
				v := pipeline.UnsetValue() // a hole in a vector holds nothing
				switch string(e) {
				case h.sep.Unset:
				case h.sep.Empty:
					if kind != zeekfmt.KindString && kind != zeekfmt.KindAddr {
						return fmt.Errorf("column %s: %q inside a set", name, e)
					}
					v = pipeline.StringValue("")
				default:
					var err error
					if v, err = parseValue(kind, e, out, scratch[:0]); err != nil {
						return fmt.Errorf("column %s: %v", name, err)
					}
				}
				if first {
					f.SetRepresentation(repr(kind, e))
					first = false
				}
				f.Append(v)
				if !more {
					break
				}
				elems = after
			}
		}
		m.AddField(f)
	}
	return nil
}

func ternary(c bool, a, b string) string {
	if c {
		return a
	}
	return b
}

// valueKind is the kind a column's values are read as: ports are counts in
// Zeek but small, so they read as integers like other tools' ports.
func valueKind(t zeekfmt.Type) zeekfmt.Kind {
	if t.Port {
		return zeekfmt.KindInt
	}
	return t.Kind
}

func valueType(k zeekfmt.Kind) pipeline.ValueType {
	switch k {
	case zeekfmt.KindBool:
		return pipeline.TypeBool
	case zeekfmt.KindInt:
		return pipeline.TypeInteger
	case zeekfmt.KindCount:
		return pipeline.TypeUnsigned // up to 2^64-1
	case zeekfmt.KindDouble, zeekfmt.KindTime, zeekfmt.KindInterval:
		return pipeline.TypeDouble
	}
	return pipeline.TypeString
}

// repr is the representation of a field of kind k whose first value is v.
func repr(k zeekfmt.Kind, v []byte) string {
	switch k {
	case zeekfmt.KindTime:
		return "date-time"
	case zeekfmt.KindInterval:
		return "interval"
	case zeekfmt.KindAddr:
		if a, err := netip.ParseAddr(bytesString(v)); err == nil {
			if a.Is4() {
				return "ipv4"
			}
			return "ipv6"
		}
	}
	return ""
}

func bytesString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// parseValue reads one TSV value of kind k (already split, still escaped).
func parseValue(k zeekfmt.Kind, b []byte, out *pipeline.Batch, scratch []byte) (pipeline.Value, error) {
	switch k {
	case zeekfmt.KindBool:
		switch string(b) {
		case "T":
			return pipeline.BoolValue(true), nil
		case "F":
			return pipeline.BoolValue(false), nil
		}
		return pipeline.Value{}, fmt.Errorf("bool must be T or F, not %s", quote(b))
	case zeekfmt.KindInt:
		v, err := strconv.ParseInt(bytesString(b), 10, 64)
		if err != nil {
			return pipeline.Value{}, fmt.Errorf("not an int: %s", quote(b))
		}
		return pipeline.IntValue(v), nil
	case zeekfmt.KindCount:
		v, err := strconv.ParseUint(bytesString(b), 10, 64)
		if err != nil {
			return pipeline.Value{}, fmt.Errorf("not a count: %s", quote(b))
		}
		return pipeline.UintValue(v), nil
	case zeekfmt.KindDouble, zeekfmt.KindTime, zeekfmt.KindInterval:
		v, ok := zeekfmt.ParseDouble(b)
		if !ok {
			return pipeline.Value{}, fmt.Errorf("not a number: %s", quote(b))
		}
		return pipeline.DoubleValue(v), nil
	}
	if zeekfmt.HasEscape(b) {
		b = zeekfmt.Unescape(scratch, b)
	}
	return pipeline.StringValue(out.Str(b)), nil
}

func quote(b []byte) string {
	if len(b) > 64 {
		return strconv.Quote(string(b[:64])) + "…"
	}
	return strconv.Quote(string(b))
}

// decodeJSON reads one Zeek JSON log line: a flat object whose keys are the
// column names. Keys the source's header or the config know get their Zeek
// type; others are typed from the JSON value.
func (d *Decoder) decodeJSON(rec pipeline.Record, out *pipeline.Batch) error {
	h := d.current(rec.Source)
	if h == nil || h.names == nil {
		h = d.def
	}
	j := jsonDecoder{d: d, h: h, out: out, m: out.Add(), path: h.path}
	j.s.Reset(rec.Data)
	if j.s.Peek() != '{' {
		return errors.New("JSON object expected")
	}
	if err := j.object(nil, 0); err != nil {
		return err
	}
	if !j.s.AtEnd() {
		return j.s.Unexpected("end of input")
	}
	j.m.Type = "zeek"
	if j.path != "" {
		j.m.Type = "zeek." + j.path
	}
	return nil
}

type jsonDecoder struct {
	d       *Decoder
	h       *header
	s       jsonx.Scanner
	out     *pipeline.Batch
	m       *pipeline.Message
	path    string
	scratch []byte
	values  int
}

// object reads an object whose keys get prefix (flattening nested objects).
func (j *jsonDecoder) object(prefix []byte, depth int) error {
	s := &j.s
	if depth > maxDepth {
		return errors.New("objects nested too deeply")
	}
	s.Advance() // '{'
	if s.Peek() == '}' {
		s.Advance()
		return nil
	}
	for {
		if s.Peek() != '"' {
			return s.Unexpected("string key")
		}
		raw, esc, err := s.String()
		if err != nil {
			return err
		}
		key := raw
		switch {
		case esc:
			key = jsonx.Unescape(prefix, raw)
		case prefix != nil:
			key = append(prefix, raw...)
		}
		if s.Peek() != ':' {
			return s.Unexpected("':'")
		}
		s.Advance()
		if err := j.member(key, depth); err != nil {
			return err
		}
		switch s.Peek() {
		case ',':
			s.Advance()
		case '}':
			s.Advance()
			return nil
		default:
			return s.Unexpected("',' or '}'")
		}
	}
}

func (j *jsonDecoder) kindOf(key []byte) (zeekfmt.Type, bool) {
	if i, ok := j.h.index[bytesString(key)]; ok && i < len(j.h.types) {
		return j.h.types[i], true
	}
	if string(key) == "ts" {
		return zeekfmt.Type{Name: "time", Kind: zeekfmt.KindTime}, true
	}
	return zeekfmt.Type{}, false
}

func (j *jsonDecoder) member(key []byte, depth int) error {
	s := &j.s
	if len(j.m.Fields) >= pipeline.MaxFields {
		return fmt.Errorf("more than %d fields", pipeline.MaxFields)
	}
	switch s.Peek() {
	case '{':
		prefix := append(slices.Clip(key), '.')
		return j.object(prefix, depth+1)
	case 'n':
		if !s.Literal("null") {
			return s.Unexpected("value")
		}
		return nil // unset
	}
	t, known := j.kindOf(key)
	if string(key) == "_path" && s.Peek() == '"' {
		raw, esc, err := s.String()
		if err != nil {
			return err
		}
		j.path = j.str(raw, esc)
		return nil
	}
	name := j.out.Str(key)
	if s.Peek() == '[' {
		s.Advance()
		f := pipeline.Field{Name: name}
		kind := valueKind(t)
		if !known {
			kind = j.inferKind()
		}
		f.Type = valueType(kind)
		if s.Peek() == ']' {
			s.Advance()
			f.SetRepresentation(repr(kind, nil))
			j.m.AddField(f)
			return nil
		}
		for {
			if j.values++; j.values > pipeline.MaxValues {
				return fmt.Errorf("more than %d values", pipeline.MaxValues)
			}
			if s.Peek() == 'n' && s.Literal("null") {
				f.AppendUnset() // a hole in a vector
			} else {
				v, text, err := j.scalar(name, kind)
				if err != nil {
					return err
				}
				if f.Len() == 0 {
					f.SetRepresentation(repr(kind, text))
				}
				f.Append(v)
			}
			switch s.Peek() {
			case ',':
				s.Advance()
			case ']':
				s.Advance()
				j.m.AddField(f)
				return nil
			default:
				return s.Unexpected("',' or ']'")
			}
		}
	}
	kind := valueKind(t)
	if !known {
		kind = j.inferKind()
	}
	if j.values++; j.values > pipeline.MaxValues {
		return fmt.Errorf("more than %d values", pipeline.MaxValues)
	}
	v, text, err := j.scalar(name, kind)
	if err != nil {
		return err
	}
	f := pipeline.Field{Name: name, Type: valueType(kind)}
	f.SetRepresentation(repr(kind, text))
	f.Append(v)
	j.m.AddField(f)
	return nil
}

// inferKind guesses the kind of the value at the scanner (the first element
// of an array) without consuming it.
func (j *jsonDecoder) inferKind() zeekfmt.Kind {
	s := &j.s
	pos := s.Pos()
	defer s.SetPos(pos)
	switch c := s.Peek(); {
	case c == 't' || c == 'f':
		return zeekfmt.KindBool
	case c == '-' || '0' <= c && c <= '9':
		raw, isInt, err := s.Number()
		if err != nil || !isInt {
			return zeekfmt.KindDouble
		}
		if _, ok := jsonx.ParseInt(raw); !ok {
			if _, ok := jsonx.ParseUint(raw); ok {
				return zeekfmt.KindCount // above int64: only a count holds it
			}
			return zeekfmt.KindDouble
		}
		return zeekfmt.KindInt
	}
	return zeekfmt.KindString
}

func (j *jsonDecoder) str(raw []byte, esc bool) string {
	if esc {
		j.scratch = jsonx.Unescape(j.scratch[:0], raw)
		raw = j.scratch
	}
	return j.out.Str(raw)
}

// scalar reads one value for a field of kind k; text is the value's text
// when it is a string (for the representation of addresses).
func (j *jsonDecoder) scalar(name string, k zeekfmt.Kind) (v pipeline.Value, text []byte, err error) {
	s := &j.s
	c := s.Peek()
	switch k {
	case zeekfmt.KindBool:
		switch {
		case s.Literal("true"):
			return pipeline.BoolValue(true), nil, nil
		case s.Literal("false"):
			return pipeline.BoolValue(false), nil, nil
		}
		return v, nil, fmt.Errorf("%s: bool expected", name)
	case zeekfmt.KindInt:
		raw, isInt, err := j.number(name)
		if err != nil {
			return v, nil, err
		}
		n, ok := jsonx.ParseInt(raw)
		if !isInt || !ok {
			return v, nil, fmt.Errorf("%s: integer expected, got %s", name, quote(raw))
		}
		return pipeline.IntValue(n), nil, nil
	case zeekfmt.KindCount:
		raw, isInt, err := j.number(name)
		if err != nil {
			return v, nil, err
		}
		n, ok := jsonx.ParseUint(raw)
		if !isInt || !ok {
			return v, nil, fmt.Errorf("%s: count expected, got %s", name, quote(raw))
		}
		return pipeline.UintValue(n), nil, nil
	case zeekfmt.KindDouble, zeekfmt.KindInterval:
		raw, _, err := j.number(name)
		if err != nil {
			return v, nil, err
		}
		f, ok := jsonx.ParseFloat(raw)
		if !ok {
			return v, nil, fmt.Errorf("%s: number out of range: %s", name, quote(raw))
		}
		return pipeline.DoubleValue(f), nil, nil
	case zeekfmt.KindTime:
		ns, secs, err := j.time(name)
		if err != nil {
			return v, nil, err
		}
		if name == "ts" {
			j.m.Timestamp = ns
		}
		return pipeline.DoubleValue(secs), nil, nil
	}
	// Strings (and addresses, enums, subnets): a non-string JSON value for
	// a string column is kept as its JSON text.
	if c != '"' {
		raw, err := s.Skip(2)
		if err != nil {
			return v, nil, fmt.Errorf("%s: %v", name, err)
		}
		return pipeline.StringValue(j.out.Str(raw)), raw, nil
	}
	raw, esc, err := s.String()
	if err != nil {
		return v, nil, fmt.Errorf("%s: %v", name, err)
	}
	str := j.str(raw, esc)
	return pipeline.StringValue(str), unsafe.Slice(unsafe.StringData(str), len(str)), nil
}

func (j *jsonDecoder) number(name string) ([]byte, bool, error) {
	s := &j.s
	if c := s.Peek(); c != '-' && (c < '0' || c > '9') {
		return nil, false, fmt.Errorf("%s: number expected", name)
	}
	raw, isInt, err := s.Number()
	if err != nil {
		return nil, false, fmt.Errorf("%s: %v", name, err)
	}
	return raw, isInt, nil
}

// time reads a time value written with any of Zeek's json_timestamps
// settings; it returns exact nanoseconds and float seconds.
func (j *jsonDecoder) time(name string) (int64, float64, error) {
	s := &j.s
	mode := j.d.cfg.JSONTimestamps
	if s.Peek() == '"' {
		if mode != "auto" && mode != "iso8601" {
			return 0, 0, fmt.Errorf("%s: number expected (json_timestamps = %q)", name, mode)
		}
		raw, esc, err := s.String()
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %v", name, err)
		}
		if esc {
			j.scratch = jsonx.Unescape(j.scratch[:0], raw)
			raw = j.scratch
		}
		ns, err := rfc3339.Parse(raw)
		if err != nil {
			return 0, 0, fmt.Errorf("%s: %v: %s", name, err, quote(raw))
		}
		return ns, nsSeconds(ns), nil
	}
	if mode == "iso8601" {
		return 0, 0, fmt.Errorf("%s: ISO 8601 string expected", name)
	}
	raw, isInt, err := j.number(name)
	if err != nil {
		return 0, 0, err
	}
	if mode == "millis" || mode == "auto" && isInt && len(raw) > 11 {
		ms, ok := jsonx.ParseInt(raw)
		if !isInt || !ok || ms > math.MaxInt64/1_000_000 || ms < math.MinInt64/1_000_000 {
			return 0, 0, fmt.Errorf("%s: integer milliseconds expected, got %s", name, quote(raw))
		}
		return ms * 1e6, float64(ms) / 1e3, nil
	}
	f, ok := jsonx.ParseFloat(raw)
	if !ok {
		return 0, 0, fmt.Errorf("%s: number out of range: %s", name, quote(raw))
	}
	ns, exact := zeekfmt.ParseSecondsNs(raw)
	if !exact {
		if math.Abs(f) >= 9.2e9 {
			return 0, 0, fmt.Errorf("%s: time out of range: %s", name, quote(raw))
		}
		ns = int64(math.Round(f * 1e9))
	}
	return ns, f, nil
}

func nsSeconds(ns int64) float64 {
	sec, frac := ns/1e9, ns%1e9
	return float64(sec) + float64(frac)/1e9
}
