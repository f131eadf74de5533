package sandbox

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	lua "github.com/Shopify/go-lua"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
)

// Heka's message API, shared by the Lua filter and decoder.
//
// read_message(var [, fi [, ai]]) returns a header or a field value, nil
// when absent: var is Uuid (the 36-character text form), Type, Logger,
// Payload, EnvVersion, Hostname, Timestamp (seconds since the epoch as a
// number: float64 keeps about a quarter of a microsecond; see read_exact),
// Severity, Pid, raw (the canonical JSON form) or Fields[name]; fi and ai
// are 0-based field and value indexes. Integer values beyond 2^53 and
// nanosecond timestamps do not survive a Lua number, so:
//
//	read_exact(var [, fi [, ai]])  -> like read_message, but Timestamp is the
//	                                  exact nanoseconds and integers are exact,
//	                                  both as decimal strings
//	read_timestamp()               -> seconds, nanoseconds (two exact numbers)

// Modes of ReadMessage.
const (
	ReadPlain = iota // read_message
	ReadExact        // read_exact
)

// ReadMessage implements read_message and read_exact over m (nil: every
// read returns nil). What it pushes is charged to the script's memory, and
// short strings are copied (pushMessageString).
func (s *Sandbox) ReadMessage(l *lua.State, m *pipeline.Message, mode int) int {
	name := Str(l, 1)
	fi, ai := 0, 0
	if l.Top() >= 2 {
		fi = lua.OptInteger(l, 2, 0)
		ai = lua.OptInteger(l, 3, 0)
	}
	if m == nil {
		l.PushNil()
		return 1
	}
	switch name {
	case "Type":
		s.pushMessageString(l, m.Type)
	case "Logger":
		s.pushMessageString(l, m.Logger)
	case "Payload":
		s.pushMessageString(l, m.Payload)
	case "EnvVersion":
		s.pushMessageString(l, m.EnvVersion)
	case "Hostname":
		s.pushMessageString(l, m.Hostname)
	case "Timestamp":
		if mode == ReadExact {
			l.PushString(strconv.FormatInt(m.Timestamp, 10))
		} else {
			l.PushNumber(float64(m.Timestamp) / 1e9)
		}
	case "Severity":
		l.PushInteger(int(m.Severity))
	case "Pid":
		l.PushInteger(int(m.Pid))
	case "Uuid":
		l.PushString(m.UUIDString())
	case "raw":
		raw := string(codec.AppendJSON(nil, m))
		s.alloc(l, int64(len(raw))+sizeStrHeader+sizeSlot, "read_message")
		l.PushString(raw)
	default:
		field, ok := fieldName(name)
		if !ok {
			lua.ArgumentError(l, 1, "unknown variable "+strconv.Quote(name))
		}
		f := m.Field(field, fi)
		if f == nil || ai < 0 || ai >= f.Len() || f.Unset(ai) {
			l.PushNil()
			return 1
		}
		s.pushValue(l, f.Type, f.Value(ai), mode == ReadExact)
	}
	return 1
}

// pushMessageString pushes a string of a message as the script's own, and
// charges it. A decoder's short strings are views into 32 KiB chunks its
// batch shares (pipeline.Retain): a script that keeps one, say as a table
// key, would keep the whole chunk alive, which no measurement of the
// script sees.
func (s *Sandbox) pushMessageString(l *lua.State, v string) {
	if len(v) <= ownCacheSize {
		v = s.own(v)
	} else {
		v = pipeline.Retain(v)
	}
	s.alloc(l, int64(len(v))+sizeStrHeader+sizeSlot, "read_message")
	l.PushString(v)
}

// Copies of short strings are kept in a small direct-mapped cache: the
// values a script reads and the pieces it cuts repeat (types, loggers,
// hosts, field values, tokens), and a hit costs a hash and a compare where
// a copy costs an allocation.
const (
	ownCacheLen  = 256
	ownCacheSize = 64 // longest string cached
)

// own returns a copy of v that shares no memory with it.
func (s *Sandbox) own(v string) string {
	if len(v) == 0 {
		return ""
	}
	if len(v) > ownCacheSize {
		return strings.Clone(v)
	}
	h := uint32(len(v))
	for i := 0; i < len(v); i++ {
		h = h*31 + uint32(v[i])
	}
	e := &s.owned[h%ownCacheLen]
	if *e != v {
		*e = strings.Clone(v)
	}
	return *e
}

// Str is lua.CheckString without go-lua's write-back of the converted
// value, which costs an allocation even for strings.
func Str(l *lua.State, idx int) string {
	if v, ok := l.ToValue(idx).(string); ok {
		return v
	}
	return lua.CheckString(l, idx)
}

