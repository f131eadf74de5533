// Package cef is the decoder for ArcSight Common Event Format records
// (formats.md §1): the seven header fields and the extension become message
// fields, with the escapes undone.
package cef

import (
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
	"unsafe"

	"github.com/ternlog/tern/internal/cefx"
	"github.com/ternlog/tern/internal/syslogx"
	"github.com/ternlog/tern/pipeline"
)

//go:embed sample.toml
var sample string

// Type selects this decoder.
const Type = "cef"

// MaxExtensionsLimit is the largest max_extensions accepted.
const MaxExtensionsLimit = 1024

// Config is the [decoders.<name>] table with type = "cef".
type Config struct {
	// Typed converts the values of dictionary keys: ports and counters to
	// integers, cfpN and coordinates to doubles, timestamps to integer
	// nanoseconds (representation "ns"), and marks addresses ("ipv4",
	// "ipv6") and MAC addresses ("mac"). Values that do not convert stay
	// strings.
	Typed bool `toml:"typed"`
	// Timezone interprets zone-less timestamps of records without dtz: an
	// IANA name such as "Europe/Berlin", or "UTC".
	Timezone string `toml:"timezone"`
	// MaxExtensions caps the distinct extension keys of one record; a record
	// with more is an error (it goes to the dead-letter route whole).
	MaxExtensions int `toml:"max_extensions"`
	// PassNonCEF keeps, when the decoder runs after another one in a chain,
	// messages whose Payload holds no "CEF:" unchanged instead of failing them.
	PassNonCEF bool `toml:"pass_non_cef"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config { return Config{Timezone: "UTC", MaxExtensions: 256} }

// Validate checks the config.
func (c Config) Validate() error {
	var errs []error
	if _, err := syslogx.LoadLocation(c.Timezone); err != nil {
		errs = append(errs, fmt.Errorf("timezone: unknown time zone %q", c.Timezone))
	}
	if c.MaxExtensions < 1 || c.MaxExtensions > MaxExtensionsLimit {
		errs = append(errs, fmt.Errorf("max_extensions: must be 1..%d", MaxExtensionsLimit))
	}
	return errors.Join(errs...)
}

// Decoder parses CEF records. It is safe for concurrent use.
type Decoder struct {
	cfg      Config
	loc      *time.Location
	now      func() time.Time
	zones    zoneCache
	fallback func(float64, ...string)
}

var (
	_ pipeline.Decoder     = (*Decoder)(nil)
	_ pipeline.Transformer = (*Decoder)(nil)
)

// New returns a CEF decoder.
func New(set pipeline.Settings, cfg Config) (*Decoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	loc, _ := syslogx.LoadLocation(cfg.Timezone)
	d := &Decoder{cfg: cfg, loc: loc, now: set.Now, fallback: func(float64, ...string) {}}
	if d.now == nil {
		d.now = time.Now
	}
	if set.Telemetry != nil && cfg.Typed {
		d.fallback = set.Telemetry.Counter("cef_typed_fallback_total", "CEF values of typed keys kept as strings because they did not convert")
	}
	return d, nil
}

// Factory registers the decoder.
func Factory() pipeline.Factory[pipeline.Decoder] {
	return pipeline.NewFactory(Type, sample, DefaultConfig, func(s pipeline.Settings, c Config) (pipeline.Decoder, error) {
		return New(s, c)
	}).WithSummary("ArcSight CEF, with or without a syslog prefix")
}

// Errors of malformed records; the text says which rule failed.
var (
	ErrNoCEF     = errors.New("cef: no \"CEF:\" in the record")
	ErrHeader    = errors.New("cef: header")
	ErrExtension = errors.New("cef: extension")
)

// Names of the header fields, in record order.
const (
	FieldVersion   = cefx.FieldVersion
	FieldVendor    = cefx.FieldVendor
	FieldProduct   = cefx.FieldProduct
	FieldDevVer    = cefx.FieldDevVer
	FieldSignature = cefx.FieldSignature
	FieldName      = cefx.FieldName
	FieldSeverity  = cefx.FieldSeverity
	FieldPrefix    = cefx.FieldPrefix
)

var headerNames = [6]string{FieldVendor, FieldProduct, FieldDevVer, FieldSignature, FieldName, FieldSeverity}

func (d *Decoder) Decode(rec pipeline.Record, out *pipeline.Batch) error {
	m := out.Add()
	data := rec.Data
	// One trailing line terminator belongs to the transport.
	if n := len(data); n > 0 && data[n-1] == '\n' {
		data = data[:n-1]
		if n > 1 && data[n-2] == '\r' {
			data = data[:n-2]
		}
	}
	p := parser{b: out, data: data, max: d.cfg.MaxExtensions}
	sev, rt, dtz, err := p.parse(m)
	if err != nil {
		return err
	}
	m.Type = Type
	m.Severity = cefx.ToSyslog(sev)
	if rt != "" {
		if ns, ok := d.parseTime(rt, dtz); ok {
			m.Timestamp = ns
		}
	}
	if d.cfg.Typed {
		d.convert(m, p.extStart, dtz)
	}
	return nil
}

// Transform decodes the CEF record in m.Payload (CEF carried in syslog,
// decoder = ["syslog", "cef"]). The fields are appended to m's; m keeps the
// headers the previous decoder set (Timestamp, Hostname, Pid, Severity and
// the Payload itself) and gets Type "cef". rt sets the Timestamp only when
// it is still unset.
func (d *Decoder) Transform(m *pipeline.Message, out *pipeline.Batch) (bool, error) {
	s := m.Payload
	data := unsafe.Slice(unsafe.StringData(s), len(s)) // read only
	if n := len(data); n > 0 && data[n-1] == '\n' {
		data = data[:n-1]
		if n > 1 && data[n-2] == '\r' {
			data = data[:n-2]
		}
	}
	keep := len(m.Fields)
	p := parser{b: out, data: data, src: s, max: d.cfg.MaxExtensions}
	_, rt, dtz, err := p.parse(m)
	if err != nil {
		m.Fields = m.Fields[:keep]
		if errors.Is(err, ErrNoCEF) && d.cfg.PassNonCEF {
			return true, nil
		}
		return false, err
	}
	m.Type = Type
	if rt != "" && m.Timestamp == 0 {
		if ns, ok := d.parseTime(rt, dtz); ok {
			m.Timestamp = ns
		}
	}
	if d.cfg.Typed {
		d.convert(m, p.extStart, dtz)
	}
	return true, nil
}

// parser holds one record being decoded. Strings are copied into the
// batch's arena, or, when the record is itself a string (src), sliced
// from it without a copy.
type parser struct {
	b        *pipeline.Batch
	data     []byte
	src      string
	max      int
	extStart int // index in m.Fields of the first extension field
	scratch  [256]byte
}

func (p *parser) str(lo, hi int) string {
	if p.src != "" {
		return p.src[lo:hi]
	}
	return p.b.Str(p.data[lo:hi])
}

// parse appends the fields of the record to m and returns the raw
// severity, rt and dtz values (strings m holds).
func (p *parser) parse(m *pipeline.Message) (sev, rt, dtz string, err error) {
	data := p.data
	start := indexCEF(data)
	if start < 0 {
		return "", "", "", ErrNoCEF
	}
	i := start + 4
	// Field 1, the version: digits only.
	end, esc, ok := headerEnd(data, i)
	if !ok {
		return "", "", "", fmt.Errorf("%w: found 0 of 7 pipe-terminated header fields", ErrHeader)
	}
	if end == i || esc {
		return "", "", "", fmt.Errorf("%w: version %q is not an integer", ErrHeader, data[i:end])
	}
	var ver int64
	for _, c := range data[i:end] {
		if c < '0' || c > '9' {
			return "", "", "", fmt.Errorf("%w: version %q is not an integer", ErrHeader, data[i:end])
		}
		if ver > (1<<62)/10 {
			return "", "", "", fmt.Errorf("%w: version %q is too large", ErrHeader, data[i:end])
		}
		ver = ver*10 + int64(c-'0')
	}
	m.AddInt(FieldVersion, ver)
	i = end + 1
	for k, name := range headerNames {
		end, esc, ok := headerEnd(data, i)
		if !ok {
			return "", "", "", fmt.Errorf("%w: found %d of 7 pipe-terminated header fields", ErrHeader, k+1)
		}
		var v string
		if esc {
			v = p.b.Str(unescapeHeader(p.scratch[:0], data[i:end]))
		} else {
			v = p.str(i, end)
		}
		m.AddString(name, v)
		if k == 5 {
			sev = v
		}
		i = end + 1
	}
	p.extStart = len(m.Fields)
	rt, dtz, err = p.extension(m, i)
	if err != nil {
		return "", "", "", err
	}
	// The prefix (usually a syslog header), without its trailing spaces.
	pe := start
	for pe > 0 && data[pe-1] == ' ' {
		pe--
	}
	if pe > 0 {
		m.AddString(FieldPrefix, p.str(0, pe))
	}
	return sev, rt, dtz, nil
}

// indexCEF finds the first "CEF:".
func indexCEF(b []byte) int {
	for i := 0; i+4 <= len(b); i++ {
		if b[i] == 'C' && b[i+1] == 'E' && b[i+2] == 'F' && b[i+3] == ':' {
			return i
		}
	}
	return -1
}

// headerEnd finds the unescaped '|' ending the header field at b[i:]; a
// backslash always takes the next byte with it.
func headerEnd(b []byte, i int) (end int, esc, ok bool) {
	for ; i < len(b); i++ {
		switch b[i] {
		case '\\':
			esc = true
			i++
		case '|':
			return i, esc, true
		}
	}
	return 0, esc, false
}

// unescapeHeader undoes \| and \\; other backslash pairs stay as written.
func unescapeHeader(dst, v []byte) []byte {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\\' && i+1 < len(v) && (v[i+1] == '|' || v[i+1] == '\\') {
			i++
			c = v[i]
		}
		dst = append(dst, c)
	}
	return dst
}

// unescapeValue undoes \\ \= \n \r; other backslash pairs (and a lone
// trailing backslash) stay as written.
func unescapeValue(dst, v []byte) []byte {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\\' && i+1 < len(v) {
			switch v[i+1] {
			case '\\', '=':
				i++
				c = v[i]
			case 'n':
				i++
				c = '\n'
			case 'r':
				i++
				c = '\r'
			}
		}
		dst = append(dst, c)
	}
	return dst
}

// keyAt returns the index of the '=' ending a key that starts at b[i], or -1.
func keyAt(b []byte, i int) int {
	if i >= len(b) || !cefx.KeyStart(b[i]) {
		return -1
	}
	for j := i + 1; j < len(b); j++ {
		c := b[j]
		if c == '=' {
			return j
		}
		if !cefx.KeyChar(c) {
			return -1
		}
	}
	return -1
}

// dedupLinear is how many extension fields are searched one by one for a
// repeated key before a hash index takes over.
const dedupLinear = 16

type keyIndex [2 * MaxExtensionsLimit]uint16

var indexPool = sync.Pool{New: func() any { return new(keyIndex) }}

// extension parses the extension starting at data[i] (formats.md §1.3
// Contract, rules 4-6) and returns the rt and dtz values.
func (p *parser) extension(m *pipeline.Message, i int) (rt, dtz string, err error) {
	data := p.data
	lo, hi := i, len(data)
	for lo < hi && (data[lo] == ' ' || data[lo] == '\t') {
		lo++
	}
	for hi > lo && (data[hi-1] == ' ' || data[hi-1] == '\t' || data[hi-1] == '\r' || data[hi-1] == '\n') {
		hi--
	}
	if lo == hi {
		return "", "", nil
	}
	ext := data[:hi] // absolute offsets keep p.str valid
	eq := keyAt(ext, lo)
	if eq < 0 {
		return "", "", fmt.Errorf("%w: does not begin with key=value", ErrExtension)
	}
	var idx *keyIndex
	defer func() {
		if idx != nil {
			clear(idx[:])
			indexPool.Put(idx)
		}
	}()
	count := 0
	ks := lo
	for {
		vs := eq + 1
		j, esc := vs, false
		next, nextEq := -1, -1
		for j < hi {
			c := ext[j]
			if c == '\\' {
				esc = true
				j += 2
				continue
			}
			if c == ' ' || c == '\t' {
				if e := keyAt(ext, j+1); e >= 0 {
					next, nextEq = j+1, e
					break
				}
			}
			j++
		}
		ve := min(j, hi)
		var v string
		if esc {
			v = p.b.Str(unescapeValue(p.scratch[:0], ext[vs:ve]))
		} else {
			v = p.str(vs, ve)
		}
		key := ext[ks:eq]
		// Last duplicate wins, in the place of the first.
		pos := -1
		if count <= dedupLinear && idx == nil {
			for f := p.extStart; f < len(m.Fields); f++ {
				if m.Fields[f].Name == string(key) {
					pos = f
					break
				}
			}
		} else {
			if idx == nil {
				idx = indexPool.Get().(*keyIndex)
				for f := p.extStart; f < len(m.Fields); f++ {
					find(idx, m.Fields, p.extStart, m.Fields[f].Name, f)
				}
			}
			pos = find(idx, m.Fields, p.extStart, key, len(m.Fields))
		}
		if pos >= 0 {
			m.Fields[pos].SetValue(0, pipeline.StringValue(v))
		} else {
			if count == p.max {
				return "", "", fmt.Errorf("%w: more than %d keys", ErrExtension, p.max)
			}
			count++
			m.AddString(p.str(ks, eq), v)
		}
		if next < 0 {
			break
		}
		ks, eq = next, nextEq
	}
	for f := p.extStart; f < len(m.Fields); f++ {
		switch m.Fields[f].Name {
		case "rt":
			rt = m.Fields[f].Value(0).Str()
		case "dtz":
			dtz = m.Fields[f].Value(0).Str()
		}
	}
	return rt, dtz, nil
}

// find returns the field index holding key, or records ins (the index the
// key is about to get) and returns -1. Slots hold index-base+1.
func find[K []byte | string](x *keyIndex, fields []pipeline.Field, base int, key K, ins int) int {
	h := uint32(2166136261)
	for i := 0; i < len(key); i++ {
		h = (h ^ uint32(key[i])) * 16777619
	}
	mask := uint32(len(x) - 1)
	for s := h & mask; ; s = (s + 1) & mask {
		v := x[s]
		if v == 0 {
			x[s] = uint16(ins - base + 1)
			return -1
		}
		if f := base + int(v) - 1; fields[f].Name == string(key) {
			return f
		}
	}
}

// Typed mode (formats.md §1.4): how the values of dictionary keys convert.
type kind uint8

const (
	kindInt kind = iota + 1
	kindFloat
	kindAddr
	kindMAC
	kindTime
)

var dictionary = func() map[string]kind {
	d := map[string]kind{}
	for _, k := range []string{
		"cnt", "dpid", "dpt", "dvcpid", "fsize", "in", "out", "spid", "spt", "deviceDirection",
		"sourceTranslatedPort", "destinationTranslatedPort", "type", "cn1", "cn2", "cn3", "eventId", "oldFileSize",
		"baseEventCount", "destinationProcessId", "destinationPort", "deviceProcessId", "fileSize",
		"bytesIn", "bytesOut", "sourceProcessId", "sourcePort",
		"deviceCustomNumber1", "deviceCustomNumber2", "deviceCustomNumber3",
	} {
		d[k] = kindInt
	}
	for _, k := range []string{
		"cfp1", "cfp2", "cfp3", "cfp4", "dlat", "dlong", "slat", "slong",
		"deviceCustomFloatingPoint1", "deviceCustomFloatingPoint2", "deviceCustomFloatingPoint3", "deviceCustomFloatingPoint4",
	} {
		d[k] = kindFloat
	}
	for _, k := range []string{
		"src", "dst", "dvc", "agt", "sourceTranslatedAddress", "destinationTranslatedAddress", "deviceTranslatedAddress",
		"c6a1", "c6a2", "c6a3", "c6a4", "sourceAddress", "destinationAddress", "deviceAddress", "agentAddress",
		"deviceCustomIPv6Address1", "deviceCustomIPv6Address2", "deviceCustomIPv6Address3", "deviceCustomIPv6Address4",
	} {
		d[k] = kindAddr
	}
	for _, k := range []string{
		"dmac", "smac", "dvcmac", "amac",
		"destinationMacAddress", "sourceMacAddress", "deviceMacAddress", "agentMacAddress",
	} {
		d[k] = kindMAC
	}
	for _, k := range []string{
		"rt", "start", "end", "art", "mrt", "deviceCustomDate1", "deviceCustomDate2", "flexDate1",
		"fileCreateTime", "fileModificationTime", "oldFileCreateTime", "oldFileModificationTime",
		"deviceReceiptTime", "startTime", "endTime", "agentReceiptTime", "managerReceiptTime",
	} {
		d[k] = kindTime
	}
	return d
}()

// convert applies typed mode to the extension fields from index from on.
func (d *Decoder) convert(m *pipeline.Message, from int, dtz string) {
	for i := from; i < len(m.Fields); i++ {
		f := &m.Fields[i]
		k, ok := dictionary[f.Name]
		if !ok || f.Type != pipeline.TypeString {
			continue
		}
		v := f.Value(0).Str()
		conv := true
		switch k {
		case kindInt:
			n, err := strconv.ParseInt(v, 10, 64)
			if conv = err == nil; conv {
				*f = pipeline.NewField(f.Name, pipeline.TypeInteger, "", pipeline.IntValue(n))
			}
		case kindFloat:
			x, err := strconv.ParseFloat(v, 64)
			if conv = err == nil; conv {
				*f = pipeline.NewField(f.Name, pipeline.TypeDouble, "", pipeline.DoubleValue(x))
			}
		case kindAddr:
			var repr string
			if repr, conv = addrKind(v); conv {
				f.SetRepresentation(repr)
			}
		case kindMAC:
			if conv = isMAC(v); conv {
				f.SetRepresentation("mac")
			}
		case kindTime:
			var ns int64
			if ns, conv = d.parseTime(v, dtz); conv {
				*f = pipeline.NewField(f.Name, pipeline.TypeInteger, "ns", pipeline.IntValue(ns))
			}
		}
		if !conv {
			d.fallback(1)
		}
	}
}
