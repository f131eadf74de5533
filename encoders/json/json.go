// Package json is the encoder of JSON records: tern's canonical message
// form, or one flat object per message.
package json

import (
	_ "embed"
	"errors"
	"fmt"
	"hash/maphash"
	"strconv"
	"strings"

	"github.com/ternlog/tern/internal/jsonx"
	"github.com/ternlog/tern/internal/rfc3339"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
)

//go:embed sample.toml
var sample string

// Type is the value of `type` that selects this encoder.
const Type = "json"

// Config is what the user writes under [encoders.<name>] with type = "json".
type Config struct {
	// Mode is "canonical" (tern's canonical message form, which the json
	// decoder reads back with format = "canonical") or "flat" (one object:
	// the chosen headers, then the fields by name).
	Mode string `toml:"mode"`
	// Headers lists the header fields that flat mode writes, in this order,
	// before the fields: uuid, timestamp, type, logger, severity, payload,
	// env_version, pid, hostname.
	Headers []string `toml:"headers"`
	// HeaderKeys names the output key of each header field in flat mode.
	HeaderKeys HeaderKeys `toml:"header_keys"`
	// SkipEmpty leaves out, in flat mode, header fields that are unset: a
	// zero UUID or timestamp, an empty string, pid 0. Severity is always
	// written.
	SkipEmpty bool `toml:"skip_empty"`
	// TimestampFormat is how flat mode writes the timestamp:
	// "rfc3339nano" (up to 9 fraction digits, trailing zeros trimmed),
	// "rfc3339milli" and "rfc3339micro" (3 and 6 digits always), "rfc3339"
	// (whole seconds), all in UTC; or a number: "unix" (seconds with a
	// fraction), "unix_milli" or "unix_nano" (integers).
	TimestampFormat string `toml:"timestamp_format"`
	// Nest turns, in flat mode, field names containing Separator back into
	// nested objects: user.id and user.role become "user":{"id":…,"role":…}.
	Nest bool `toml:"nest"`
	// Separator splits field names for Nest.
	Separator string `toml:"separator"`
}

// HeaderKeys names the output key of each header field.
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

var headerNames = [nHeaders]string{"uuid", "timestamp", "type", "logger", "severity", "payload", "env_version", "pid", "hostname"}

func (h HeaderKeys) list() [nHeaders]string {
	return [nHeaders]string{h.UUID, h.Timestamp, h.Type, h.Logger, h.Severity, h.Payload, h.EnvVersion, h.Pid, h.Hostname}
}

// Timestamp formats of flat mode.
const (
	tsRFC3339Nano = iota
	tsRFC3339Milli
	tsRFC3339Micro
	tsRFC3339
	tsUnix
	tsUnixMilli
	tsUnixNano
)

var tsFormats = map[string]int{
	"rfc3339nano": tsRFC3339Nano, "rfc3339milli": tsRFC3339Milli, "rfc3339micro": tsRFC3339Micro,
	"rfc3339": tsRFC3339, "unix": tsUnix, "unix_milli": tsUnixMilli, "unix_nano": tsUnixNano,
}

// DefaultConfig returns the defaults: the canonical form; for flat mode
// every header under its canonical name, unset ones skipped, no nesting.
func DefaultConfig() Config {
	return Config{
		Mode:    "canonical",
		Headers: append([]string(nil), headerNames[:]...),
		HeaderKeys: HeaderKeys{
			UUID: "uuid", Timestamp: "timestamp", Type: "type", Logger: "logger", Severity: "severity",
			Payload: "payload", EnvVersion: "env_version", Pid: "pid", Hostname: "hostname",
		},
		SkipEmpty:       true,
		TimestampFormat: "rfc3339nano",
		Nest:            false,
		Separator:       ".",
	}
}

