// Package json is the decoder of JSON records: any JSON object, or tern's
// canonical message form.
package json

import (
	_ "embed"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"sync"
	"unsafe"

	"github.com/ternlog/tern/internal/jsonx"
	"github.com/ternlog/tern/internal/rfc3339"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
)

//go:embed sample.toml
var sample string

// Type is the value of `type` that selects this decoder.
const Type = "json"

// Config is what the user writes under [decoders.<name>] with type = "json".
type Config struct {
	// Format is "object" (any JSON object: header keys fill the message
	// header, every other key becomes a field) or "canonical" (tern's
	// canonical message form, as the json encoder writes it by default).
	Format string `toml:"format"`
	// Headers maps the keys named in HeaderKeys to the message header
	// (object format). False keeps every key as a field.
	Headers bool `toml:"headers"`
	// HeaderKeys names the input key that fills each header field (object
	// format); "" leaves that header alone and keeps the key as a field.
	HeaderKeys HeaderKeys `toml:"header_keys"`
	// TimestampUnit is the unit of a numeric timestamp: "s" (seconds,
	// with an optional fraction), "ms", "us" or "ns".
	TimestampUnit string `toml:"timestamp_unit"`
	// Objects says what becomes of a nested object: "flatten" makes one
	// field per member, named parent<separator>child; "json" keeps the
	// object as one string field holding its JSON text, with
	// representation "json".
	Objects string `toml:"objects"`
	// Separator joins the names of flattened objects.
	Separator string `toml:"separator"`
	// MaxDepth is the deepest level flattened (the record itself is level
	// 1); objects below it are kept as JSON text. At most 64.
	MaxDepth int `toml:"max_depth"`
	// Nulls says what becomes of a null value: "skip" drops the key, "json"
	// keeps a string field holding null with representation "json".
	Nulls string `toml:"nulls"`
}

// HeaderKeys names the input key of each header field.
type HeaderKeys struct {
	UUID       string `toml:"uuid"`
	Timestamp  string `toml:"timestamp"`
	Type       string `toml:"type"`
	Logger     string `toml:"logger"`
	Severity   string `toml:"severity"`
	Payload    string `toml:"payload"`
	EnvVersion string `toml:"env_version"`
	Pid        string `toml:"pid"`
	Hostname   string `toml:"hostname"`
}

func (h HeaderKeys) list() [nHeaders]string {
	return [nHeaders]string{h.UUID, h.Timestamp, h.Type, h.Logger, h.Severity, h.Payload, h.EnvVersion, h.Pid, h.Hostname}
}

const maxMaxDepth = 64

// DefaultConfig returns the defaults: any object, the canonical header
// names, timestamps in seconds, nested objects flattened with ".".
func DefaultConfig() Config {
	return Config{
		Format:  "object",
		Headers: true,
		HeaderKeys: HeaderKeys{
			UUID: "uuid", Timestamp: "timestamp", Type: "type", Logger: "logger", Severity: "severity",
			Payload: "payload", EnvVersion: "env_version", Pid: "pid", Hostname: "hostname",
		},
		TimestampUnit: "s",
		Objects:       "flatten",
		Separator:     ".",
		MaxDepth:      8,
		Nulls:         "skip",
	}
}

var tsUnits = map[string]int64{"s": 1e9, "ms": 1e6, "us": 1e3, "ns": 1}

