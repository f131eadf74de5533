package sandbox

import (
	"errors"
	"math"
	"sort"
	"strconv"
	"unsafe"

	lua "github.com/Shopify/go-lua"

	"github.com/ternlog/tern/internal/jsonx"
)

// The json module:
//
//	json.encode(v)  -> string. Tables whose keys are exactly 1..n (n >= 1) are
//	                   arrays, other tables objects with their keys sorted (so the
//	                   output is stable); numbers that are integers print without
//	                   a fraction; NaN and ±Inf, functions and cycles are errors.
//	json.decode(s)  -> value. null becomes json.null (a sentinel that is not nil,
//	                   so arrays keep their length); numbers become Lua numbers.
//	                   The input is strict JSON (RFC 8259), read by the scanner
//	                   the rest of tern uses (internal/jsonx).
//
// Both are bounded: nesting depth maxJSONDepth, output and input size the
// string limit, one unit of budget per value, and what they build is charged
// to the script's memory before it is made.

const maxJSONDepth = 64

func (s *Sandbox) openJSON(l *lua.State) {
	lua.NewLibrary(l, []lua.RegistryFunction{
		{Name: "encode", Function: s.jsonEncode},
		{Name: "decode", Function: s.jsonDecode},
	})
	// go-lua has no light userdata: json.null is one full userdata per
	// State, kept in the registry so every null is the same value.
	l.PushUserData(nullSentinel{})
	l.PushValue(-1)
	l.SetField(lua.RegistryIndex, "tern.jsonnull")
	l.SetField(-2, "null")
	l.SetGlobal("json")
}

type nullSentinel struct{}

func pushJSONNull(l *lua.State) { l.Field(lua.RegistryIndex, "tern.jsonnull") }

func isJSONNull(l *lua.State, idx int) bool {
	if l.TypeOf(idx) != lua.TypeUserData {
		return false
	}
	idx = l.AbsIndex(idx)
	pushJSONNull(l)
	eq := l.RawEqual(idx, -1)
	l.Pop(1)
	return eq
}

func (s *Sandbox) jsonEncode(l *lua.State) int {
	lua.CheckAny(l, 1)
	e := jsonEncoder{s: s, l: l, seen: map[any]bool{}, g: growth{what: "json.encode"}}
	e.value(1, 0)
	l.PushString(string(e.buf))
	return 1
}

type jsonEncoder struct {
	s    *Sandbox
	l    *lua.State
	buf  []byte
	seen map[any]bool
	n    int
	g    growth
}

// grow comes before each value is written: the output so far and a
// value's worth more (strings are checked as they are written).
func (e *jsonEncoder) grow() {
	e.g.need(e.s, e.l, len(e.buf)+64)
	if e.n++; e.n&255 == 0 {
		e.s.Charge(e.l, 256)
	}
}

func (e *jsonEncoder) value(idx, depth int) {
	l := e.l
	idx = l.AbsIndex(idx)
	e.grow()
	switch l.TypeOf(idx) {
	case lua.TypeNil:
		e.buf = append(e.buf, "null"...)
	case lua.TypeBoolean:
		e.buf = strconv.AppendBool(e.buf, l.ToBoolean(idx))
	case lua.TypeNumber:
		f, _ := l.ToNumber(idx)
		e.buf = appendNumber(l, e.buf, f)
	case lua.TypeString:
		str, _ := l.ToString(idx)
		e.g.need(e.s, l, len(e.buf)+len(str)+2) // escapes are checked after
		e.buf, _ = jsonx.AppendString(e.buf, str)
		e.g.need(e.s, l, len(e.buf))
	case lua.TypeTable:
		if depth >= maxJSONDepth {
			lua.Errorf(l, "json.encode: nesting deeper than %d", maxJSONDepth)
		}
		ptr := l.ToValue(idx)
		if e.seen[ptr] {
			lua.Errorf(l, "json.encode: cycle in table")
		}
		e.seen[ptr] = true
		e.table(idx, depth)
		delete(e.seen, ptr)
	case lua.TypeUserData:
		if isJSONNull(l, idx) {
			e.buf = append(e.buf, "null"...)
			return
		}
		fallthrough
	default:
		lua.Errorf(l, "json.encode: cannot encode a %s", lua.TypeNameOf(l, idx))
	}
}

func appendNumber(l *lua.State, dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		lua.Errorf(l, "json.encode: cannot encode %v", f)
	}
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.AppendInt(dst, int64(f), 10)
	}
	return strconv.AppendFloat(dst, f, 'g', -1, 64)
}