// Validate reports every invalid setting.
func (c Config) Validate() error {
	var errs []error
	if c.Mode != "canonical" && c.Mode != "flat" {
		errs = append(errs, fmt.Errorf("mode: %q is not \"canonical\" or \"flat\"", c.Mode))
	}
	seen := map[string]bool{}
	keys := c.HeaderKeys.list()
	for _, h := range c.Headers {
		i := headerIndex(h)
		switch {
		case i < 0:
			errs = append(errs, fmt.Errorf("headers: unknown header %q", h))
		case seen[h]:
			errs = append(errs, fmt.Errorf("headers: %q listed twice", h))
		case keys[i] == "":
			errs = append(errs, fmt.Errorf("header_keys.%s: empty, but headers lists it", h))
		}
		seen[h] = true
	}
	if _, ok := tsFormats[c.TimestampFormat]; !ok {
		errs = append(errs, fmt.Errorf("timestamp_format: unknown format %q", c.TimestampFormat))
	}
	if c.Nest && c.Separator == "" {
		errs = append(errs, errors.New("separator: must not be empty"))
	}
	return errors.Join(errs...)
}

func headerIndex(name string) int {
	for i, n := range headerNames {
		if n == name {
			return i
		}
	}
	return -1
}

// Encoder writes one JSON object per message. Like every encoder it is used
// by one goroutine at a time; it keeps scratch state between calls.
type Encoder struct {
	canonical bool
	headers   []header
	skipEmpty bool
	tsFormat  int
	nest      bool
	sep       string
	replaced  func(float64, ...string)

	tsSec  int64    // second of the last timestamp formatted as RFC 3339
	tsText [19]byte // its "YYYY-MM-DDTHH:MM:SS"
	tsOK   bool

	used   []bool         // fields already written (flat mode)
	fp     []uint64       // cheap fingerprints of the field names
	hasDup bool           // some field name repeats
	next   []int32        // next field with the same name, for messages with many fields
	names  map[string]int // scratch for next
	group  []int32        // scratch: a field and the later ones of its name

	layouts [nLayouts]*layout // by shapeHash (layout.go)
	seen    [nLayouts]uint64  // shapeID of the shape last met unrecorded in each slot
	seed    maphash.Seed
	// credit is how many layouts may still be recorded: one comes back
	// with each replay, and one for every 64 messages written without a
	// layout, so that a sender who makes every shape new (and sends it
	// twice) gets one recording in 64 messages, not one in two.
	credit   int
	misses   int
	rec      *recorder // set while a layout is recorded: &recorder
	recorder recorder
}

// manyFields is the field count above which flat mode finds repeated names
// through a map instead of by scanning, and does not nest: both would be
// quadratic.
const manyFields = 256

type header struct {
	id  int
	key []byte // `"key":`
}

var _ pipeline.Encoder = (*Encoder)(nil)

// New makes an encoder; it does no I/O.
func New(set pipeline.Settings, cfg Config) (*Encoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Encoder{
		seed:      maphash.MakeSeed(),
		credit:    nLayouts,
		canonical: cfg.Mode == "canonical",
		skipEmpty: cfg.SkipEmpty,
		tsFormat:  tsFormats[cfg.TimestampFormat],
		nest:      cfg.Nest,
		sep:       cfg.Separator,
	}
	keys := cfg.HeaderKeys.list()
	for _, h := range cfg.Headers {
		i := headerIndex(h)
		k, _ := jsonx.AppendString(nil, keys[i])
		e.headers = append(e.headers, header{id: i, key: append(k, ':')})
	}
	if set.Telemetry != nil {
		e.replaced = set.Telemetry.Counter("utf8_replaced_total",
			"Bytes of invalid UTF-8 replaced with U+FFFD while encoding.")
	}
	return e, nil
}

// Factory registers the encoder.
func Factory() pipeline.Factory[pipeline.Encoder] {
	return pipeline.NewFactory(Type, sample, DefaultConfig, func(s pipeline.Settings, c Config) (pipeline.Encoder, error) {
		return New(s, c)
	}).WithSummary("canonical or flat JSON")
}

// countReplaced adds to utf8_replaced_total; it does nothing without
// telemetry.
func (e *Encoder) countReplaced(n int) {
	if n > 0 && e.replaced != nil {
		e.replaced(float64(n))
	}
}