// Validate reports every invalid setting.
func (c Config) Validate() error {
	var errs []error
	if c.Format != "object" && c.Format != "canonical" {
		errs = append(errs, fmt.Errorf("format: %q is not \"object\" or \"canonical\"", c.Format))
	}
	if _, ok := tsUnits[c.TimestampUnit]; !ok {
		errs = append(errs, fmt.Errorf("timestamp_unit: %q is not \"s\", \"ms\", \"us\" or \"ns\"", c.TimestampUnit))
	}
	if c.Objects != "flatten" && c.Objects != "json" {
		errs = append(errs, fmt.Errorf("objects: %q is not \"flatten\" or \"json\"", c.Objects))
	}
	if c.Objects == "flatten" && c.Separator == "" {
		errs = append(errs, errors.New("separator: must not be empty"))
	}
	if c.MaxDepth < 1 || c.MaxDepth > maxMaxDepth {
		errs = append(errs, fmt.Errorf("max_depth: %d is not between 1 and %d", c.MaxDepth, maxMaxDepth))
	}
	if c.Nulls != "skip" && c.Nulls != "json" {
		errs = append(errs, fmt.Errorf("nulls: %q is not \"skip\" or \"json\"", c.Nulls))
	}
	seen := map[string]bool{}
	for _, k := range c.HeaderKeys.list() {
		if k != "" && seen[k] {
			errs = append(errs, fmt.Errorf("header_keys: %q used twice", k))
		}
		seen[k] = true
	}
	return errors.Join(errs...)
}

// Decoder decodes one JSON object per record into one message. It is safe
// for concurrent use.
type Decoder struct {
	canonical bool
	headers   [nHeaders]string // input key per header; "" when not mapped
	byLen     [64]uint16       // bit h set when header h's key has that length (keys < 64 bytes)
	tsUnit    int64            // nanoseconds per unit of a numeric timestamp
	tsDigits  int              // fraction digits that unit keeps
	flatten   bool
	sep       string
	maxDepth  int
	keepNull  bool
}

var _ pipeline.Decoder = (*Decoder)(nil)

// New makes a decoder; it does no I/O.
func New(_ pipeline.Settings, cfg Config) (*Decoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	d := &Decoder{
		canonical: cfg.Format == "canonical",
		tsUnit:    tsUnits[cfg.TimestampUnit],
		flatten:   cfg.Objects == "flatten",
		sep:       cfg.Separator,
		maxDepth:  cfg.MaxDepth,
		keepNull:  cfg.Nulls == "json",
	}
	for u := d.tsUnit; u > 1; u /= 10 {
		d.tsDigits++
	}
	if cfg.Headers {
		d.headers = cfg.HeaderKeys.list()
		for h, k := range d.headers {
			if k != "" {
				d.byLen[min(len(k), 63)] |= 1 << h
			}
		}
	}
	return d, nil
}

// Factory registers the decoder.
func Factory() pipeline.Factory[pipeline.Decoder] {
	return pipeline.NewFactory(Type, sample, DefaultConfig, func(s pipeline.Settings, c Config) (pipeline.Decoder, error) {
		return New(s, c)
	}).WithSummary("a JSON object, or tern's canonical message JSON")
}

func (d *Decoder) Decode(rec pipeline.Record, out *pipeline.Batch) error {
	n := out.Len()
	m := out.Add()
	var err error
	if d.canonical {
		err = codec.DecodeJSON(rec.Data, m, out)
	} else {
		err = d.decodeObject(rec.Data, m, out)
	}
	if err != nil {
		out.Truncate(n)
	}
	return err
}

// The header fields, in HeaderKeys order.
const (
	hUUID = iota
	hTimestamp
	hType
	hLogger
	hSeverity
	hPayload
	hEnvVersion
	hPid
	hHostname
	nHeaders
)

// objState is the state of decoding one record. It lives on the stack.
type objState struct {
	s    jsonx.Scanner
	m    *pipeline.Message
	b    *pipeline.Batch
	data []byte
	// base is the record copied once into the batch's arena: a string or
	// key without escapes is a slice of it, so decoding copies each byte
	// once instead of once per string.
	base string
	sc   *scratch // for escaped strings, taken from scratches when needed
}

type scratch struct{ buf []byte }

var scratches = sync.Pool{New: func() any { return &scratch{buf: make([]byte, 0, 256)} }}

func (d *Decoder) decodeObject(data []byte, m *pipeline.Message, b *pipeline.Batch) error {
	st := objState{m: m, b: b, data: data, base: b.Str(data)}
	st.s.Reset(data)
	err := d.object(&st)
	if st.sc != nil && cap(st.sc.buf) <= 64<<10 {
		scratches.Put(st.sc)
	}
	return err
}

