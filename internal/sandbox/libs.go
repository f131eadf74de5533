package sandbox

import (
	"fmt"
	"math"
	"math/bits"
	"strings"

	lua "github.com/Shopify/go-lua"
)

// removed are the base functions a script must not reach: they load code
// from outside the sandbox, run a handler with hooks off (xpcall) or steer
// the collector.
var removed = []string{"dofile", "loadfile", "load", "loadstring", "require", "collectgarbage", "xpcall", "print"}

func (s *Sandbox) openLibraries(l *lua.State) {
	for _, lib := range []lua.RegistryFunction{
		{Name: "_G", Function: lua.BaseOpen}, {Name: "string", Function: lua.StringOpen},
		{Name: "table", Function: lua.TableOpen}, {Name: "math", Function: lua.MathOpen},
		{Name: "bit32", Function: lua.Bit32Open},
	} {
		lua.Require(l, lib.Name, lib.Function, true)
		l.Pop(1)
	}
	for _, n := range removed {
		l.PushNil()
		l.SetGlobal(n)
	}
	l.Register("pcall", s.luaPcall)
	l.Register("print", s.luaPrint)
	l.Register("require", s.luaRequire)

	l.Global("string")
	l.Field(-1, "format")
	l.PushGoClosure(s.luaFormat, 1) // the original format is upvalue 1
	l.PushValue(-1)
	l.SetField(lua.RegistryIndex, "tern.format")
	l.SetField(-2, "format")
	lua.SetFunctions(l, []lua.RegistryFunction{
		{Name: "rep", Function: s.luaRep},
		{Name: "find", Function: s.strFind},
		{Name: "match", Function: s.strMatch},
		{Name: "gmatch", Function: s.strGmatch},
		{Name: "gsub", Function: s.strGsub},
		{Name: "byte", Function: s.strByte},
		{Name: "sub", Function: s.strSub},
		{Name: "upper", Function: s.strUpper},
		{Name: "lower", Function: s.strLower},
	}, 0)
	s.wrap(l, "char", func(l *lua.State) { s.allocStr(l, l.Top(), "string.char") })
	s.wrap(l, "reverse", func(l *lua.State) {
		// go-lua reverses runes through a []rune: 4 bytes a byte, and a
		// result up to 3 times as long (bad bytes become U+FFFD).
		n := len(lua.CheckString(l, 1))
		s.CheckLen(l, n, "string.reverse")
		s.alloc(l, 7*int64(n)+sizeStrHeader, "string.reverse")
	})
	l.Pop(1)

	l.Global("table")
	lua.SetFunctions(l, []lua.RegistryFunction{
		{Name: "concat", Function: s.luaConcat},
		{Name: "unpack", Function: s.tblUnpack},
		{Name: "insert", Function: s.tblInsert},
		{Name: "remove", Function: s.tblRemove},
	}, 0)
	s.wrap(l, "sort", func(l *lua.State) {
		lua.CheckType(l, 1, lua.TypeTable)
		n := lua.LengthEx(l, 1)
		s.Charge(l, n*bits.Len(uint(n))/4)
	})
	s.wrap(l, "pack", func(l *lua.State) { s.alloc(l, int64(l.Top())*sizeSlot+tableCost, "table.pack") })
	l.Pop(1)

	s.openRe(l)
	s.openJSON(l)
	s.openOS(l)
	s.openLog(l)
}

// luaPcall is pcall that cannot swallow a tripped limit or a Go runtime
// error: both are raised again past every pcall up to the host.
func (s *Sandbox) luaPcall(l *lua.State) int {
	lua.CheckAny(l, 1)
	err := l.ProtectedCall(l.Top()-1, lua.MultipleReturns, 0)
	if s.tripped != nil {
		lua.Errorf(l, "%s", s.tripped.Msg)
	}
	if err != nil {
		if !isLuaError(err) {
			// A bug in go-lua or a callback: the State is suspect. Make the
			// whole call fail and rebuild before the next one.
			s.broken = true
			s.trip(KindPanic, "Go runtime error: "+err.Error())
		}
		l.PushBoolean(false)
		l.Insert(-2)
		return 2
	}
	l.PushBoolean(true)
	l.Insert(1)
	return l.Top()
}