func (e *Encoder) Encode(dst []byte, m *pipeline.Message) ([]byte, error) {
	var n int
	if e.canonical {
		dst, n = codec.AppendJSONCount(dst, m)
	} else {
		dst, n = e.appendFlat(dst, m)
	}
	e.countReplaced(n)
	return dst, nil
}

// appendFlat writes {headers…, fields…}.
func (e *Encoder) appendFlat(dst []byte, m *pipeline.Message) ([]byte, int) {
	// A recording cut short by a panic (the engine recovers it and goes
	// on with the next message) must not go on into another message.
	e.rec = nil
	replaced, n := 0, 0
	dst = append(dst, '{')
	first := true
	for _, h := range e.headers {
		if e.skipEmpty && headerEmpty(m, h.id) {
			continue
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst = append(dst, h.key...)
		switch h.id {
		case hUUID:
			dst = append(dst, '"')
			dst = pipeline.AppendUUID(dst, m.UUID)
			dst = append(dst, '"')
		case hTimestamp:
			dst = e.appendTimestamp(dst, m.Timestamp)
		case hSeverity:
			dst = strconv.AppendInt(dst, int64(m.Severity), 10)
		case hPid:
			dst = strconv.AppendInt(dst, int64(m.Pid), 10)
		default:
			dst, n = jsonx.AppendString(dst, headerString(m, h.id))
			replaced += n
		}
	}
	fs := m.Fields
	var h uint64
	cache := len(fs) > 0 && len(fs) <= maxLayoutFields
	if cache {
		h = shapeHash(fs, first)
		if l := e.layoutFor(fs, first, h); l != nil {
			e.credit = min(e.credit+1, nLayouts)
			dst, n = e.replay(dst, fs, l)
			return append(dst, '}'), replaced + n
		}
	}
	if cap(e.used) < len(fs) {
		e.used = make([]bool, len(fs))
	}
	e.used = e.used[:len(fs)]
	clear(e.used)
	if len(fs) > manyFields {
		e.linkNames(fs)
	} else {
		e.findRepeats(fs)
	}
	if cache {
		// A shape met twice in a row of its slot is recorded, so that a
		// stream of ever new shapes costs no recording.
		if e.misses++; e.misses%64 == 0 {
			e.credit = min(e.credit+1, nLayouts)
		}
		if id := e.shapeID(fs, first); e.seen[h%nLayouts] == id && e.credit > 0 {
			e.credit--
			e.rec = e.record(fs, first, len(dst))
		} else {
			e.seen[h%nLayouts] = id
		}
	}
	dst, n, _ = e.members(dst, fs, 0, "", first, 0)
	replaced += n
	if r := e.rec; r != nil {
		e.rec = nil
		r.l.tail = int32(len(r.l.lit))
		r.l.lit = append(r.l.lit, dst[r.mark:]...)
		r.l.replaced = n - r.values
		e.layouts[h%nLayouts] = r.l
	}
	return append(dst, '}'), replaced
}

func headerEmpty(m *pipeline.Message, id int) bool {
	switch id {
	case hUUID:
		return m.UUID == [16]byte{}
	case hTimestamp:
		return m.Timestamp == 0
	case hSeverity:
		return false
	case hPid:
		return m.Pid == 0
	}
	return headerString(m, id) == ""
}

func headerString(m *pipeline.Message, id int) string {
	switch id {
	case hType:
		return m.Type
	case hLogger:
		return m.Logger
	case hPayload:
		return m.Payload
	case hEnvVersion:
		return m.EnvVersion
	}
	return m.Hostname
}

func (e *Encoder) appendTimestamp(dst []byte, ns int64) []byte {
	switch e.tsFormat {
	case tsRFC3339Nano, tsRFC3339Milli, tsRFC3339Micro, tsRFC3339:
		digits := [...]int{rfc3339.Trimmed, 3, 6, 0}[e.tsFormat]
		// Consecutive messages mostly fall in the same second: keep its
		// text and write only the fraction.
		sec, frac := rfc3339.Split(ns)
		if !e.tsOK || sec != e.tsSec {
			rfc3339.AppendDateTime(e.tsText[:0], sec)
			e.tsSec, e.tsOK = sec, true
		}
		dst = append(dst, '"')
		dst = append(dst, e.tsText[:]...)
		dst = rfc3339.AppendFraction(dst, frac, digits)
		return append(dst, 'Z', '"')
	case tsUnixMilli:
		ms := ns / 1e6
		if ns%1e6 < 0 {
			ms--
		}
		return strconv.AppendInt(dst, ms, 10)
	case tsUnixNano:
		return strconv.AppendInt(dst, ns, 10)
	}
	// unix: exact decimal seconds.
	u := uint64(ns)
	if ns < 0 {
		dst = append(dst, '-')
		u = -u
	}
	dst = strconv.AppendUint(dst, u/1e9, 10)
	if frac := u % 1e9; frac != 0 {
		var f [10]byte
		f[0] = '.'
		for i := 9; i >= 1; i-- {
			f[i] = byte('0' + frac%10)
			frac /= 10
		}
		k := 10
		for f[k-1] == '0' {
			k--
		}
		dst = append(dst, f[:k]...)
	}
	return dst
}

// linkNames fills e.next so that repeated names are found in linear time.
func (e *Encoder) linkNames(fs []pipeline.Field) {
	if e.names == nil {
		e.names = make(map[string]int, len(fs))
	}
	clear(e.names)
	if cap(e.next) < len(fs) {
		e.next = make([]int32, len(fs))
	}
	e.next = e.next[:len(fs)]
	for i := len(fs) - 1; i >= 0; i-- {
		e.next[i] = -1
		if j, ok := e.names[fs[i].Name]; ok {
			e.next[i] = int32(j)
		}
		e.names[fs[i].Name] = i
	}
}

// findRepeats sets hasDup, comparing names through integer fingerprints
// (length, first and last byte) so that the usual message with distinct
// names costs no string comparison. A 256-bit set of hashed fingerprints
// keeps the usual message free of scans: earlier fingerprints are scanned
// only when a name's bit is already set. Names chosen to collide cost the
// quadratic scan this replaced, bounded by manyFields names.
func (e *Encoder) findRepeats(fs []pipeline.Field) {
	e.fp = e.fp[:0]
	e.hasDup = false
	var seen [4]uint64
	for i := range fs {
		name := fs[i].Name
		var fp uint64
		if name != "" {
			fp = uint64(len(name))<<16 | uint64(name[0])<<8 | uint64(name[len(name)-1])
		}
		h := (fp * 0x9E3779B97F4A7C15) >> 56
		if bit := uint64(1) << (h & 63); seen[h>>6]&bit == 0 {
			seen[h>>6] |= bit
		} else {
			for j, g := range e.fp {
				if g == fp && fs[j].Name == name {
					e.hasDup = true
					return
				}
			}
		}
		e.fp = append(e.fp, fp)
	}
}

// sameName returns the next field after i with the same name, or -1.
func (e *Encoder) sameName(fs []pipeline.Field, i int) int {
	if len(fs) > manyFields {
		return int(e.next[i])
	}
	if !e.hasDup {
		return -1
	}
	for j := i + 1; j < len(fs); j++ {
		if fs[j].Name == fs[i].Name {
			return j
		}
	}
	return -1
}

// maxNest is the deepest object Nest makes; the rest of a longer name
// stays dotted.
const maxNest = 64

// members writes, as members of one object, the fields from index from on
// whose names start with pfx (which ends with the separator, or is empty),
// and marks them used. With Nest, names with a further separator are
// grouped into nested objects, depth levels down at most.
func (e *Encoder) members(dst []byte, fs []pipeline.Field, from int, pfx string, first bool, depth int) ([]byte, int, bool) {
	replaced, n := 0, 0
	for i := from; i < len(fs); i++ {
		if e.used[i] {
			continue
		}
		name := fs[i].Name
		if !strings.HasPrefix(name, pfx) {
			continue
		}
		rest := name[len(pfx):]
		if e.nest && depth < maxNest && len(fs) <= manyFields {
			if k := e.indexSep(rest); k > 0 && k+len(e.sep) < len(rest) && !e.nameTaken(fs, name[:len(pfx)+k]) {
				if !first {
					dst = append(dst, ',')
				}
				first = false
				dst, n = jsonx.AppendString(dst, rest[:k])
				replaced += n
				dst = append(dst, ':', '{')
				dst, n, _ = e.members(dst, fs, i, name[:len(pfx)+k+len(e.sep)], true, depth+1)
				replaced += n
				dst = append(dst, '}')
				continue
			}
		}
		if !first {
			dst = append(dst, ',')
		}
		first = false
		dst, n = jsonx.AppendString(dst, rest)
		replaced += n
		dst = append(dst, ':')
		dst, n = e.appendValues(dst, fs, i)
		replaced += n
	}
	return dst, replaced, first
}

// indexSep is strings.Index(s, e.sep), without its dispatch for the usual
// one-byte separator: it runs for every field of every message.
func (e *Encoder) indexSep(s string) int {
	if len(e.sep) == 1 {
		return strings.IndexByte(s, e.sep[0])
	}
	return strings.Index(s, e.sep)
}

// nameTaken reports whether a field is named exactly name: then dotted
// names below it cannot become an object without a duplicate key.
func (e *Encoder) nameTaken(fs []pipeline.Field, name string) bool {
	for i := range fs {
		if fs[i].Name == name {
			return true
		}
	}
	return false
}

// appendValues writes the values of fs[i] and of every later field with
// the same name: one value as a scalar, none or several as an array.
func (e *Encoder) appendValues(dst []byte, fs []pipeline.Field, i int) ([]byte, int) {
	if e.rec == nil && e.sameName(fs, i) < 0 && fs[i].Len() == 1 { // the usual case
		e.used[i] = true
		return appendValue(dst, &fs[i], fs[i].Value(0))
	}
	group := e.group[:0]
	for j := i; j >= 0; j = e.sameName(fs, j) {
		group = append(group, int32(j))
		e.used[j] = true
	}
	e.group = group
	if e.rec != nil {
		e.rec.value(dst, group)
	}
	dst, n := writeGroup(dst, fs, group)
	if e.rec != nil {
		e.rec.mark = len(dst)
		e.rec.values += n
	}
	return dst, n
}

// writeGroup writes the values of the fields of group, which share a
// name: one value as a scalar, none or several as an array.
func writeGroup(dst []byte, fs []pipeline.Field, group []int32) ([]byte, int) {
	if len(group) == 1 && fs[group[0]].Len() == 1 {
		f := &fs[group[0]]
		return appendValue(dst, f, f.Value(0))
	}
	count := 0
	for _, j := range group {
		count += fs[j].Len()
	}
	replaced, n := 0, 0
	if count != 1 {
		dst = append(dst, '[')
	}
	k := 0
	for _, j := range group {
		f := &fs[j]
		for v := 0; v < f.Len(); v++ {
			if k > 0 {
				dst = append(dst, ',')
			}
			k++
			dst, n = appendValue(dst, f, f.Value(v))
			replaced += n
		}
	}
	if count != 1 {
		dst = append(dst, ']')
	}
	return dst, replaced
}

// appendValue writes v as AppendJSONValue does, but a string with the
// representation "json" that holds one JSON value as that value.
func appendValue(dst []byte, f *pipeline.Field, v pipeline.Value) ([]byte, int) {
	if f.Type == pipeline.TypeString && f.Representation() == "json" {
		if out, n, ok := jsonx.AppendRaw(dst, v.Str(), jsonx.MaxDepth); ok {
			return out, n
		}
	}
	return codec.AppendJSONValue(dst, f.Type, v)
}
