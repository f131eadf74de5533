package codec

import (
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"strconv"
	"unsafe"

	"github.com/ternlog/tern/internal/jsonx"
	"github.com/ternlog/tern/internal/rfc3339"
	"github.com/ternlog/tern/pipeline"
)

// AppendJSON appends the canonical JSON form of m: one object without
// whitespace whose keys always come in this order,
//
//	{"uuid":"…","timestamp":"…","type":"…","logger":"…","severity":6,"payload":"…",
//	 "env_version":"…","pid":0,"hostname":"…","fields":[{"name":"…","type":"string",
//	 "value":["…"],"representation":"…"}]}
//
// with "representation" left out when empty. The timestamp is RFC 3339 in UTC
// with up to nine fraction digits, trailing zeros trimmed. Bytes values are
// standard padded base64. Doubles are written as jsonx.AppendFloat does: the
// shortest text that reads back exactly, in plain decimal for
// 1e-6 <= |x| < 1e21 and exponent form otherwise, integral values with ".0";
// NaN and ±Inf as the strings "NaN", "Infinity" and "-Infinity". Strings are
// escaped as AppendJSONString does. A field whose Type is not one of the five
// value types is written as a string field. AppendJSON does not allocate
// when dst has room.
func AppendJSON(dst []byte, m *pipeline.Message) []byte {
	dst, _ = AppendJSONCount(dst, m)
	return dst
}