func (s *Sandbox) luaPrint(l *lua.State) int {
	var b strings.Builder
	for i, n := 1, l.Top(); i <= n; i++ {
		if i > 1 {
			b.WriteByte('\t')
		}
		str, _ := lua.ToStringMeta(l, i)
		l.Pop(1)
		if b.Len()+len(str) > s.cfg.StringLimit {
			break
		}
		b.WriteString(str)
	}
	s.cfg.Logger.Info(b.String(), "lua", "print")
	return 0
}

// wrap replaces the function name of the library table on top of the stack
// with one that runs check (which raises on a breach) before the original.
func (s *Sandbox) wrap(l *lua.State, name string, check func(l *lua.State)) {
	l.Field(-1, name)
	l.PushGoClosure(func(l *lua.State) int {
		check(l)
		l.PushValue(lua.UpValueIndex(1))
		l.Insert(1)
		l.Call(l.Top()-1, lua.MultipleReturns)
		return l.Top()
	}, 1)
	l.SetField(-2, name)
}

// Costs a library function charges before it allocates (walk.go sizes).
const (
	// byteResult is one result of string.byte: its stack slot, the boxed
	// number and the table slot it usually lands in ({s:byte(1, -1)}).
	byteResult = 2*sizeSlot + sizeNumber
	tableCost  = 128
)

// strByte is string.byte with its results charged before they are pushed.
// Their number is bounded by go-lua's stack (a million slots), as Lua's
// own is: string.byte(s, 1, -1) of a longer string fails.
func (s *Sandbox) strByte(l *lua.State) int {
	str := Str(l, 1)
	i := posRelat(lua.OptInteger(l, 2, 1), len(str))
	j := posRelat(lua.OptInteger(l, 3, i), len(str))
	i, j = max(i, 1), min(j, len(str))
	if i > j {
		return 0
	}
	n := j - i + 1
	s.alloc(l, int64(n)*byteResult, "string.byte")
	lua.CheckStackWithMessage(l, n, "string slice too long")
	for k := i - 1; k < j; k++ {
		l.PushInteger(int(str[k]))
	}
	return n
}

// pieceSlack is how much longer than a piece its source string may be for
// the piece to share the source's bytes: a short piece of a long string
// (string.sub, a capture) is copied so it does not keep the whole string,
// which no measurement would see, alive.
const pieceSlack = 32

// pushPiece pushes piece, a substring of a string of srcLen bytes, copied
// when it is much shorter, and charges it.
func (s *Sandbox) pushPiece(l *lua.State, piece string, srcLen int, what string) {
	if len(piece)+pieceSlack < srcLen {
		piece = s.own(piece)
	}
	s.alloc(l, int64(len(piece))+sizeStrHeader+sizeSlot, what)
	l.PushString(piece)
}

// strSub is string.sub, copying short pieces of long strings (pushPiece).
func (s *Sandbox) strSub(l *lua.State) int {
	str := Str(l, 1)
	i := posRelat(lua.CheckInteger(l, 2), len(str))
	j := posRelat(lua.OptInteger(l, 3, -1), len(str))
	i, j = max(i, 1), min(j, len(str))
	if i > j {
		l.PushString("")
		return 1
	}
	s.pushPiece(l, str[i-1:j], len(str), "string.sub")
	return 1
}

// strUpper and strLower charge their result first: Go's case mapping can
// make a string up to 3 times longer (bad bytes become U+FFFD).
func (s *Sandbox) strUpper(l *lua.State) int {
	str := Str(l, 1)
	s.allocStr(l, len(str), "string.upper")
	s.alloc(l, 2*int64(len(str)), "string.upper")
	l.PushString(strings.ToUpper(str))
	return 1
}

func (s *Sandbox) strLower(l *lua.State) int {
	str := Str(l, 1)
	s.allocStr(l, len(str), "string.lower")
	s.alloc(l, 2*int64(len(str)), "string.lower")
	l.PushString(strings.ToLower(str))
	return 1
}