// pushValue pushes one field value.
func (s *Sandbox) pushValue(l *lua.State, t pipeline.ValueType, v pipeline.Value, exact bool) {
	switch t {
	case pipeline.TypeInteger:
		if exact {
			l.PushString(strconv.FormatInt(v.Int(), 10))
		} else {
			l.PushNumber(float64(v.Int()))
		}
	case pipeline.TypeUnsigned:
		if exact {
			l.PushString(strconv.FormatUint(v.Uint(), 10))
		} else {
			l.PushNumber(float64(v.Uint()))
		}
	case pipeline.TypeDouble:
		l.PushNumber(v.Double())
	case pipeline.TypeBool:
		l.PushBoolean(v.Bool())
	default:
		s.pushMessageString(l, v.Str())
	}
}

// fieldName extracts name from "Fields[name]".
func fieldName(v string) (string, bool) {
	if len(v) > 8 && v[:7] == "Fields[" && v[len(v)-1] == ']' {
		return v[7 : len(v)-1], true
	}
	return "", false
}

// ReadTimestamp implements read_timestamp.
func ReadTimestamp(l *lua.State, m *pipeline.Message) int {
	if m == nil {
		l.PushNil()
		return 1
	}
	sec, nsec := m.Timestamp/1e9, m.Timestamp%1e9
	if nsec < 0 {
		sec, nsec = sec-1, nsec+1e9
	}
	l.PushNumber(float64(sec))
	l.PushNumber(float64(nsec))
	return 2
}

// MessageFromTable builds a message from the inject_message table at idx:
//
//	{Uuid, Logger, Hostname, Timestamp, Type, Payload, EnvVersion, Pid, Severity, Fields}
//
// Timestamp is seconds (a number) or exact nanoseconds (a decimal string);
// Uuid is the 36-character form or 16 raw bytes. Fields has the hash form
// {name = value | {v1, v2} | {value = …, value_type = 2, representation = "ms"}}
// (fields sorted by name, so the output is stable) or the array form
// {{name = …, value = …, value_type = …, representation = …}, …}. Lua
// numbers become doubles unless value_type says otherwise (0 string,
// 1 bytes, 2 integer, 3 double, 4 bool); an integer may be given as a
// decimal string to stay exact.
func MessageFromTable(l *lua.State, idx int) (*pipeline.Message, error) {
	idx = l.AbsIndex(idx)
	if !l.IsTable(idx) {
		return nil, fmt.Errorf("a message table expected, got %s", lua.TypeNameOf(l, idx))
	}
	m := pipeline.NewMessage()
	var errs []string
	bad := func(format string, a ...any) { errs = append(errs, fmt.Sprintf(format, a...)) }
	l.PushNil()
	for l.Next(idx) {
		key, isStr := l.ToValue(-2).(string)
		if !isStr {
			bad("message keys are strings")
			l.Pop(1)
			continue
		}
		switch key {
		case "Type", "Logger", "Hostname", "Payload", "EnvVersion":
			if t := l.TypeOf(-1); t != lua.TypeString && t != lua.TypeNumber {
				bad("%s: string expected", key)
				break
			}
			v := numberOrString(l, -1)
			switch key {
			case "Type":
				m.Type = v
			case "Logger":
				m.Logger = v
			case "Hostname":
				m.Hostname = v
			case "Payload":
				m.Payload = v
			case "EnvVersion":
				m.EnvVersion = v
			}
		case "Timestamp":
			ns, ok := timestampArg(l, -1)
			if !ok {
				bad("Timestamp: seconds (number) or nanoseconds (decimal string) expected")
			}
			m.Timestamp = ns
		case "Severity", "Pid":
			f, ok := l.ToNumber(-1)
			if !ok || f != math.Trunc(f) || math.Abs(f) > math.MaxInt32 {
				bad("%s: integer expected", key)
				break
			}
			if key == "Severity" {
				if f < 0 || f > 7 {
					bad("Severity: 0..7 expected")
				}
				m.Severity = int32(f)
			} else {
				m.Pid = int32(f)
			}
		case "Uuid":
			v, _ := l.ToString(-1)
			if u, ok := pipeline.ParseUUID(v); ok {
				m.UUID = u
			} else if len(v) == 16 {
				copy(m.UUID[:], v)
			} else {
				bad("Uuid: 36-character text or 16 bytes expected")
			}
		case "Fields":
			if !l.IsTable(-1) {
				bad("Fields: table expected")
				break
			}
			if err := readFields(l, l.AbsIndex(-1), m); err != nil {
				bad("%v", err)
			}
		default:
			bad("unknown message key %q", key)
		}
		l.Pop(1)
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return nil, fmt.Errorf("inject_message: %s", strings.Join(errs, "; "))
	}
	return m, nil
}

