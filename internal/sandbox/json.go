package sandbox

import (
	"math"
	"sort"
	"strconv"
	"unicode/utf8"

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
//
// Both are bounded: nesting depth maxJSONDepth, output and input size the
// string limit, and one unit of budget per value.

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
	e := jsonEncoder{s: s, l: l, seen: map[any]bool{}}
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
}

func (e *jsonEncoder) grow() {
	if len(e.buf) > e.s.cfg.StringLimit {
		e.s.CheckLen(e.l, -1, "json.encode")
	}
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
		e.buf, _ = jsonx.AppendString(e.buf, str)
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
	if len(src) > s.cfg.StringLimit {
		s.CheckLen(l, -1, "json.decode")
	}
	d := jsonDecoder{s: s, l: l, src: src}
	d.ws()
	d.value(0)
	d.ws()
	if d.pos != len(src) {
		d.fail("unexpected data after the value")
	}
	return 1
}

type jsonDecoder struct {
	s   *Sandbox
	l   *lua.State
	src string
	pos int
	n   int
}

func (d *jsonDecoder) fail(msg string) {
	lua.Errorf(d.l, "json.decode: %s at byte %d", msg, d.pos+1)
}

func (d *jsonDecoder) ws() {
	for d.pos < len(d.src) {
		switch d.src[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

func (d *jsonDecoder) value(depth int) {
	l := d.l
	if d.n++; d.n&255 == 0 {
		d.s.Charge(l, 256)
	}
	if depth > maxJSONDepth {
		d.fail("nesting too deep")
	}
	if d.pos >= len(d.src) {
		d.fail("unexpected end")
	}
	lua.CheckStackWithMessage(l, 4, "json.decode")
	switch c := d.src[d.pos]; {
	case c == '{':
		d.pos++
		l.NewTable()
		d.ws()
		if d.pos < len(d.src) && d.src[d.pos] == '}' {
			d.pos++
			return
		}
		for {
			d.ws()
			if d.pos >= len(d.src) || d.src[d.pos] != '"' {
				d.fail("object key expected")
			}
			l.PushString(d.str())
			d.ws()
			if d.pos >= len(d.src) || d.src[d.pos] != ':' {
				d.fail("':' expected")
			}
			d.pos++
			d.ws()
			d.value(depth + 1)
			l.SetTable(-3)
			d.ws()
			if d.pos < len(d.src) && d.src[d.pos] == ',' {
				d.pos++
				continue
			}
			if d.pos < len(d.src) && d.src[d.pos] == '}' {
				d.pos++
				return
			}
			d.fail("',' or '}' expected")
		}
	case c == '[':
		d.pos++
		l.NewTable()
		d.ws()
		if d.pos < len(d.src) && d.src[d.pos] == ']' {
			d.pos++
			return
		}
		for i := 1; ; i++ {
			d.ws()
			d.value(depth + 1)
			l.RawSetInt(-2, i)
			d.ws()
			if d.pos < len(d.src) && d.src[d.pos] == ',' {
				d.pos++
				continue
			}
			if d.pos < len(d.src) && d.src[d.pos] == ']' {
				d.pos++
				return
			}
			d.fail("',' or ']' expected")
		}
	case c == '"':
		l.PushString(d.str())
	case c == 't' && len(d.src)-d.pos >= 4 && d.src[d.pos:d.pos+4] == "true":
		d.pos += 4
		l.PushBoolean(true)
	case c == 'f' && len(d.src)-d.pos >= 5 && d.src[d.pos:d.pos+5] == "false":
		d.pos += 5
		l.PushBoolean(false)
	case c == 'n' && len(d.src)-d.pos >= 4 && d.src[d.pos:d.pos+4] == "null":
		d.pos += 4
		pushJSONNull(l)
	case c == '-' || ('0' <= c && c <= '9'):
		start := d.pos
		for d.pos < len(d.src) && isNumberByte(d.src[d.pos]) {
			d.pos++
		}
		f, err := strconv.ParseFloat(d.src[start:d.pos], 64)
		if err != nil {
			d.pos = start
			d.fail("bad number")
		}
		l.PushNumber(f)
	default:
		d.fail("unexpected character")
	}
}

func isNumberByte(c byte) bool {
	return ('0' <= c && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'
}

// str reads a JSON string at d.pos (which holds '"').
func (d *jsonDecoder) str() string {
	d.pos++
	start := d.pos
	// Fast path: no escapes.
	for d.pos < len(d.src) {
		c := d.src[d.pos]
		if c == '"' {
			s := d.src[start:d.pos]
			d.pos++
			return s
		}
		if c == '\\' {
			break
		}
		d.pos++
	}
	buf := []byte(d.src[start:d.pos])
	for d.pos < len(d.src) {
		c := d.src[d.pos]
		switch {
		case c == '"':
			d.pos++
			return string(buf)
		case c == '\\':
			d.pos++
			if d.pos >= len(d.src) {
				d.fail("unterminated string")
			}
			e := d.src[d.pos]
			d.pos++
			switch e {
			case '"', '\\', '/':
				buf = append(buf, e)
			case 'b':
				buf = append(buf, '\b')
			case 'f':
				buf = append(buf, '\f')
			case 'n':
				buf = append(buf, '\n')
			case 'r':
				buf = append(buf, '\r')
			case 't':
				buf = append(buf, '\t')
			case 'u':
				r := d.hex4()
				if 0xD800 <= r && r < 0xDC00 && d.pos+6 <= len(d.src) && d.src[d.pos] == '\\' && d.src[d.pos+1] == 'u' {
					d.pos += 2
					r2 := d.hex4()
					if 0xDC00 <= r2 && r2 < 0xE000 {
						r = (r-0xD800)<<10 + (r2 - 0xDC00) + 0x10000
					} else {
						r = utf8.RuneError
					}
				}
				buf = utf8.AppendRune(buf, r)
			default:
				d.fail("bad escape")
			}
		default:
			buf = append(buf, c)
			d.pos++
		}
	}
	d.fail("unterminated string")
	return ""
}

func (d *jsonDecoder) hex4() rune {
	if d.pos+4 > len(d.src) {
		d.fail("bad \\u escape")
	}
	v, err := strconv.ParseUint(d.src[d.pos:d.pos+4], 16, 32)
	if err != nil {
		d.fail("bad \\u escape")
	}
	d.pos += 4
	return rune(v)
}