func (e *jsonEncoder) table(idx, depth int) {
	l := e.l
	// Collect keys: an array when they are exactly 1..n.
	type key struct {
		s   string
		num float64
		isN bool
	}
	var keys []key
	arrayLike := true
	l.PushNil()
	for l.Next(idx) {
		switch l.TypeOf(-2) {
		case lua.TypeString:
			k, _ := l.ToString(-2)
			keys = append(keys, key{s: k})
			arrayLike = false
		case lua.TypeNumber:
			f, _ := l.ToNumber(-2)
			keys = append(keys, key{num: f, isN: true})
			if f != math.Trunc(f) || f < 1 {
				arrayLike = false
			}
		default:
			lua.Errorf(l, "json.encode: table keys must be strings or numbers, not %s", lua.TypeNameOf(l, -2))
		}
		l.Pop(1)
		if len(keys)&255 == 0 {
			e.s.Charge(l, 256)
		}
	}
	if arrayLike && len(keys) > 0 {
		n := len(keys)
		for _, k := range keys {
			if k.num > float64(n) {
				arrayLike = false
				break
			}
		}
	}
	if arrayLike && len(keys) > 0 {
		e.buf = append(e.buf, '[')
		for i := 1; i <= len(keys); i++ {
			if i > 1 {
				e.buf = append(e.buf, ',')
			}
			l.RawGetInt(idx, i)
			e.value(-1, depth+1)
			l.Pop(1)
		}
		e.buf = append(e.buf, ']')
		return
	}
	names := make([]string, len(keys))
	for i, k := range keys {
		if k.isN {
			names[i] = numberKey(k.num)
		} else {
			names[i] = k.s
		}
	}
	order := make([]int, len(keys))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return names[order[a]] < names[order[b]] })
	e.buf = append(e.buf, '{')
	for j, i := range order {
		if j > 0 {
			e.buf = append(e.buf, ',')
		}
		e.buf, _ = jsonx.AppendString(e.buf, names[i])
		e.buf = append(e.buf, ':')
		if keys[i].isN {
			l.PushNumber(keys[i].num)
		} else {
			l.PushString(keys[i].s)
		}
		l.RawGet(idx)
		e.value(-1, depth+1)
		l.Pop(1)
	}
	e.buf = append(e.buf, '}')
}

func numberKey(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

func (s *Sandbox) jsonDecode(l *lua.State) int {
	src := lua.CheckString(l, 1)
	s.CheckLen(l, len(src), "json.decode")
	d := jsonDecoder{s: s, l: l, n: len(src)}
	// The scanner only reads: it may look at the string's bytes.
	d.sc.Reset(unsafe.Slice(unsafe.StringData(src), len(src)))
	d.value(0)
	if !d.sc.AtEnd() {
		d.fail(d.sc.Errorf("unexpected data after the value"))
	}
	return 1
}

// jsonDecoder builds Lua values from the shared scanner's tokens, charging
// each to the script's memory before it is made.
type jsonDecoder struct {
	s      *Sandbox
	l      *lua.State
	sc     jsonx.Scanner
	n      int // the input's length
	values int
	buf    []byte
}

func (d *jsonDecoder) fail(err error) {
	var se *jsonx.SyntaxError
	if errors.As(err, &se) {
		lua.Errorf(d.l, "json.decode: %s at byte %d", se.Msg, se.Offset+1)
	}
	lua.Errorf(d.l, "json.decode: %s", err.Error())
}

func (d *jsonDecoder) value(depth int) {
	l, s, sc := d.l, d.s, &d.sc
	if d.values++; d.values&255 == 0 {
		s.Charge(l, 256)
	}
	if depth > maxJSONDepth {
		d.fail(sc.Errorf("nesting deeper than %d", maxJSONDepth))
	}
	lua.CheckStackWithMessage(l, 4, "json.decode")
	switch c := sc.Peek(); c {
	case '{':
		sc.Advance()
		s.alloc(l, tableCost, "json.decode")
		l.NewTable()
		if sc.Peek() == '}' {
			sc.Advance()
			return
		}
		for {
			if sc.Peek() != '"' {
				d.fail(sc.Unexpected("an object key"))
			}
			d.str()
			if sc.Peek() != ':' {
				d.fail(sc.Unexpected("':'"))
			}
			sc.Advance()
			d.value(depth + 1)
			s.alloc(l, sizeMapEntry, "json.decode")
			l.SetTable(-3)
			switch sc.Peek() {
			case ',':
				sc.Advance()
				continue
			case '}':
				sc.Advance()
				return
			}
			d.fail(sc.Unexpected("',' or '}'"))
		}
	case '[':
		sc.Advance()
		s.alloc(l, tableCost, "json.decode")
		l.NewTable()
		if sc.Peek() == ']' {
			sc.Advance()
			return
		}
		for i := 1; ; i++ {
			d.value(depth + 1)
			s.alloc(l, 2*sizeSlot, "json.decode") // the slot and the array's doubling
			l.RawSetInt(-2, i)
			switch sc.Peek() {
			case ',':
				sc.Advance()
				continue
			case ']':
				sc.Advance()
				return
			}
			d.fail(sc.Unexpected("',' or ']'"))
		}
	case '"':
		d.str()
	case 't', 'f', 'n':
		switch {
		case sc.Literal("true"):
			l.PushBoolean(true)
		case sc.Literal("false"):
			l.PushBoolean(false)
		case sc.Literal("null"):
			pushJSONNull(l)
		default:
			d.fail(sc.Unexpected("a value"))
		}
	default:
		if c != '-' && (c < '0' || c > '9') {
			d.fail(sc.Unexpected("a value"))
		}
		start := sc.Pos()
		raw, _, err := sc.Number()
		if err != nil {
			d.fail(err)
		}
		f, ok := jsonx.ParseFloat(raw)
		if !ok {
			sc.SetPos(start)
			d.fail(sc.Errorf("number out of range"))
		}
		s.alloc(l, sizeNumber, "json.decode")
		l.PushNumber(f)
	}
}

// str pushes the string at the scanner (Peek returned '"').
func (d *jsonDecoder) str() {
	raw, escaped, err := d.sc.String()
	if err != nil {
		d.fail(err)
	}
	if escaped {
		d.buf = jsonx.Unescape(d.buf[:0], raw)
		d.s.alloc(d.l, int64(len(d.buf))+sizeStrHeader+sizeSlot, "json.decode")
		d.l.PushString(string(d.buf))
		return
	}
	d.s.pushPiece(d.l, unsafe.String(unsafe.SliceData(raw), len(raw)), d.n, "json.decode")
}