// timestampArg reads seconds (number) or exact nanoseconds (string).
func timestampArg(l *lua.State, idx int) (int64, bool) {
	switch l.TypeOf(idx) {
	case lua.TypeNumber:
		f, _ := l.ToNumber(idx)
		if math.IsNaN(f) || math.Abs(f) > 9.2e9 {
			return 0, false
		}
		// Round to the microsecond: a float64 of seconds today carries
		// about 0.24 µs, so this gives back what read_message returned for
		// microsecond timestamps.
		return int64(math.Round(f*1e6)) * 1e3, true
	case lua.TypeString:
		return ParseNanos(l, idx)
	}
	return 0, false
}

// TimestampArg is timestampArg for plugins (alert start_time and end_time).
func TimestampArg(l *lua.State, idx int) (int64, bool) { return timestampArg(l, idx) }

func readFields(l *lua.State, idx int, m *pipeline.Message) error {
	n := lua.LengthEx(l, idx)
	if n > 0 { // array form
		for i := 1; i <= n; i++ {
			l.RawGetInt(idx, i)
			if !l.IsTable(-1) {
				l.Pop(1)
				return fmt.Errorf("Fields[%d]: {name = …, value = …} expected", i)
			}
			l.Field(-1, "name")
			name, ok := l.ToString(-1)
			l.Pop(1)
			if !ok || l.TypeOf(-1) == lua.TypeNil {
				l.Pop(1)
				return fmt.Errorf("Fields[%d]: name missing", i)
			}
			f, err := fieldFromSpec(l, l.AbsIndex(-1), name)
			l.Pop(1)
			if err != nil {
				return err
			}
			m.AddField(f)
		}
		return nil
	}
	var names []string
	l.PushNil()
	for l.Next(idx) {
		if l.TypeOf(-2) != lua.TypeString {
			l.Pop(2)
			return fmt.Errorf("Fields: names must be strings")
		}
		k, _ := l.ToString(-2)
		names = append(names, k)
		l.Pop(1)
	}
	sort.Strings(names)
	for _, name := range names {
		l.Field(idx, name)
		var f pipeline.Field
		var err error
		if l.IsTable(-1) && !isArray(l, -1) {
			f, err = fieldFromSpec(l, l.AbsIndex(-1), name)
		} else {
			f, err = fieldFromValue(l, l.AbsIndex(-1), name, -1, "")
		}
		l.Pop(1)
		if err != nil {
			return err
		}
		m.AddField(f)
	}
	return nil
}

// isArray reports whether the table at idx is a non-empty sequence.
func isArray(l *lua.State, idx int) bool {
	l.RawGetInt(idx, 1)
	ok := !l.IsNil(-1)
	l.Pop(1)
	return ok
}

// fieldFromSpec reads {value = …, value_type = …, representation = …}.
func fieldFromSpec(l *lua.State, idx int, name string) (pipeline.Field, error) {
	vt := -1
	l.Field(idx, "value_type")
	if !l.IsNil(-1) {
		f, ok := l.ToNumber(-1)
		if !ok || f < 0 || f > float64(pipeline.TypeUnsigned) || f != math.Trunc(f) {
			l.Pop(1)
			return pipeline.Field{}, fmt.Errorf("Fields[%s]: value_type must be 0..%d", name, pipeline.TypeUnsigned)
		}
		vt = int(f)
	}
	l.Pop(1)
	l.Field(idx, "representation")
	repr, _ := l.ToString(-1)
	l.Pop(1)
	l.Field(idx, "value")
	defer l.Pop(1)
	if l.IsNil(-1) {
		return pipeline.Field{}, fmt.Errorf("Fields[%s]: value missing", name)
	}
	return fieldFromValue(l, l.AbsIndex(-1), name, vt, repr)
}

