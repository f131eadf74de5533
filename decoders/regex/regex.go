// Package regex is the decoder that parses lines with an RE2 regular
// expression: each named capture becomes a field (Heka's
// PayloadRegexDecoder).
package regex

import (
	_ "embed"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/ternlog/tern/pipeline"
)

//go:embed sample.toml
var sample string

// Type selects this decoder.
const Type = "regex"

// Config is the [decoders.<name>] table with type = "regex".
type Config struct {
	// Pattern is the RE2 expression (Go regexp syntax); its named groups,
	// (?P<name>…), become fields. Required.
	Pattern string `toml:"pattern"`
	// MessageType sets the message Type.
	MessageType string `toml:"message_type"`
	// Types gives a capture a field type: "string" (the default),
	// "integer", "double" or "bool".
	Types map[string]string `toml:"types"`
	// TimestampCapture names the capture that sets the message Timestamp
	// (ignored when the pattern has no such group).
	TimestampCapture string `toml:"timestamp_capture"`
	// TimestampLayout is the Go time layout of that capture, or "epoch"
	// (decimal seconds), "epoch_ms" or "epoch_ns". Layouts without a year
	// take the current one (the previous one for dates over a day ahead).
	TimestampLayout string `toml:"timestamp_layout"`
	// Timezone applies to layouts without a zone: "UTC", "Local" or an
	// IANA name such as "Europe/Paris".
	Timezone string `toml:"timezone"`
	// SeverityCapture names the capture that sets the message Severity
	// (ignored when the pattern has no such group).
	SeverityCapture string `toml:"severity_capture"`
	// SeverityMap maps that capture's text to a severity 0..7; text not in
	// the map is read as a number 0..7, and anything else keeps the
	// default severity.
	SeverityMap map[string]int32 `toml:"severity_map"`
	// KeepPayload copies the record into the message Payload.
	KeepPayload bool `toml:"keep_payload"`
	// KeepUnmatched turns a record the pattern does not match into a
	// message holding only the payload; false makes it a decode error
	// (a dead letter).
	KeepUnmatched bool `toml:"keep_unmatched"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		TimestampCapture: "timestamp", TimestampLayout: time.RFC3339Nano, Timezone: "UTC",
		SeverityCapture: "severity", KeepPayload: true,
	}
}

var typeNames = map[string]pipeline.ValueType{
	"string": pipeline.TypeString, "integer": pipeline.TypeInteger,
	"double": pipeline.TypeDouble, "bool": pipeline.TypeBool,
}

// Validate checks the config.
func (c Config) Validate() error {
	var errs []error
	var names []string
	if c.Pattern == "" {
		errs = append(errs, errors.New("pattern: required"))
	} else if re, err := regexp.Compile(c.Pattern); err != nil {
		errs = append(errs, fmt.Errorf("pattern: %v", err))
	} else {
		names = re.SubexpNames()
		if re.NumSubexp() == 0 || !slices.ContainsFunc(names, func(n string) bool { return n != "" }) {
			errs = append(errs, errors.New("pattern: has no named group (?P<name>…)"))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(c.Types)) {
		if _, ok := typeNames[c.Types[name]]; !ok {
			errs = append(errs, fmt.Errorf("types: %s: must be string, integer, double or bool, not %q", name, c.Types[name]))
		}
		if names != nil && !slices.Contains(names, name) {
			errs = append(errs, fmt.Errorf("types: %s: the pattern has no such group", name))
		}
	}
	if c.TimestampLayout == "" {
		errs = append(errs, errors.New("timestamp_layout: required"))
	}
	if _, err := time.LoadLocation(c.Timezone); err != nil {
		errs = append(errs, fmt.Errorf("timezone: %v", err))
	}
	for _, k := range slices.Sorted(maps.Keys(c.SeverityMap)) {
		if v := c.SeverityMap[k]; v < 0 || v > 7 {
			errs = append(errs, fmt.Errorf("severity_map: %s: %d is not a severity 0..7", k, v))
		}
	}
	return errors.Join(errs...)
}

type capture struct {
	name string
	typ  pipeline.ValueType
}

// Decoder parses records with the pattern. It is safe for concurrent use.
type Decoder struct {
	cfg      Config
	set      pipeline.Settings
	re       *regexp.Regexp
	caps     []capture // by group index; name "" for unnamed groups
	tsGroup  int       // -1: none
	sevGroup int
	loc      *time.Location
}

var _ pipeline.Decoder = (*Decoder)(nil)

// New returns a regex decoder.
func New(set pipeline.Settings, cfg Config) (*Decoder, error) {
	re, err := regexp.Compile(cfg.Pattern)
	if err != nil {
		return nil, fmt.Errorf("pattern: %v", err)
	}
	loc, err := time.LoadLocation(cfg.Timezone)
	if err != nil {
		return nil, fmt.Errorf("timezone: %v", err)
	}
	d := &Decoder{cfg: cfg, set: set, re: re, loc: loc, tsGroup: -1, sevGroup: -1}
	for i, name := range re.SubexpNames() {
		d.caps = append(d.caps, capture{name: name, typ: typeNames[cfg.Types[name]]})
		if name == "" || i == 0 {
			continue
		}
		if name == cfg.TimestampCapture && d.tsGroup < 0 {
			d.tsGroup = i
		}
		if name == cfg.SeverityCapture && d.sevGroup < 0 {
			d.sevGroup = i
		}
	}
	if d.set.Now == nil {
		d.set.Now = time.Now
	}
	return d, nil
}

// Factory registers the decoder.
func Factory() pipeline.Factory[pipeline.Decoder] {
	return pipeline.NewFactory(Type, sample, DefaultConfig, func(s pipeline.Settings, c Config) (pipeline.Decoder, error) {
		return New(s, c)
	}).WithSummary("named captures to fields")
}

func bytesString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func (d *Decoder) Decode(rec pipeline.Record, out *pipeline.Batch) error {
	loc := d.re.FindSubmatchIndex(rec.Data)
	if loc == nil {
		if !d.cfg.KeepUnmatched {
			return errors.New("the pattern does not match")
		}
		m := out.Add()
		m.Type = d.cfg.MessageType
		m.Payload = out.Str(rec.Data)
		return nil
	}
	n := out.Len()
	m := out.Add()
	m.Type = d.cfg.MessageType
	if d.cfg.KeepPayload {
		m.Payload = out.Str(rec.Data)
	}
	for g := 1; g < len(d.caps); g++ {
		c := d.caps[g]
		if c.name == "" || loc[2*g] < 0 {
			continue // unnamed, or did not take part in the match
		}
		text := rec.Data[loc[2*g]:loc[2*g+1]]
		var v pipeline.Value
		switch c.typ {
		case pipeline.TypeInteger:
			i, err := strconv.ParseInt(bytesString(text), 10, 64)
			if err != nil {
				out.Truncate(n)
				return fmt.Errorf("capture %s: not an integer: %q", c.name, text)
			}
			v = pipeline.IntValue(i)
		case pipeline.TypeDouble:
			f, err := strconv.ParseFloat(bytesString(text), 64)
			if err != nil {
				out.Truncate(n)
				return fmt.Errorf("capture %s: not a number: %q", c.name, text)
			}
			v = pipeline.DoubleValue(f)
		case pipeline.TypeBool:
			b, err := strconv.ParseBool(bytesString(text))
			if err != nil {
				out.Truncate(n)
				return fmt.Errorf("capture %s: not a bool: %q", c.name, text)
			}
			v = pipeline.BoolValue(b)
		default:
			v = pipeline.StringValue(out.Str(text))
		}
		m.AddField(pipeline.NewField(c.name, c.typ, "", v))
		switch g {
		case d.tsGroup:
			ns, err := d.timestamp(bytesString(text))
			if err != nil {
				out.Truncate(n)
				return fmt.Errorf("capture %s: %v", c.name, err)
			}
			m.Timestamp = ns
		case d.sevGroup:
			if s, ok := d.cfg.SeverityMap[string(text)]; ok {
				m.Severity = s
			} else if s, err := strconv.Atoi(bytesString(text)); err == nil && s >= 0 && s <= 7 {
				m.Severity = int32(s)
			}
		}
	}
	return nil
}

// timestamp parses the timestamp capture.
func (d *Decoder) timestamp(s string) (int64, error) {
	switch d.cfg.TimestampLayout {
	case "epoch":
		sec, frac, _ := strings.Cut(s, ".")
		secs, err := strconv.ParseInt(sec, 10, 64)
		if err != nil || secs > 9e9 || secs < -9e9 {
			return 0, fmt.Errorf("not epoch seconds: %q", s)
		}
		var ns int64
		for i := 0; i < 9; i++ {
			ns *= 10
			if i < len(frac) {
				c := frac[i]
				if c < '0' || c > '9' {
					return 0, fmt.Errorf("not epoch seconds: %q", s)
				}
				ns += int64(c - '0')
			}
		}
		if strings.HasPrefix(s, "-") {
			ns = -ns
		}
		return secs*1e9 + ns, nil
	case "epoch_ms", "epoch_ns":
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("not an integer: %q", s)
		}
		if d.cfg.TimestampLayout == "epoch_ns" {
			return v, nil
		}
		if v > 9e15 || v < -9e15 {
			return 0, fmt.Errorf("out of range: %q", s)
		}
		return v * 1e6, nil
	}
	t, err := time.ParseInLocation(d.cfg.TimestampLayout, s, d.loc)
	if err != nil {
		return 0, err
	}
	if t.Year() == 0 {
		// A layout without a year (syslog's "Jan _2 15:04:05").
		now := d.set.Now().In(d.loc)
		t = t.AddDate(now.Year(), 0, 0)
		if t.After(now.Add(24 * time.Hour)) {
			t = t.AddDate(-1, 0, 0)
		}
	}
	if y := t.Year(); y < 1678 || y > 2261 {
		return 0, fmt.Errorf("year %d out of range", y)
	}
	return t.UnixNano(), nil
}
