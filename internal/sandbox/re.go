package sandbox

import (
	"math"
	"regexp"
	"strings"

	lua "github.com/Shopify/go-lua"
)

// The re module matches with Go's RE2 engine (linear time, no ReDoS):
//
//	re.match(s, pattern [, init])     -> captures (the whole match when none), or nil
//	re.find(s, pattern [, init])      -> start, end (1-based, inclusive), captures…, or nil
//	re.gmatch(s, pattern)             -> iterator over matches (captures or whole match)
//	re.gsub(s, pattern, repl [, n])   -> string, count; repl is a string with $1 / ${name},
//	                                     a table indexed by the whole match, or a function of the captures
//	re.split(s, pattern [, n])        -> table of pieces
//	re.quote(s)                       -> s with every metacharacter escaped
//
// An unmatched optional group yields false. Patterns are compiled once per
// State (up to maxRegexps are kept).

const (
	maxRegexps   = 256
	maxRegexpLen = 8 << 10
)

func (s *Sandbox) openRe(l *lua.State) {
	lua.NewLibrary(l, []lua.RegistryFunction{
		{Name: "match", Function: s.reMatch},
		{Name: "find", Function: s.reFind},
		{Name: "gmatch", Function: s.reGmatch},
		{Name: "gsub", Function: s.reGsub},
		{Name: "split", Function: s.reSplit},
		{Name: "quote", Function: func(l *lua.State) int {
			l.PushString(regexp.QuoteMeta(lua.CheckString(l, 1)))
			return 1
		}},
	})
	l.SetGlobal("re")
}

func (s *Sandbox) regexp(l *lua.State, idx int) *regexp.Regexp {
	pat := lua.CheckString(l, idx)
	if re, ok := s.reCache[pat]; ok {
		return re
	}
	if len(pat) > maxRegexpLen {
		lua.Errorf(l, "re: pattern longer than %d bytes", maxRegexpLen)
	}
	re, err := regexp.Compile(pat)
	if err != nil {
		lua.Errorf(l, "re: %s", err.Error())
	}
	if s.reCache == nil || len(s.reCache) >= maxRegexps {
		s.reCache = map[string]*regexp.Regexp{}
	}
	s.reCache[pat] = re
	return re
}

// chargeScan charges a linear scan of n bytes.
func (s *Sandbox) chargeScan(l *lua.State, n int) { s.Charge(l, n/16+1) }

func (s *Sandbox) pushSubmatches(l *lua.State, src string, loc []int, wholeIfNone bool) int {
	n := len(loc)/2 - 1
	if n == 0 {
		if !wholeIfNone {
			return 0
		}
		s.pushPiece(l, src[loc[0]:loc[1]], len(src), "a re capture")
		return 1
	}
	lua.CheckStackWithMessage(l, n, "too many captures")
	for i := 1; i <= n; i++ {
		if loc[2*i] < 0 {
			l.PushBoolean(false)
		} else {
			s.pushPiece(l, src[loc[2*i]:loc[2*i+1]], len(src), "a re capture")
		}
	}
	return n
}

func initArg(l *lua.State, idx, n int) int {
	init := posRelat(lua.OptInteger(l, idx, 1), n)
	if init < 1 {
		init = 1
	}
	return init
}

// reSearch is the search of re.match and re.find: the subject, the
// pattern and init are arguments 1 to 3; loc (of src[init-1:]) is nil when
// nothing matches.
func (s *Sandbox) reSearch(l *lua.State) (src string, init int, loc []int) {
	src = lua.CheckString(l, 1)
	re := s.regexp(l, 2)
	init = initArg(l, 3, len(src))
	if init > len(src)+1 {
		return src, init, nil
	}
	s.chargeScan(l, len(src))
	return src, init, re.FindStringSubmatchIndex(src[init-1:])
}

func (s *Sandbox) reMatch(l *lua.State) int {
	src, init, loc := s.reSearch(l)
	if loc == nil {
		l.PushNil()
		return 1
	}
	return s.pushSubmatches(l, src[init-1:], loc, true)
}

func (s *Sandbox) reFind(l *lua.State) int {
	src, init, loc := s.reSearch(l)
	if loc == nil {
		l.PushNil()
		return 1
	}
	l.PushInteger(init + loc[0])
	l.PushInteger(init - 1 + loc[1])
	return 2 + s.pushSubmatches(l, src[init-1:], loc, false)
}