// fieldFromValue reads a value or an array of values.
func fieldFromValue(l *lua.State, idx int, name string, vt int, repr string) (pipeline.Field, error) {
	if l.IsTable(idx) {
		n := lua.LengthEx(l, idx)
		var f pipeline.Field
		for i := 1; i <= n; i++ {
			l.RawGetInt(idx, i)
			if i == 1 {
				if vt < 0 {
					vt = inferType(l, -1)
				}
				f = pipeline.NewField(name, pipeline.ValueType(vt), repr)
			}
			v, err := convertValue(l, -1, pipeline.ValueType(vt))
			l.Pop(1)
			if err != nil {
				return f, fmt.Errorf("Fields[%s][%d]: %v", name, i, err)
			}
			f.Append(v)
		}
		if n == 0 {
			if vt < 0 {
				vt = 0
			}
			f = pipeline.NewField(name, pipeline.ValueType(vt), repr)
		}
		return f, nil
	}
	if vt < 0 {
		vt = inferType(l, idx)
	}
	v, err := convertValue(l, idx, pipeline.ValueType(vt))
	if err != nil {
		return pipeline.Field{}, fmt.Errorf("Fields[%s]: %v", name, err)
	}
	return pipeline.NewField(name, pipeline.ValueType(vt), repr, v), nil
}

func inferType(l *lua.State, idx int) int {
	switch l.TypeOf(idx) {
	case lua.TypeNumber:
		return int(pipeline.TypeDouble)
	case lua.TypeBoolean:
		return int(pipeline.TypeBool)
	}
	return int(pipeline.TypeString)
}

func convertValue(l *lua.State, idx int, t pipeline.ValueType) (pipeline.Value, error) {
	lt := l.TypeOf(idx)
	switch t {
	case pipeline.TypeString, pipeline.TypeBytes:
		if lt != lua.TypeString && lt != lua.TypeNumber {
			return pipeline.Value{}, fmt.Errorf("string expected, got %s", lua.TypeNameOf(l, idx))
		}
		return pipeline.StringValue(numberOrString(l, idx)), nil
	case pipeline.TypeInteger:
		switch lt {
		case lua.TypeNumber:
			f, _ := l.ToNumber(idx)
			if f != math.Trunc(f) || math.Abs(f) > 9.2e18 {
				return pipeline.Value{}, fmt.Errorf("integer expected, got %v", f)
			}
			return pipeline.IntValue(int64(f)), nil
		case lua.TypeString:
			str, _ := l.ToString(idx)
			v, err := strconv.ParseInt(strings.TrimSpace(str), 10, 64)
			if err != nil {
				return pipeline.Value{}, fmt.Errorf("integer expected, got %q", str)
			}
			return pipeline.IntValue(v), nil
		}
		return pipeline.Value{}, fmt.Errorf("integer expected, got %s", lua.TypeNameOf(l, idx))
	case pipeline.TypeUnsigned:
		switch lt {
		case lua.TypeNumber:
			f, _ := l.ToNumber(idx)
			if f != math.Trunc(f) || f < 0 || f >= 1.8446744073709552e19 {
				return pipeline.Value{}, fmt.Errorf("unsigned integer expected, got %v", f)
			}
			return pipeline.UintValue(uint64(f)), nil
		case lua.TypeString:
			str, _ := l.ToString(idx)
			v, err := strconv.ParseUint(strings.TrimSpace(str), 10, 64)
			if err != nil {
				return pipeline.Value{}, fmt.Errorf("unsigned integer expected, got %q", str)
			}
			return pipeline.UintValue(v), nil
		}
		return pipeline.Value{}, fmt.Errorf("unsigned integer expected, got %s", lua.TypeNameOf(l, idx))
	case pipeline.TypeDouble:
		f, ok := l.ToNumber(idx)
		if !ok || lt == lua.TypeBoolean {
			return pipeline.Value{}, fmt.Errorf("number expected, got %s", lua.TypeNameOf(l, idx))
		}
		return pipeline.DoubleValue(f), nil
	case pipeline.TypeBool:
		if lt != lua.TypeBoolean {
			return pipeline.Value{}, fmt.Errorf("boolean expected, got %s", lua.TypeNameOf(l, idx))
		}
		return pipeline.BoolValue(l.ToBoolean(idx)), nil
	}
	return pipeline.Value{}, fmt.Errorf("unknown value type %d", t)
}