// tblUnpack is table.unpack with its results charged before they are
// pushed and bounded by go-lua's stack.
func (s *Sandbox) tblUnpack(l *lua.State) int {
	lua.CheckType(l, 1, lua.TypeTable)
	i := lua.OptInteger(l, 2, 1)
	var j int
	if l.IsNoneOrNil(3) {
		j = lua.LengthEx(l, 1)
	} else {
		j = lua.CheckInteger(l, 3)
	}
	if i > j {
		return 0
	}
	n := j - i + 1
	if n <= 0 || n >= 1<<30 {
		lua.Errorf(l, "too many results to unpack")
	}
	s.alloc(l, int64(n)*2*sizeSlot, "table.unpack")
	if !l.CheckStack(n) {
		lua.Errorf(l, "too many results to unpack")
	}
	for ; i <= j; i++ {
		l.RawGetInt(1, i)
	}
	return n
}

// tblInsert is table.insert; moving the elements after pos is charged to
// the instruction budget (it is work the deadline cannot interrupt).
func (s *Sandbox) tblInsert(l *lua.State) int {
	lua.CheckType(l, 1, lua.TypeTable)
	end := lua.LengthEx(l, 1) + 1 // the first free index
	switch l.Top() {
	case 2:
		l.RawSetInt(1, end)
	case 3:
		pos := lua.CheckInteger(l, 2)
		lua.ArgumentCheck(l, 1 <= pos && pos <= end, 2, "position out of bounds")
		s.Charge(l, end-pos)
		for k := end; k > pos; k-- {
			l.RawGetInt(1, k-1)
			l.RawSetInt(1, k)
		}
		l.RawSetInt(1, pos)
	default:
		lua.Errorf(l, "wrong number of arguments to 'insert'")
	}
	return 0
}

// tblRemove is table.remove, its moves charged like tblInsert's.
func (s *Sandbox) tblRemove(l *lua.State) int {
	lua.CheckType(l, 1, lua.TypeTable)
	size := lua.LengthEx(l, 1)
	pos := lua.OptInteger(l, 2, size)
	if pos != size {
		lua.ArgumentCheck(l, 1 <= pos && pos <= size+1, 2, "position out of bounds")
	}
	s.Charge(l, max(size-pos, 0))
	l.RawGetInt(1, pos)
	for ; pos < size; pos++ {
		l.RawGetInt(1, pos+1)
		l.RawSetInt(1, pos)
	}
	l.PushNil()
	l.RawSetInt(1, pos)
	return 1
}

// luaRep is string.rep with the result's size checked before it is built.
func (s *Sandbox) luaRep(l *lua.State) int {
	str := lua.CheckString(l, 1)
	n := lua.CheckNumber(l, 2)
	sep := lua.OptString(l, 3, "")
	if n <= 0 || math.IsNaN(n) {
		l.PushString("")
		return 1
	}
	total := float64(len(str))*n + float64(len(sep))*(n-1)
	if total > float64(s.cfg.StringLimit) {
		s.CheckLen(l, -1, "string.rep")
	}
	s.allocStr(l, int(total), "string.rep")
	cnt := int(n)
	var b strings.Builder
	b.Grow(int(total))
	for i := 0; i < cnt; i++ {
		if i > 0 {
			b.WriteString(sep)
		}
		b.WriteString(str)
	}
	l.PushString(b.String())
	return 1
}

// luaConcat is table.concat in linear time (go-lua's is quadratic), with
// the result's size checked as it grows and one unit of budget per element.
func (s *Sandbox) luaConcat(l *lua.State) int {
	lua.CheckType(l, 1, lua.TypeTable)
	sep := lua.OptString(l, 2, "")
	i := lua.OptInteger(l, 3, 1)
	var last int
	if l.IsNoneOrNil(4) {
		last = lua.LengthEx(l, 1)
	} else {
		last = lua.CheckInteger(l, 4)
	}
	var b strings.Builder
	g := growth{what: "table.concat"}
	for ; i <= last; i++ {
		l.RawGetInt(1, i)
		var str string
		switch l.TypeOf(-1) {
		case lua.TypeString:
			str, _ = l.ToString(-1)
		case lua.TypeNumber:
			str = numberString(l, -1)
		default:
			lua.Errorf(l, "invalid value (%s) at index %d in table for 'concat'", lua.TypeNameOf(l, -1), i)
		}
		l.Pop(1)
		g.need(s, l, b.Len()+len(str)+len(sep))
		b.WriteString(str)
		if i < last {
			b.WriteString(sep)
		}
		if i&1023 == 0 {
			s.Charge(l, 1024)
		}
	}
	l.PushString(b.String())
	return 1
}