// AppendJSONCount is AppendJSON that also returns the number of invalid
// UTF-8 bytes it replaced with U+FFFD (for a utf8_replaced_total counter).
func AppendJSONCount(dst []byte, m *pipeline.Message) (out []byte, replaced int) {
	var n int
	dst = append(dst, `{"uuid":"`...)
	dst = pipeline.AppendUUID(dst, m.UUID)
	dst = append(dst, `","timestamp":"`...)
	dst = rfc3339.Append(dst, m.Timestamp, rfc3339.Trimmed)
	dst = append(dst, `","type":`...)
	dst, n = jsonx.AppendString(dst, m.Type)
	replaced += n
	dst = append(dst, `,"logger":`...)
	dst, n = jsonx.AppendString(dst, m.Logger)
	replaced += n
	dst = append(dst, `,"severity":`...)
	dst = strconv.AppendInt(dst, int64(m.Severity), 10)
	dst = append(dst, `,"payload":`...)
	dst, n = jsonx.AppendString(dst, m.Payload)
	replaced += n
	dst = append(dst, `,"env_version":`...)
	dst, n = jsonx.AppendString(dst, m.EnvVersion)
	replaced += n
	dst = append(dst, `,"pid":`...)
	dst = strconv.AppendInt(dst, int64(m.Pid), 10)
	dst = append(dst, `,"hostname":`...)
	dst, n = jsonx.AppendString(dst, m.Hostname)
	replaced += n
	dst = append(dst, `,"fields":[`...)
	for i := range m.Fields {
		f := &m.Fields[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"name":`...)
		dst, n = jsonx.AppendString(dst, f.Name)
		replaced += n
		t := f.Type
		if !t.Known() {
			t = pipeline.TypeString
		}
		dst = append(dst, `,"type":"`...)
		dst = append(dst, t.String()...)
		dst = append(dst, `","value":[`...)
		for j := range f.Len() {
			if j > 0 {
				dst = append(dst, ',')
			}
			if f.Unset(j) {
				dst = append(dst, "null"...)
				continue
			}
			dst, n = AppendJSONValue(dst, t, f.Value(j))
			replaced += n
		}
		dst = append(dst, ']')
		if f.Representation() != "" {
			dst = append(dst, `,"representation":`...)
			dst, n = jsonx.AppendString(dst, f.Representation())
			replaced += n
		}
		dst = append(dst, '}')
	}
	return append(dst, "]}"...), replaced
}

// AppendJSONValue appends v, a value of type t, as AppendJSON writes field
// values: a string (AppendJSONString), bytes in base64 within a string, a
// number (doubles as AppendFloat in internal/jsonx writes them), or
// true/false. replaced counts the bytes of invalid UTF-8 replaced in a
// string. AppendJSON writes the unset value as null without calling it.
func AppendJSONValue(dst []byte, t pipeline.ValueType, v pipeline.Value) (out []byte, replaced int) {
	switch t {
	case pipeline.TypeBytes:
		dst = append(dst, '"')
		dst = base64.StdEncoding.AppendEncode(dst, v.Bytes())
		return append(dst, '"'), 0
	case pipeline.TypeInteger:
		return strconv.AppendInt(dst, v.Int(), 10), 0
	case pipeline.TypeUnsigned:
		return strconv.AppendUint(dst, v.Uint(), 10), 0
	case pipeline.TypeDouble:
		return jsonx.AppendFloat(dst, v.Double()), 0
	case pipeline.TypeBool:
		if v.Bool() {
			return append(dst, "true"...), 0
		}
		return append(dst, "false"...), 0
	}
	return jsonx.AppendString(dst, v.Str())
}

// AppendJSONString appends s as a JSON string literal. It escapes '"', '\\',
// control characters (\n, \r and \t in short form, the others as \u00XX)
// and U+2028/U+2029 (as \u2028 and \u2029, for JavaScript readers); it does
// not escape HTML characters. Each byte of an invalid UTF-8 sequence becomes
// U+FFFD, and replaced counts them.
func AppendJSONString(dst []byte, s string) (out []byte, replaced int) {
	return jsonx.AppendString(dst, s)
}

// DecodeJSON reads the canonical JSON form of a message into m, which it
// resets first. When b is not nil, strings are copied into b's arena
// (Batch.Str); otherwise they are allocated.
//
// Besides the form AppendJSON writes, it accepts keys in any order, missing
// header keys (UUID and Timestamp stay zero, for the engine to fill;
// Severity is 7), a timestamp given as an integer number of nanoseconds, a
// scalar "value" for a single value, and a missing field "type", inferred
// from the first value: string → string, integer → integer, number with
// fraction or exponent → double, true/false → bool (an empty array gives a
// string field); every value must then have that type. Unknown keys and
// values of the wrong type are errors naming the key, e.g.
// `fields[2].value[1]: integer expected`. Invalid UTF-8 is kept as it is.
func DecodeJSON(data []byte, m *pipeline.Message, b *pipeline.Batch) error {
	m.Reset()
	d := jsonDecoder{b: b, data: data}
	if b != nil {
		d.base = b.Str(data)
	}
	d.s.Reset(data)
	return d.message(m)
}

type jsonDecoder struct {
	s       jsonx.Scanner
	b       *pipeline.Batch
	data    []byte
	base    string // data copied once into b's arena; strings without escapes are slices of it
	scratch []byte
	nvalues int // values decoded so far
}

// Header keys, as bits of the duplicate-key check.
const (
	hkUUID = 1 << iota
	hkTimestamp
	hkType
	hkLogger
	hkSeverity
	hkPayload
	hkEnvVersion
	hkPid
	hkHostname
	hkFields
)

func bytesString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// quote renders a value for an error message, shortened.
func quote(b []byte) string {
	if len(b) > 64 {
		return strconv.Quote(string(b[:64])) + "…"
	}
	return strconv.Quote(string(b))
}

func (d *jsonDecoder) str(raw []byte, esc bool) string {
	if esc {
		d.scratch = jsonx.Unescape(d.scratch[:0], raw)
		raw = d.scratch
	} else if d.base != "" {
		// raw is data[i:j] (the scanner never uses three-index slices).
		i := cap(d.data) - cap(raw)
		return d.base[i : i+len(raw)]
	}
	if d.b != nil {
		return d.b.Str(raw)
	}
	return string(raw)
}

// key reads an object key and the colon after it.
func (d *jsonDecoder) key() ([]byte, error) {
	s := &d.s
	if s.Peek() != '"' {
		return nil, s.Unexpected("string key")
	}
	raw, esc, err := s.String()
	if err != nil {
		return nil, err
	}
	if esc {
		d.scratch = jsonx.Unescape(d.scratch[:0], raw)
		raw = d.scratch
	}
	if s.Peek() != ':' {
		return nil, s.Unexpected("':'")
	}
	s.Advance()
	return raw, nil
}

// next consumes ',' (more=true) or the closing byte (more=false).
func (d *jsonDecoder) next(closing byte) (more bool, err error) {
	switch d.s.Peek() {
	case ',':
		d.s.Advance()
		return true, nil
	case closing:
		d.s.Advance()
		return false, nil
	}
	return false, d.s.Unexpected("',' or '" + string(closing) + "'")
}

// pathName names key name of the message, or of field i when i >= 0.
func pathName(name string, i int) string {
	if i < 0 {
		return name
	}
	return fmt.Sprintf("fields[%d].%s", i, name)
}

// stringValue reads a string for key name of the message, or of field i
// when i >= 0.
func (d *jsonDecoder) stringValue(name string, i int) (string, error) {
	s := &d.s
	if s.Peek() != '"' {
		return "", d.typeError(pathName(name, i), "string")
	}
	raw, esc, err := s.String()
	if err != nil {
		return "", fmt.Errorf("%s: %w", pathName(name, i), err)
	}
	return d.str(raw, esc), nil
}

func (d *jsonDecoder) int32Value(name string) (int32, error) {
	s := &d.s
	if c := s.Peek(); c != '-' && (c < '0' || c > '9') {
		return 0, d.typeError(name, "integer")
	}
	raw, isInt, err := s.Number()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	if !isInt {
		return 0, fmt.Errorf("%s: integer expected", name)
	}
	v, ok := jsonx.ParseInt(raw)
	if !ok || v < math.MinInt32 || v > math.MaxInt32 {
		return 0, fmt.Errorf("%s: out of range: %s", name, raw)
	}
	return int32(v), nil
}

// typeError reports a value of the wrong JSON type at the current offset.
func (d *jsonDecoder) typeError(name, want string) error {
	if d.s.Pos() >= len(d.s.Data()) {
		return fmt.Errorf("%s: %w", name, d.s.Unexpected(want))
	}
	return fmt.Errorf("%s: %s expected", name, want)
}

func (d *jsonDecoder) message(m *pipeline.Message) error {
	s := &d.s
	if s.Peek() != '{' {
		if s.Pos() >= len(s.Data()) {
			return errors.New("message: empty input")
		}
		return errors.New("message: JSON object expected")
	}
	s.Advance()
	var seen uint
	if s.Peek() == '}' {
		s.Advance()
	} else {
		for {
			key, err := d.key()
			if err != nil {
				return fmt.Errorf("message: %w", err)
			}
			var bit uint
			switch bytesString(key) {
			case "uuid":
				bit = hkUUID
				if s.Peek() != '"' {
					return d.typeError("uuid", "string")
				}
				raw, esc, err := s.String()
				if err != nil {
					return fmt.Errorf("uuid: %w", err)
				}
				if esc {
					d.scratch = jsonx.Unescape(d.scratch[:0], raw)
					raw = d.scratch
				}
				u, ok := pipeline.ParseUUID(bytesString(raw))
				if !ok {
					return fmt.Errorf("uuid: not a UUID: %s", quote(raw))
				}
				m.UUID = u
			case "timestamp":
				bit = hkTimestamp
				if err := d.timestamp(m); err != nil {
					return err
				}
			case "type":
				bit = hkType
				m.Type, err = d.stringValue("type", -1)
			case "logger":
				bit = hkLogger
				m.Logger, err = d.stringValue("logger", -1)
			case "severity":
				bit = hkSeverity
				m.Severity, err = d.int32Value("severity")
			case "payload":
				bit = hkPayload
				m.Payload, err = d.stringValue("payload", -1)
			case "env_version":
				bit = hkEnvVersion
				m.EnvVersion, err = d.stringValue("env_version", -1)
			case "pid":
				bit = hkPid
				m.Pid, err = d.int32Value("pid")
			case "hostname":
				bit = hkHostname
				m.Hostname, err = d.stringValue("hostname", -1)
			case "fields":
				bit = hkFields
				err = d.fields(m)
			default:
				return fmt.Errorf("message: unknown key %s", quote(key))
			}
			if err != nil {
				return err
			}
			if seen&bit != 0 {
				return fmt.Errorf("message: duplicate key %s", quote(key))
			}
			seen |= bit
			more, err := d.next('}')
			if err != nil {
				return fmt.Errorf("message: %w", err)
			}
			if !more {
				break
			}
		}
	}
	if !s.AtEnd() {
		return fmt.Errorf("message: %w", s.Unexpected("end of input"))
	}
	return nil
}

func (d *jsonDecoder) timestamp(m *pipeline.Message) error {
	s := &d.s
	switch c := s.Peek(); {
	case c == '"':
		raw, esc, err := s.String()
		if err != nil {
			return fmt.Errorf("timestamp: %w", err)
		}
		if esc {
			d.scratch = jsonx.Unescape(d.scratch[:0], raw)
			raw = d.scratch
		}
		ns, err := rfc3339.Parse(raw)
		if err != nil {
			return fmt.Errorf("timestamp: %w: %s", err, quote(raw))
		}
		m.Timestamp = ns
	case c == '-' || '0' <= c && c <= '9':
		raw, isInt, err := s.Number()
		if err != nil {
			return fmt.Errorf("timestamp: %w", err)
		}
		ns, ok := jsonx.ParseInt(raw)
		if !isInt || !ok {
			return fmt.Errorf("timestamp: integer nanoseconds expected: %s", raw)
		}
		m.Timestamp = ns
	default:
		return d.typeError("timestamp", "RFC 3339 string or integer")
	}
	return nil
}

func (d *jsonDecoder) fields(m *pipeline.Message) error {
	s := &d.s
	if s.Peek() != '[' {
		return d.typeError("fields", "array")
	}
	s.Advance()
	if s.Peek() == ']' {
		s.Advance()
		return nil
	}
	for i := 0; ; i++ {
		if i >= pipeline.MaxFields {
			return fmt.Errorf("fields: more than %d", pipeline.MaxFields)
		}
		if err := d.field(m, i); err != nil {
			return err
		}
		more, err := d.next(']')
		if err != nil {
			return fmt.Errorf("fields: %w", err)
		}
		if !more {
			return nil
		}
	}
}

func (d *jsonDecoder) field(m *pipeline.Message, i int) error {
	s := &d.s
	if s.Peek() != '{' {
		return d.typeError(fmt.Sprintf("fields[%d]", i), "object")
	}
	s.Advance()
	m.Fields = append(m.Fields, pipeline.Field{})
	f := &m.Fields[len(m.Fields)-1]
	const (
		kName = 1 << iota
		kType
		kValue
		kRepr
	)
	var seen uint
	var typ pipeline.ValueType
	valuePos := -1
	if s.Peek() == '}' {
		s.Advance()
	} else {
		for {
			key, err := d.key()
			if err != nil {
				return fmt.Errorf("fields[%d]: %w", i, err)
			}
			var bit uint
			switch bytesString(key) {
			case "name":
				bit = kName
				f.Name, err = d.stringValue("name", i)
			case "type":
				bit = kType
				if s.Peek() != '"' {
					return d.typeError(fmt.Sprint("fields[", i, "].type"), "string")
				}
				raw, _, err := s.String()
				if err != nil {
					return fmt.Errorf("fields[%d].type: %w", i, err)
				}
				t, ok := pipeline.ParseValueType(bytesString(raw))
				if !ok {
					return fmt.Errorf("fields[%d].type: unknown type %s", i, quote(raw))
				}
				typ = t
			case "value":
				bit = kValue
				if seen&kType != 0 {
					err = d.values(f, typ, i)
				} else {
					// The type may come later: parse the values then.
					valuePos = s.Pos()
					_, err = s.Skip(2)
					if err != nil {
						err = fmt.Errorf("fields[%d].value: %w", i, err)
					}
				}
			case "representation":
				bit = kRepr
				var r string
				r, err = d.stringValue("representation", i)
				f.SetRepresentation(r)
			default:
				return fmt.Errorf("fields[%d]: unknown key %s", i, quote(key))
			}
			if err != nil {
				return err
			}
			if seen&bit != 0 {
				return fmt.Errorf("fields[%d]: duplicate key %s", i, quote(key))
			}
			seen |= bit
			more, err := d.next('}')
			if err != nil {
				return fmt.Errorf("fields[%d]: %w", i, err)
			}
			if !more {
				break
			}
		}
	}
	if seen&kName == 0 {
		return fmt.Errorf("fields[%d]: name missing", i)
	}
	if seen&kValue == 0 {
		return fmt.Errorf("fields[%d]: value missing", i)
	}
	if valuePos >= 0 {
		end := s.Pos()
		s.SetPos(valuePos)
		if seen&kType == 0 {
			typ = d.inferType()
		}
		if err := d.values(f, typ, i); err != nil {
			return err
		}
		s.SetPos(end)
	}
	f.Type = typ
	return nil
}

// inferType guesses a field's type from its (first) value at the current
// offset, without consuming it.
func (d *jsonDecoder) inferType() pipeline.ValueType {
	s := &d.s
	pos := s.Pos()
	defer s.SetPos(pos)
	c := s.Peek()
	if c == '[' {
		s.Advance()
		c = s.Peek()
	}
	switch {
	case c == 't' || c == 'f':
		return pipeline.TypeBool
	case c == '-' || '0' <= c && c <= '9':
		raw, isInt, err := s.Number()
		if err == nil && !isInt {
			return pipeline.TypeDouble
		}
		if _, ok := jsonx.ParseInt(raw); err == nil && !ok {
			if _, ok := jsonx.ParseUint(raw); ok {
				return pipeline.TypeUnsigned // above int64, whole in a uint64
			}
		}
		return pipeline.TypeInteger
	}
	return pipeline.TypeString
}

func (d *jsonDecoder) values(f *pipeline.Field, t pipeline.ValueType, i int) error {
	s := &d.s
	if s.Peek() != '[' {
		return d.value(f, t, i, -1)
	}
	s.Advance()
	if s.Peek() == ']' {
		s.Advance()
		return nil
	}
	for j := 0; ; j++ {
		if err := d.value(f, t, i, j); err != nil {
			return err
		}
		more, err := d.next(']')
		if err != nil {
			return fmt.Errorf("fields[%d].value: %w", i, err)
		}
		if !more {
			return nil
		}
	}
}

func valuePath(i, j int) string {
	if j < 0 {
		return fmt.Sprintf("fields[%d].value", i)
	}
	return fmt.Sprintf("fields[%d].value[%d]", i, j)
}

func (d *jsonDecoder) value(f *pipeline.Field, t pipeline.ValueType, i, j int) error {
	s := &d.s
	if d.nvalues++; d.nvalues > pipeline.MaxValues {
		return fmt.Errorf("%s: more than %d values in the message", valuePath(i, j), pipeline.MaxValues)
	}
	c := s.Peek()
	if c == 'n' && s.Literal("null") {
		f.AppendUnset() // a slot that holds nothing, of any type
		return nil
	}
	var v pipeline.Value
	switch t {
	case pipeline.TypeString:
		if c != '"' {
			return d.typeError(valuePath(i, j), "string")
		}
		raw, esc, err := s.String()
		if err != nil {
			return fmt.Errorf("%s: %w", valuePath(i, j), err)
		}
		v = pipeline.StringValue(d.str(raw, esc))
	case pipeline.TypeBytes:
		if c != '"' {
			return d.typeError(valuePath(i, j), "base64 string")
		}
		raw, esc, err := s.String()
		if err != nil {
			return fmt.Errorf("%s: %w", valuePath(i, j), err)
		}
		if esc {
			d.scratch = jsonx.Unescape(d.scratch[:0], raw)
			raw = d.scratch
		}
		enc := base64.StdEncoding
		var out []byte
		if d.b != nil {
			// raw may live in scratch already: decode after it.
			start := len(d.scratch)
			if !esc {
				start = 0
				d.scratch = d.scratch[:0]
			}
			d.scratch = append(d.scratch, make([]byte, enc.DecodedLen(len(raw)))...)
			out = d.scratch[start:]
		} else {
			out = make([]byte, enc.DecodedLen(len(raw)))
		}
		n, err := enc.Decode(out, raw)
		if err != nil {
			return fmt.Errorf("%s: invalid base64", valuePath(i, j))
		}
		if d.b != nil {
			v = pipeline.StringValue(d.b.Str(out[:n]))
		} else if n > 0 {
			v = pipeline.StringValue(unsafe.String(&out[0], n))
		}
	case pipeline.TypeInteger:
		if c != '-' && (c < '0' || c > '9') {
			return d.typeError(valuePath(i, j), "integer")
		}
		raw, isInt, err := s.Number()
		if err != nil {
			return fmt.Errorf("%s: %w", valuePath(i, j), err)
		}
		if !isInt {
			return fmt.Errorf("%s: integer expected", valuePath(i, j))
		}
		n, ok := jsonx.ParseInt(raw)
		if !ok {
			return fmt.Errorf("%s: integer out of range: %s", valuePath(i, j), raw)
		}
		v = pipeline.IntValue(n)
	case pipeline.TypeUnsigned:
		if c < '0' || c > '9' {
			return d.typeError(valuePath(i, j), "unsigned integer")
		}
		raw, isInt, err := s.Number()
		if err != nil {
			return fmt.Errorf("%s: %w", valuePath(i, j), err)
		}
		n, ok := jsonx.ParseUint(raw)
		if !isInt || !ok {
			return fmt.Errorf("%s: unsigned integer out of range: %s", valuePath(i, j), raw)
		}
		v = pipeline.UintValue(n)
	case pipeline.TypeDouble:
		var x float64
		switch {
		case c == '"':
			raw, _, err := s.String()
			if err != nil {
				return fmt.Errorf("%s: %w", valuePath(i, j), err)
			}
			switch bytesString(raw) {
			case "NaN":
				x = math.NaN()
			case "Infinity":
				x = math.Inf(1)
			case "-Infinity":
				x = math.Inf(-1)
			default:
				return fmt.Errorf("%s: double expected, got %s", valuePath(i, j), quote(raw))
			}
		case c == '-' || '0' <= c && c <= '9':
			raw, _, err := s.Number()
			if err != nil {
				return fmt.Errorf("%s: %w", valuePath(i, j), err)
			}
			var ok bool
			if x, ok = jsonx.ParseFloat(raw); !ok {
				return fmt.Errorf("%s: double out of range: %s", valuePath(i, j), raw)
			}
		default:
			return d.typeError(valuePath(i, j), "double")
		}
		v = pipeline.DoubleValue(x)
	case pipeline.TypeBool:
		switch {
		case s.Literal("true"):
			v = pipeline.BoolValue(true)
		case s.Literal("false"):
		default:
			return d.typeError(valuePath(i, j), "bool")
		}
	}
	f.Append(v)
	return nil
}