func (s *Sandbox) reGmatch(l *lua.State) int {
	src := lua.CheckString(l, 1)
	re := s.regexp(l, 2)
	pos := 0
	l.PushGoFunction(func(l *lua.State) int {
		if pos > len(src) {
			return 0
		}
		s.chargeScan(l, len(src)-pos)
		loc := re.FindStringSubmatchIndex(src[pos:])
		if loc == nil {
			pos = len(src) + 1
			return 0
		}
		for i := range loc {
			if loc[i] >= 0 {
				loc[i] += pos
			}
		}
		if loc[1] == loc[0] {
			pos = loc[1] + 1
		} else {
			pos = loc[1]
		}
		return s.pushSubmatches(l, src, loc, true)
	})
	return 1
}

func (s *Sandbox) reGsub(l *lua.State) int {
	src := lua.CheckString(l, 1)
	re := s.regexp(l, 2)
	tr := l.TypeOf(3)
	lua.ArgumentCheck(l, tr == lua.TypeNumber || tr == lua.TypeString || tr == lua.TypeFunction || tr == lua.TypeTable, 3,
		"string/function/table expected")
	maxN := lua.OptInteger(l, 4, -1)
	var tmpl string
	if tr == lua.TypeString || tr == lua.TypeNumber {
		tmpl = numberOrString(l, 3)
	}
	s.chargeScan(l, len(src))
	// The regexp package finds all the matches before the first is
	// replaced: bound how many it may collect.
	per := int64(16*(re.NumSubexp()+1) + 48)
	want, room := s.matchCap(maxN, per)
	locs := re.FindAllStringSubmatchIndex(src, want)
	s.checkMatches(l, len(locs), room, per, "re.gsub")
	var b strings.Builder
	g := growth{what: "re.gsub"}
	last, n := 0, 0
	for _, loc := range locs {
		n++
		b.WriteString(src[last:loc[0]])
		switch tr {
		case lua.TypeString, lua.TypeNumber:
			dst := re.ExpandString(nil, tmpl, src, loc)
			g.need(s, l, b.Len()+len(dst))
			b.Write(dst)
		default:
			if tr == lua.TypeFunction {
				l.PushValue(3)
				k := s.pushSubmatches(l, src, loc, true)
				l.Call(k, 1)
			} else {
				l.PushString(src[loc[0]:loc[1]])
				l.Table(3)
			}
			switch l.TypeOf(-1) {
			case lua.TypeNil:
				b.WriteString(src[loc[0]:loc[1]])
			case lua.TypeBoolean:
				if l.ToBoolean(-1) {
					lua.Errorf(l, "invalid replacement value (a boolean)")
				}
				b.WriteString(src[loc[0]:loc[1]])
			case lua.TypeString, lua.TypeNumber:
				b.WriteString(numberOrString(l, -1))
			default:
				lua.Errorf(l, "invalid replacement value (a %s)", lua.TypeNameOf(l, -1))
			}
			l.Pop(1)
		}
		last = loc[1]
		g.need(s, l, b.Len())
	}
	g.need(s, l, b.Len()+len(src)-last)
	b.WriteString(src[last:])
	l.PushString(b.String())
	l.PushInteger(n)
	return 2
}

func (s *Sandbox) reSplit(l *lua.State) int {
	src := lua.CheckString(l, 1)
	re := s.regexp(l, 2)
	n := lua.OptInteger(l, 3, -1)
	s.chargeScan(l, len(src))
	const per = 16 + 48 // a match's indexes and a piece's header
	want, room := s.matchCap(n, per)
	if room >= 0 && want > room { // one more piece than the room: see if there are more
		want++
	}
	parts := re.Split(src, want)
	s.checkMatches(l, len(parts)-1, room, per, "re.split")
	s.Charge(l, len(parts))
	s.alloc(l, int64(len(parts))*sizeSlot+tableCost, "re.split")
	l.CreateTable(len(parts), 0)
	for i, p := range parts {
		s.pushPiece(l, p, len(src), "re.split")
		l.RawSetInt(-2, i+1)
	}
	return 1
}

// matchCap bounds how many matches a function that collects them all at
// once may look for: as many as the memory left under the limit holds at
// per bytes each, and one more to tell there are more. n < 0 means all.
// room is that many, or -1 without a memory limit.
func (s *Sandbox) matchCap(n int, per int64) (want, room int) {
	if !s.memOn() {
		return n, -1
	}
	room = int(min(max((s.cfg.MemoryLimit-s.MemoryUsed())/per, 0), math.MaxInt32))
	if n < 0 || n > room {
		return room + 1, room
	}
	return n, room
}

// checkMatches fails the call when more matches were found than the room
// matchCap gave, and charges them.
func (s *Sandbox) checkMatches(l *lua.State, found, room int, per int64, what string) {
	if room >= 0 && found > room {
		s.trip(KindMemory, s.memoryError(what).Msg)
	}
	s.alloc(l, int64(found)*per, what)
}