// numberString converts the number at idx the way Lua prints it, without
// replacing the value on the stack.
func numberString(l *lua.State, idx int) string {
	l.PushValue(idx)
	str, _ := l.ToString(-1)
	l.Pop(1)
	return str
}

// luaFormat is string.format with the size of the result bounded before
// go-lua builds it: widths and precisions have at most two digits, so the
// result is at most the format, 100 bytes per conversion and the strings
// given (4× for %q).
func (s *Sandbox) luaFormat(l *lua.State) int {
	fs := lua.CheckString(l, 1)
	size := len(fs)
	arg := 1
	for i := 0; i < len(fs); i++ {
		if fs[i] != '%' {
			continue
		}
		i++
		if i >= len(fs) {
			break // go-lua fails on it; the host notices the panic
		}
		if fs[i] == '%' {
			continue
		}
		for i < len(fs) && strings.IndexByte("-+ #0123456789.", fs[i]) >= 0 {
			i++
		}
		arg++
		if i >= len(fs) {
			break
		}
		size += 100
		switch fs[i] {
		case 's', 'q':
			if arg <= l.Top() {
				var n int
				switch l.TypeOf(arg) {
				case lua.TypeString:
					n = l.RawLength(arg)
				case lua.TypeNumber, lua.TypeBoolean, lua.TypeNil:
					n = 32
				default:
					str, _ := lua.ToStringMeta(l, arg)
					l.Pop(1)
					n = len(str)
				}
				if fs[i] == 'q' {
					n *= 4
				}
				size += n
			}
		}
	}
	s.allocStr(l, size, "string.format")
	l.PushValue(lua.UpValueIndex(1))
	l.Insert(1)
	l.Call(l.Top()-1, 1)
	return 1
}

// luaRequire loads <module_directory>/<name>.lua (source only) once and
// caches its result in package.loaded-like private storage.
func (s *Sandbox) luaRequire(l *lua.State) int {
	name := lua.CheckString(l, 1)
	l.Field(lua.RegistryIndex, "tern.loaded")
	if l.IsNil(-1) {
		l.Pop(1)
		l.NewTable()
		l.PushValue(-1)
		l.SetField(lua.RegistryIndex, "tern.loaded")
	}
	l.Field(-1, name)
	if !l.IsNil(-1) {
		return 1
	}
	l.Pop(1)
	if open, ok := stateModules[name]; ok {
		open(s, l)
		l.PushValue(-1)
		l.SetField(-3, name)
		return 1
	}
	if s.modules[name] {
		lua.Errorf(l, "require: loop while loading module %q", name)
	}
	src, path, err := s.readModule(name)
	if err != nil {
		lua.Errorf(l, "require: %s", err.Error())
	}
	s.alloc(l, 4*int64(len(src)), "require") // the source and its compiled form
	if err := lua.LoadBuffer(l, src, "@"+path, "t"); err != nil {
		msg := loadMessage(l, err)
		lua.Errorf(l, "require: %s", msg)
	}
	s.modules[name] = true
	l.PushString(name)
	l.Call(1, 1)
	delete(s.modules, name)
	if l.IsNil(-1) {
		l.Pop(1)
		l.PushBoolean(true)
	}
	l.PushValue(-1)
	l.SetField(-3, name)
	return 1
}

// PushGo pushes a Go value onto the stack: nil, bool, numbers, strings,
// []any and map[string]any (recursively).
func PushGo(l *lua.State, v any) {
	switch v := v.(type) {
	case nil:
		l.PushNil()
	case bool:
		l.PushBoolean(v)
	case string:
		l.PushString(v)
	case int:
		l.PushNumber(float64(v))
	case int64:
		l.PushNumber(float64(v))
	case float64:
		l.PushNumber(v)
	case []any:
		l.CreateTable(len(v), 0)
		for i, e := range v {
			PushGo(l, e)
			l.RawSetInt(-2, i+1)
		}
	case map[string]any:
		l.CreateTable(0, len(v))
		for k, e := range v {
			PushGo(l, e)
			l.SetField(-2, k)
		}
	default:
		l.PushString(fmt.Sprint(v))
	}
}