// text returns raw, a slice of the record, as a string that shares the
// record's copy in the arena.
func (st *objState) text(raw []byte) string {
	// raw is data[i:j] (the scanner never uses three-index slices), so its
	// capacity gives i.
	i := cap(st.data) - cap(raw)
	return st.base[i : i+len(raw)]
}

// unescape decodes raw into the scratch buffer; the result is valid until
// the next call.
func (st *objState) unescape(raw []byte) []byte {
	if st.sc == nil {
		st.sc = scratches.Get().(*scratch)
	}
	st.sc.buf = jsonx.Unescape(st.sc.buf[:0], raw)
	return st.sc.buf
}

func (st *objState) str(raw []byte, esc bool) string {
	if esc {
		return st.b.Str(st.unescape(raw))
	}
	return st.text(raw)
}

func bytesOf(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

func (d *Decoder) object(st *objState) error {
	switch st.s.Peek() {
	case '{':
	case 0:
		if st.s.AtEnd() {
			return errors.New("empty record")
		}
		fallthrough
	default:
		return errors.New("record is not a JSON object")
	}
	st.s.Advance()
	if err := d.members(st, "", 1); err != nil {
		return err
	}
	if !st.s.AtEnd() {
		return st.s.Unexpected("end of record")
	}
	return nil
}

// members reads the members of an object whose '{' was consumed. prefix
// is the parent's name and the separator ("" at the top level).
func (d *Decoder) members(st *objState, prefix string, depth int) error {
	s := &st.s
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
		if esc {
			key = st.unescape(raw)
		}
		if s.Peek() != ':' {
			return s.Unexpected("':'")
		}
		s.Advance()
		done := false
		if depth == 1 && d.byLen[min(len(key), 63)] != 0 {
			if h := d.header(key); h >= 0 {
				if done, err = d.setHeader(st, h); err != nil {
					return err
				}
			}
		}
		if !done {
			if esc && depth == 1 {
				key = st.unescape(raw) // setHeader may have used the scratch
			}
			var name string
			switch {
			case prefix != "":
				name = st.b.StrConcat(bytesOf(prefix), key)
			case esc:
				name = st.b.Str(key)
			default:
				name = st.text(raw)
			}
			if err := d.value(st, name, depth); err != nil {
				return err
			}
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

// header returns the header that key fills, or -1.
func (d *Decoder) header(key []byte) int {
	for m := d.byLen[min(len(key), 63)]; m != 0; m &= m - 1 {
		h := bits.TrailingZeros16(m)
		if string(key) == d.headers[h] {
			return h
		}
	}
	return -1
}

// setHeader fills header h from the value that follows. When the value
// cannot fill it (wrong type, not a UUID, not a timestamp, severity out of
// 0..7) it consumes nothing and returns false: the key becomes a field.
func (d *Decoder) setHeader(st *objState, h int) (bool, error) {
	s := &st.s
	m := st.m
	start := s.Pos()
	c := s.Peek()
	switch h {
	case hUUID:
		if c != '"' {
			return false, nil
		}
		raw, esc, err := s.String()
		if err != nil {
			return false, err
		}
		if esc {
			raw = st.unescape(raw)
		}
		u, ok := pipeline.ParseUUID(unsafe.String(unsafe.SliceData(raw), len(raw)))
		if !ok {
			s.SetPos(start)
			return false, nil
		}
		m.UUID = u
	case hTimestamp:
		var ns int64
		var ok bool
		switch {
		case c == '"':
			raw, esc, err := s.String()
			if err != nil {
				return false, err
			}
			if esc {
				raw = st.unescape(raw)
			}
			var perr error
			ns, perr = rfc3339.Parse(raw)
			ok = perr == nil
		case c == '-' || '0' <= c && c <= '9':
			raw, _, err := s.Number()
			if err != nil {
				return false, err
			}
			ns, ok = numberTimestamp(raw, d.tsUnit, d.tsDigits)
		}
		if !ok {
			s.SetPos(start)
			return false, nil
		}
		m.Timestamp = ns
	case hSeverity, hPid:
		if c != '-' && (c < '0' || c > '9') {
			return false, nil
		}
		raw, isInt, err := s.Number()
		if err != nil {
			return false, err
		}
		v, ok := jsonx.ParseInt(raw)
		switch {
		case !isInt || !ok:
			ok = false
		case h == hSeverity:
			ok = 0 <= v && v <= 7
		default:
			ok = 0 <= v && v <= math.MaxInt32
		}
		if !ok {
			s.SetPos(start)
			return false, nil
		}
		if h == hSeverity {
			m.Severity = int32(v)
		} else {
			m.Pid = int32(v)
		}
	default: // string headers
		if c != '"' {
			return false, nil
		}
		raw, esc, err := s.String()
		if err != nil {
			return false, err
		}
		v := st.str(raw, esc)
		switch h {
		case hType:
			m.Type = v
		case hLogger:
			m.Logger = v
		case hPayload:
			m.Payload = v
		case hEnvVersion:
			m.EnvVersion = v
		case hHostname:
			m.Hostname = v
		}
	}
	return true, nil
}

// numberTimestamp converts a JSON number of the given unit (nanoseconds
// per unit, keeping digits fraction digits) to nanoseconds, exactly for
// plain decimals.
func numberTimestamp(raw []byte, unit int64, digits int) (int64, bool) {
	neg := raw[0] == '-'
	p := raw
	if neg {
		p = p[1:]
	}
	var ip, fp []byte
	i := 0
	for i < len(p) && p[i] >= '0' && p[i] <= '9' {
		i++
	}
	ip = p[:i]
	if i < len(p) && p[i] == '.' {
		j := i + 1
		for j < len(p) && p[j] >= '0' && p[j] <= '9' {
			j++
		}
		fp = p[i+1 : j]
		i = j
	}
	if i < len(p) { // exponent: go through a float
		f, ok := jsonx.ParseFloat(raw)
		f *= float64(unit)
		if !ok || math.IsNaN(f) || f >= math.MaxInt64 || f <= math.MinInt64 {
			return 0, false
		}
		return int64(math.Round(f)), true
	}
	whole, ok := jsonx.ParseInt(ip)
	if !ok || whole > math.MaxInt64/unit {
		return 0, false
	}
	var frac int64
	for k := range digits {
		frac *= 10
		if k < len(fp) {
			frac += int64(fp[k] - '0')
		}
	}
	v := whole * unit
	if v > math.MaxInt64-frac {
		return 0, false
	}
	v += frac
	if neg {
		v = -v
	}
	return v, true
}

// newField appends an empty field and returns it. It fills the slot in
// place: copying a whole Field into the slice costs a write barrier per
// pointer while the GC runs.
func (st *objState) newField(name string, t pipeline.ValueType, repr string) *pipeline.Field {
	fs := st.m.Fields
	if len(fs) < cap(fs) {
		fs = fs[:len(fs)+1]
		fs[len(fs)-1] = pipeline.Field{}
	} else {
		fs = append(fs, pipeline.Field{})
	}
	st.m.Fields = fs
	f := &fs[len(fs)-1]
	f.Name = name
	f.Type = t
	f.SetRepresentation(repr)
	return f
}

func (st *objState) add(name string, t pipeline.ValueType, repr string, v pipeline.Value) *pipeline.Field {
	f := st.newField(name, t, repr)
	f.Append(v)
	return f
}

// value reads the value of the member called name.
func (d *Decoder) value(st *objState, name string, depth int) error {
	s := &st.s
	switch c := s.Peek(); {
	case c == '"':
		raw, esc, err := s.String()
		if err != nil {
			return err
		}
		st.add(name, pipeline.TypeString, "", pipeline.StringValue(st.str(raw, esc)))
	case c == '-' || '0' <= c && c <= '9':
		raw, isInt, err := s.Number()
		if err != nil {
			return err
		}
		if isInt {
			if v, ok := jsonx.ParseInt(raw); ok {
				st.add(name, pipeline.TypeInteger, "", pipeline.IntValue(v))
				return nil
			}
		}
		f, _ := jsonx.ParseFloat(raw) // ±Inf past the float64 range
		st.add(name, pipeline.TypeDouble, "", pipeline.DoubleValue(f))
	case c == 't' || c == 'f':
		switch {
		case s.Literal("true"):
			st.add(name, pipeline.TypeBool, "", pipeline.BoolValue(true))
		case s.Literal("false"):
			st.add(name, pipeline.TypeBool, "", pipeline.BoolValue(false))
		default:
			return s.Unexpected("value")
		}
	case c == 'n':
		if !s.Literal("null") {
			return s.Unexpected("value")
		}
		if d.keepNull {
			st.add(name, pipeline.TypeString, "json", pipeline.StringValue("null"))
		}
	case c == '{':
		if !d.flatten || depth >= d.maxDepth {
			return d.raw(st, name)
		}
		start := s.Pos()
		s.Advance()
		if s.Peek() == '}' { // keep the empty object, which flattening would lose
			s.SetPos(start)
			return d.raw(st, name)
		}
		return d.members(st, st.b.StrConcat(bytesOf(name), bytesOf(d.sep)), depth+1)
	case c == '[':
		return d.array(st, name)
	default:
		return s.Unexpected("value")
	}
	return nil
}

// raw keeps the value that follows as its JSON text.
func (d *Decoder) raw(st *objState, name string) error {
	raw, err := st.s.Skip(jsonx.MaxDepth)
	if err != nil {
		return err
	}
	st.add(name, pipeline.TypeString, "json", pipeline.StringValue(st.text(raw)))
	return nil
}

// array reads an array of scalars of one type (integers and doubles mixed
// give doubles) as a multi-valued field; any other array is kept as JSON
// text.
func (d *Decoder) array(st *objState, name string) error {
	s := &st.s
	start := s.Pos()
	s.Advance()
	if s.Peek() == ']' {
		s.Advance()
		st.newField(name, pipeline.TypeString, "")
		return nil
	}
	nf := len(st.m.Fields)
	var f *pipeline.Field
	asDouble := false
	for {
		var v pipeline.Value
		var t pipeline.ValueType
		switch c := s.Peek(); {
		case c == '"':
			raw, esc, err := s.String()
			if err != nil {
				return err
			}
			t, v = pipeline.TypeString, pipeline.StringValue(st.str(raw, esc))
		case c == '-' || '0' <= c && c <= '9':
			raw, isInt, err := s.Number()
			if err != nil {
				return err
			}
			n, ok := jsonx.ParseInt(raw)
			if isInt && ok && !asDouble {
				t, v = pipeline.TypeInteger, pipeline.IntValue(n)
			} else {
				x, _ := jsonx.ParseFloat(raw)
				t, v = pipeline.TypeDouble, pipeline.DoubleValue(x)
			}
		case c == 't' && s.Literal("true"):
			t, v = pipeline.TypeBool, pipeline.BoolValue(true)
		case c == 'f' && s.Literal("false"):
			t, v = pipeline.TypeBool, pipeline.BoolValue(false)
		default:
			t = 255 // null, object, array or garbage: keep the text
		}
		if f == nil && t != 255 {
			f = st.add(name, t, "", v)
		} else if f != nil && t == f.Type {
			f.Append(v)
		} else if f != nil && !asDouble && (t == pipeline.TypeDouble && f.Type == pipeline.TypeInteger || t == pipeline.TypeInteger && f.Type == pipeline.TypeDouble) {
			// Integers and doubles mixed: read the array again as doubles.
			st.m.Fields = st.m.Fields[:nf]
			f = nil
			asDouble = true
			s.SetPos(start + 1)
			continue
		} else {
			st.m.Fields = st.m.Fields[:nf]
			s.SetPos(start)
			return d.raw(st, name)
		}
		switch s.Peek() {
		case ',':
			s.Advance()
		case ']':
			s.Advance()
			return nil
		default:
			return s.Unexpected("',' or ']'")
		}
	}
}
