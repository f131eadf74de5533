// Package syslog is the decoder for syslog messages: RFC 5424, parsed
// strictly, and RFC 3164 ("BSD syslog") with the variants devices really
// send (formats.md §4), including lines without PRI as in /var/log/auth.log.
package syslog

import (
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"time"

	"github.com/ternlog/tern/internal/rfc3339"
	"github.com/ternlog/tern/internal/syslogx"
	"github.com/ternlog/tern/pipeline"
)

//go:embed sample.toml
var sample string

// Type selects this decoder.
const Type = "syslog"

// MaxSDParamsLimit is the largest max_sd_params accepted.
const MaxSDParamsLimit = 4096

// Config is the [decoders.<name>] table with type = "syslog".
type Config struct {
	// Format is "auto" (RFC 5424 when a version follows PRI, else RFC
	// 3164), "rfc5424" (anything else is an error) or "rfc3164".
	Format string `toml:"format"`
	// RequirePRI makes a record without "<PRI>" an error. With false, such
	// records (files such as /var/log/auth.log) are read as RFC 3164 and
	// get no facility and the default severity.
	RequirePRI bool `toml:"require_pri"`
	// Timezone interprets RFC 3164 timestamps, which carry no zone: an IANA
	// name such as "Europe/Berlin", or "UTC".
	Timezone string `toml:"timezone"`
	// MaxSDParams caps the structured-data fields of one message (params
	// and empty elements); a message with more is an error.
	MaxSDParams int `toml:"max_sd_params"`
	// DropTrailingLF removes one LF that ends a record. Senders that frame
	// by octet counting often end each message with LF anyway (rsyslog's
	// RSYSLOG_SyslogProtocol23Format does); rsyslog drops it on reception
	// by default, and so does tern, or forwarding would append "#012" to
	// every message. Set false to keep MSG byte for byte.
	DropTrailingLF bool `toml:"drop_trailing_lf"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Format: "auto", RequirePRI: true, Timezone: "UTC", MaxSDParams: 256, DropTrailingLF: true}
}

// Validate checks the config.
func (c Config) Validate() error {
	var errs []error
	switch c.Format {
	case "auto", "rfc5424", "rfc3164":
	default:
		errs = append(errs, fmt.Errorf("format: must be auto, rfc5424 or rfc3164, not %q", c.Format))
	}
	if _, err := syslogx.LoadLocation(c.Timezone); err != nil {
		errs = append(errs, fmt.Errorf("timezone: unknown time zone %q", c.Timezone))
	}
	if c.MaxSDParams < 1 || c.MaxSDParams > MaxSDParamsLimit {
		errs = append(errs, fmt.Errorf("max_sd_params: must be 1..%d", MaxSDParamsLimit))
	}
	return errors.Join(errs...)
}

// Decoder parses syslog records. It is safe for concurrent use.
type Decoder struct {
	cfg Config
	loc *time.Location
	now func() time.Time
}

var _ pipeline.Decoder = (*Decoder)(nil)

// New returns a syslog decoder.
func New(set pipeline.Settings, cfg Config) (*Decoder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	loc, _ := syslogx.LoadLocation(cfg.Timezone)
	d := &Decoder{cfg: cfg, loc: loc, now: set.Now}
	if d.now == nil {
		d.now = time.Now
	}
	return d, nil
}

// Factory registers the decoder.
func Factory() pipeline.Factory[pipeline.Decoder] {
	return pipeline.NewFactory(Type, sample, DefaultConfig, func(s pipeline.Settings, c Config) (pipeline.Decoder, error) {
		return New(s, c)
	}).WithSummary("RFC 5424 and RFC 3164")
}

// Names of the fields the decoder adds, in this order.
const (
	FieldFacility = "facility"
	FieldAppName  = "appname"
	FieldProcID   = "procid"
	FieldMsgID    = "msgid"
	// SDPrefix starts the structured-data fields: sd.<SD-ID>.<PARAM-NAME>,
	// or sd.<SD-ID> with no value for an element without params.
	SDPrefix = "sd."
)

// Errors of malformed records.
var (
	ErrPRI     = errors.New("syslog: PRI")
	ErrRFC5424 = errors.New("syslog: RFC 5424")
	ErrEmpty   = errors.New("syslog: nothing after PRI")
)

func (d *Decoder) Decode(rec pipeline.Record, out *pipeline.Batch) error {
	data := rec.Data
	if d.cfg.DropTrailingLF && len(data) > 0 && data[len(data)-1] == '\n' {
		data = data[:len(data)-1]
	}
	m := out.Add()
	m.Type = Type
	i := 0
	if len(data) > 0 && data[0] == '<' {
		pri, n, err := parsePRI(data)
		if err != nil {
			return err
		}
		m.Severity = int32(pri % 8)
		m.AddInt(FieldFacility, int64(pri/8))
		i = n
		if i == len(data) {
			return ErrEmpty
		}
		if d.cfg.Format != "rfc3164" && isVersion(data[i:]) {
			return d.rfc5424(data, i, m, out)
		}
	} else if d.cfg.RequirePRI {
		return fmt.Errorf("%w: missing (the record does not start with '<')", ErrPRI)
	}
	if d.cfg.Format == "rfc5424" {
		return fmt.Errorf("%w: no VERSION after PRI", ErrRFC5424)
	}
	d.rfc3164(data, i, m, out)
	return nil
}

// parsePRI reads "<PRIVAL>", PRIVAL 0..191 in one to three digits.
func parsePRI(b []byte) (pri, n int, err error) {
	i := 1
	for ; i < len(b) && i <= 4 && '0' <= b[i] && b[i] <= '9'; i++ {
		pri = pri*10 + int(b[i]-'0')
	}
	switch {
	case i == 1:
		return 0, 0, fmt.Errorf("%w: no digits after '<'", ErrPRI)
	case i > 4:
		return 0, 0, fmt.Errorf("%w: more than three digits", ErrPRI)
	case i == len(b) || b[i] != '>':
		return 0, 0, fmt.Errorf("%w: missing '>'", ErrPRI)
	case pri > syslogx.MaxPRI:
		return 0, 0, fmt.Errorf("%w: %d is out of range 0..191", ErrPRI, pri)
	}
	return pri, i + 1, nil
}

// isVersion reports whether b starts with one to three digits and a space,
// which makes the record RFC 5424.
func isVersion(b []byte) bool {
	i := 0
	for i < len(b) && i < 4 && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i >= 1 && i <= 3 && i < len(b) && b[i] == ' '
}

// rfc5424 parses the rest of an RFC 5424 message strictly (formats.md §4.2).
func (d *Decoder) rfc5424(data []byte, i int, m *pipeline.Message, out *pipeline.Batch) error {
	if data[i] == '0' {
		return fmt.Errorf("%w: VERSION must start with a nonzero digit", ErrRFC5424)
	}
	for data[i] != ' ' {
		i++
	}
	i++
	// TIMESTAMP
	tok, i, err := token(data, i, 64, "TIMESTAMP")
	if err != nil {
		return err
	}
	if !nil1(tok) {
		ns, err := parseTimestamp5424(tok)
		if err != nil {
			return fmt.Errorf("%w: TIMESTAMP %q: %v", ErrRFC5424, tok, err)
		}
		m.Timestamp = ns
	}
	if tok, i, err = token(data, i, syslogx.MaxHostname, "HOSTNAME"); err != nil {
		return err
	}
	if !nil1(tok) {
		m.Hostname = out.Str(tok)
	}
	if tok, i, err = token(data, i, syslogx.MaxAppName, "APP-NAME"); err != nil {
		return err
	}
	if !nil1(tok) {
		m.AddString(FieldAppName, out.Str(tok))
	}
	if tok, i, err = token(data, i, syslogx.MaxProcID, "PROCID"); err != nil {
		return err
	}
	if !nil1(tok) {
		m.AddString(FieldProcID, out.Str(tok))
		if pid, ok := smallPID(tok); ok {
			m.Pid = pid
		}
	}
	if tok, i, err = token(data, i, syslogx.MaxMsgID, "MSGID"); err != nil {
		return err
	}
	if !nil1(tok) {
		m.AddString(FieldMsgID, out.Str(tok))
	}
	// token consumed the space after MSGID; STRUCTURED-DATA follows.
	if i >= len(data) {
		return fmt.Errorf("%w: STRUCTURED-DATA missing", ErrRFC5424)
	}
	if data[i] == '-' {
		i++
	} else if i, err = d.structuredData(data, i, m, out); err != nil {
		return err
	}
	if i == len(data) {
		return nil // no MSG
	}
	if data[i] != ' ' {
		return fmt.Errorf("%w: %q after STRUCTURED-DATA, want a space", ErrRFC5424, data[i])
	}
	msg := data[i+1:]
	if len(msg) >= 3 && msg[0] == 0xEF && msg[1] == 0xBB && msg[2] == 0xBF {
		msg = msg[3:]
	}
	m.Payload = out.Str(msg)
	return nil
}

func nil1(tok []byte) bool { return len(tok) == 1 && tok[0] == '-' }

// token reads 1..max PRINTUSASCII bytes ending at a space, and returns
// them and the index after the space.
func token(b []byte, i, max int, name string) ([]byte, int, error) {
	s := i
	if i = printEnd(b, i); i < len(b) && b[i] != ' ' {
		return nil, 0, fmt.Errorf("%w: %s holds byte 0x%02x (PRINTUSASCII only)", ErrRFC5424, name, b[i])
	}
	switch {
	case i == s:
		return nil, 0, fmt.Errorf("%w: %s empty", ErrRFC5424, name)
	case i-s > max:
		return nil, 0, fmt.Errorf("%w: %s longer than %d bytes", ErrRFC5424, name, max)
	case i == len(b):
		return nil, 0, fmt.Errorf("%w: record ends after %s", ErrRFC5424, name)
	}
	return b[s:i], i + 1, nil
}

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

// printEnd returns the index of the first byte of b at or after i that is
// not PRINTUSASCII (0x21..0x7E; the space ending a header field is one), or
// len(b). It tests eight bytes at a time: a byte under 0x21 borrows, one
// over 0x7E carries or has its high bit set, and either marks the lowest
// such byte exactly.
func printEnd(b []byte, i int) int {
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		if m := ((x-0x21*lsb)&^x | (x + lsb) | x) & msb; m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c < 0x21 || c > 0x7E {
			return i
		}
	}
	return i
}

// parseTimestamp5424 accepts RFC 3339 as RFC 5424 §6.2.3 narrows it: upper
// case T and Z, at most six fraction digits, an offset always.
func parseTimestamp5424(b []byte) (int64, error) {
	if len(b) < 20 || b[10] != 'T' {
		return 0, rfc3339.ErrSyntax
	}
	i := 19
	if b[i] == '.' {
		j := i + 1
		for j < len(b) && '0' <= b[j] && b[j] <= '9' {
			j++
		}
		if j-i-1 < 1 || j-i-1 > 6 {
			return 0, errors.New("1 to 6 fraction digits")
		}
		i = j
	}
	if i >= len(b) || (b[i] != 'Z' && b[i] != '+' && b[i] != '-') {
		return 0, rfc3339.ErrSyntax
	}
	return rfc3339.Parse(b)
}

// smallPID converts a numeric PROCID that fits the Pid header.
func smallPID(b []byte) (int32, bool) {
	if len(b) > 10 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return int32(v), v <= 1<<31-1
}

func sdNameChar(c byte) bool {
	return c >= 0x21 && c <= 0x7E && c != '=' && c != ']' && c != '"'
}

// structuredData parses one or more SD-ELEMENTs starting at b[i] == '['
// into sd.<SD-ID>.<PARAM-NAME> fields, in order, repeats kept.
func (d *Decoder) structuredData(b []byte, i int, m *pipeline.Message, out *pipeline.Batch) (int, error) {
	var name [2 + 32 + 1 + 32 + 1]byte // "sd." SD-ID "." PARAM-NAME
	var scratch [256]byte
	var ids [16][2]int
	seen := ids[:0]
	count := 0
	if b[i] != '[' {
		return 0, fmt.Errorf("%w: STRUCTURED-DATA must be '-' or start with '['", ErrRFC5424)
	}
	for i < len(b) && b[i] == '[' {
		i++
		s := i
		for i < len(b) && sdNameChar(b[i]) {
			i++
		}
		if i == s || i-s > 32 {
			return 0, fmt.Errorf("%w: SD-ID must be 1 to 32 characters", ErrRFC5424)
		}
		id := b[s:i]
		for _, p := range seen {
			if string(b[p[0]:p[1]]) == string(id) {
				return 0, fmt.Errorf("%w: SD-ID %q appears twice", ErrRFC5424, id)
			}
		}
		seen = append(seen, [2]int{s, i})
		prefix := append(append(append(name[:0], SDPrefix...), id...), '.')
		params := 0
		for {
			if i >= len(b) {
				return 0, fmt.Errorf("%w: SD-ELEMENT %q not closed", ErrRFC5424, id)
			}
			if b[i] == ']' {
				i++
				break
			}
			if b[i] != ' ' {
				return 0, fmt.Errorf("%w: in SD-ELEMENT %q: %q where a space or ']' belongs", ErrRFC5424, id, b[i])
			}
			i++
			s := i
			for i < len(b) && sdNameChar(b[i]) {
				i++
			}
			if i == s || i-s > 32 {
				return 0, fmt.Errorf("%w: in SD-ELEMENT %q: PARAM-NAME must be 1 to 32 characters", ErrRFC5424, id)
			}
			pname := b[s:i]
			if i+1 >= len(b) || b[i] != '=' || b[i+1] != '"' {
				return 0, fmt.Errorf("%w: in SD-ELEMENT %q: PARAM-NAME %q not followed by =\"", ErrRFC5424, id, pname)
			}
			i += 2
			vs, esc := i, false
			for {
				if i >= len(b) {
					return 0, fmt.Errorf("%w: in SD-ELEMENT %q: PARAM-VALUE not closed", ErrRFC5424, id)
				}
				c := b[i]
				if c == '\\' {
					esc = true
					i += 2
					continue
				}
				if c == '"' {
					break
				}
				if c == ']' {
					return 0, fmt.Errorf("%w: in SD-ELEMENT %q: unescaped ']' in PARAM-VALUE", ErrRFC5424, id)
				}
				i++
			}
			val := b[vs:i]
			i++
			if count == d.cfg.MaxSDParams {
				return 0, fmt.Errorf("%w: more than %d structured-data params", ErrRFC5424, d.cfg.MaxSDParams)
			}
			count++
			var v string
			if esc {
				v = out.Str(unescapeParam(scratch[:0], val))
			} else {
				v = out.Str(val)
			}
			m.AddString(out.StrConcat(prefix, pname), v)
			params++
		}
		if params == 0 {
			if count == d.cfg.MaxSDParams {
				return 0, fmt.Errorf("%w: more than %d structured-data params", ErrRFC5424, d.cfg.MaxSDParams)
			}
			count++
			m.AddField(pipeline.NewField(out.Str(prefix[:len(prefix)-1]), pipeline.TypeString, ""))
		}
	}
	return i, nil
}

// unescapeParam undoes \" \\ \]; a backslash before anything else is kept
// with that character (RFC 5424 §6.3.3).
func unescapeParam(dst, v []byte) []byte {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\\' && i+1 < len(v) && (v[i+1] == '"' || v[i+1] == '\\' || v[i+1] == ']') {
			i++
			c = v[i]
		}
		dst = append(dst, c)
	}
	return dst
}

// rfc3164 parses an RFC 3164 message leniently (formats.md §4.3 Contract);
// it cannot fail: what does not fit is the message.
func (d *Decoder) rfc3164(data []byte, i int, m *pipeline.Message, out *pipeline.Batch) {
	rest := data[i:]
	ts, n, ok := d.timestamp3164(rest)
	if !ok {
		m.Payload = out.Str(rest)
		return
	}
	m.Timestamp = ts
	if n == len(rest) {
		return
	}
	j := n + 1 // the space after the timestamp
	end := j
	for end < len(rest) && rest[end] != ' ' {
		end++
	}
	if end > j {
		if tag, pid, ok := parseTag(rest[j:end]); ok {
			d.tag(tag, pid, m, out)
		} else {
			m.Hostname = out.Str(rest[j:end])
			if end == len(rest) {
				return
			}
			j = end + 1
			end = j
			for end < len(rest) && rest[end] != ' ' {
				end++
			}
			if tag, pid, ok := parseTag(rest[j:end]); ok {
				d.tag(tag, pid, m, out)
			} else {
				end = j - 1 // no tag: the message starts after the hostname's space
			}
		}
		if end == len(rest) {
			return
		}
		j = end + 1
	}
	m.Payload = out.Str(rest[j:])
}

func (d *Decoder) tag(tag, pid []byte, m *pipeline.Message, out *pipeline.Batch) {
	m.AddString(FieldAppName, out.Str(tag))
	if pid != nil {
		m.AddString(FieldProcID, out.Str(pid))
		if p, ok := smallPID(pid); ok {
			m.Pid = p
		}
	}
}

// timestamp3164 tries the timestamp forms of the Contract: RFC 3339, then
// "Mmm d[d] [yyyy ]hh:mm:ss[.frac]", each followed by a space or the end.
func (d *Decoder) timestamp3164(b []byte) (int64, int, bool) {
	if len(b) >= 20 && b[4] == '-' && b[7] == '-' {
		end := 0
		for end < len(b) && b[end] != ' ' {
			end++
		}
		if ns, err := rfc3339.Parse(b[:end]); err == nil {
			return ns, end, true
		}
		return 0, 0, false
	}
	st, n, ok := syslogx.ParseBSD(b)
	if !ok || (n < len(b) && b[n] != ' ') {
		return 0, 0, false
	}
	ns, ok := st.UnixNano(d.loc, d.now())
	return ns, n, ok
}

// parseTag matches a whole token against TAG[PID]: with TAG 1..32 bytes
// that are not whitespace, ':', '[' or ']', and PID 1..128 bytes that are
// not whitespace, '[' or ']'. The colon must end the token.
func parseTag(tok []byte) (tag, pid []byte, ok bool) {
	n := len(tok)
	if n < 2 || tok[n-1] != ':' {
		return nil, nil, false
	}
	body := tok[:n-1]
	t := 0
	for t < len(body) && tagChar(body[t]) {
		t++
	}
	if t == 0 || t > 32 {
		return nil, nil, false
	}
	if t == len(body) {
		return body, nil, true
	}
	if body[t] != '[' || body[len(body)-1] != ']' {
		return nil, nil, false
	}
	p := body[t+1 : len(body)-1]
	if len(p) == 0 || len(p) > 128 {
		return nil, nil, false
	}
	for _, c := range p {
		if c <= ' ' || c == '[' || c == ']' || c == 0x7F {
			return nil, nil, false
		}
	}
	return body[:t], p, true
}

func tagChar(c byte) bool {
	return c > ' ' && c != ':' && c != '[' && c != ']' && c != 0x7F
}