// WriteMessage implements write_message(var, value [, representation [, fi [, ai]]])
// on m: it sets a header or a field value; a nil value deletes the field (or
// value ai when given); a table {value = …, value_type = …, representation = …}
// replaces the whole field with that type (value_type 2 makes integers). Uuid takes the text or 16 raw bytes, Timestamp
// seconds or exact nanoseconds. A number written to a field keeps the
// field's type when it has one (integer stays integer), else makes a
// double; value_type-like control is by writing a decimal string to an
// integer field.
func WriteMessage(l *lua.State, m *pipeline.Message) error {
	name := lua.CheckString(l, 1)
	repr := lua.OptString(l, 3, "")
	fi := lua.OptInteger(l, 4, 0)
	ai := lua.OptInteger(l, 5, 0)
	if fi < 0 || ai < 0 {
		return fmt.Errorf("write_message: negative index")
	}
	switch name {
	case "Type", "Logger", "Payload", "EnvVersion", "Hostname":
		if t := l.TypeOf(2); t != lua.TypeString && t != lua.TypeNumber {
			return fmt.Errorf("write_message: %s takes a string", name)
		}
		v := numberOrString(l, 2)
		switch name {
		case "Type":
			m.Type = v
		case "Logger":
			m.Logger = v
		case "Payload":
			m.Payload = v
		case "EnvVersion":
			m.EnvVersion = v
		case "Hostname":
			m.Hostname = v
		}
		return nil
	case "Timestamp":
		ns, ok := timestampArg(l, 2)
		if !ok {
			return fmt.Errorf("write_message: Timestamp takes seconds or exact nanoseconds")
		}
		m.Timestamp = ns
		return nil
	case "Severity", "Pid":
		f, ok := l.ToNumber(2)
		if !ok || f != math.Trunc(f) || math.Abs(f) > math.MaxInt32 {
			return fmt.Errorf("write_message: %s takes an integer", name)
		}
		if name == "Severity" {
			if f < 0 || f > 7 {
				return fmt.Errorf("write_message: Severity takes 0..7")
			}
			m.Severity = int32(f)
		} else {
			m.Pid = int32(f)
		}
		return nil
	case "Uuid":
		v, _ := l.ToString(2)
		if u, ok := pipeline.ParseUUID(v); ok {
			m.UUID = u
		} else if len(v) == 16 {
			copy(m.UUID[:], v)
		} else {
			return fmt.Errorf("write_message: Uuid takes the 36-character text or 16 bytes")
		}
		return nil
	}
	field, ok := fieldName(name)
	if !ok {
		return fmt.Errorf("write_message: unknown variable %q", name)
	}
	f := m.Field(field, fi)
	if l.IsTable(2) && hasKey(l, 2, "value") {
		// {value = …, value_type = …, representation = …} replaces the field.
		nf, err := fieldFromSpec(l, 2, field)
		if err != nil {
			return fmt.Errorf("write_message: %v", err)
		}
		if f != nil {
			*f = nf
		} else if fi == countFields(m, field) {
			m.AddField(nf)
		} else {
			return fmt.Errorf("write_message: field %s has no index %d", field, fi)
		}
		return nil
	}
	if l.IsNoneOrNil(2) {
		if f == nil {
			return nil
		}
		if l.IsNoneOrNil(5) || f.Len() <= 1 {
			m.DeleteField(field, fi)
			return nil
		}
		if ai < f.Len() { // delete one value
			vals := make([]pipeline.Value, 0, f.Len()-1)
			for i := 0; i < f.Len(); i++ {
				if i != ai {
					vals = append(vals, f.Value(i))
				}
			}
			*f = pipeline.NewField(f.Name, f.Type, f.Representation(), vals...)
		}
		return nil
	}
	if f == nil {
		if fi != countFields(m, field) {
			return fmt.Errorf("write_message: field %s has no index %d", field, fi)
		}
		if ai != 0 {
			return fmt.Errorf("write_message: new field %s takes value index 0", field)
		}
		nf, err := fieldFromValue(l, 2, field, -1, repr)
		if err != nil {
			return fmt.Errorf("write_message: %v", err)
		}
		m.AddField(nf)
		return nil
	}
	v, err := convertValue(l, 2, f.Type)
	if err != nil {
		// A new type replaces the field when the whole field is rewritten.
		if ai != 0 || f.Len() > 1 {
			return fmt.Errorf("write_message: %s: %v", field, err)
		}
		nf, err2 := fieldFromValue(l, 2, field, -1, repr)
		if err2 != nil {
			return fmt.Errorf("write_message: %v", err2)
		}
		*f = nf
		return nil
	}
	switch {
	case ai < f.Len():
		f.SetValue(ai, v)
	case ai == f.Len():
		f.Append(v)
	default:
		return fmt.Errorf("write_message: field %s has no value index %d", field, ai)
	}
	if repr != "" {
		f.SetRepresentation(repr)
	}
	return nil
}

func countFields(m *pipeline.Message, name string) int {
	n := 0
	for i := range m.Fields {
		if m.Fields[i].Name == name {
			n++
		}
	}
	return n
}

func hasKey(l *lua.State, idx int, key string) bool {
	l.Field(idx, key)
	ok := !l.IsNil(-1)
	l.Pop(1)
	return ok
}
