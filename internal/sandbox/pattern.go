package sandbox

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	lua "github.com/Shopify/go-lua"
)

// Lua 5.2 patterns (manual §6.4.1), which go-lua lacks: character classes
// (%a %c %d %g %l %p %s %u %w %x and their upper-case complements), sets
// with ranges, the quantifiers * + - ?, anchors, captures including position
// captures (), back references %1-%9, %bxy and the frontier %f[set].
//
// Matching backtracks like the reference implementation, so a pattern such
// as ".-.-.-x" is polynomial in the subject's length. Every step is counted:
// the caller hands the matcher a step budget (from the instruction budget)
// and the matcher stops with errSteps when it is spent.

const (
	maxCaptures   = 32
	maxMatchDepth = 200
	capUnfinished = -1
	capPosition   = -2
	patEsc        = '%'
	specials      = "^$*+?.([%-"
)

var (
	errSteps         = errors.New("pattern matching exceeded the instruction budget")
	errMatchDeadline = errors.New("pattern matching exceeded the deadline")
)

// patternError is a malformed pattern; it is raised as a Lua error.
type patternError string

func (e patternError) Error() string { return string(e) }

type capture struct {
	init, len int
}

type matchState struct {
	s        *Sandbox
	src, pat string
	level    int
	capture  [maxCaptures]capture
	steps    int // remaining
	depth    int
	deadline time.Time
}

func (ms *matchState) fail(msg string) { panic(patternError(msg)) }

func (ms *matchState) step() {
	if ms.steps--; ms.steps < 0 {
		panic(errSteps)
	}
	if ms.steps&0xffff == 0 && !ms.deadline.IsZero() && time.Now().After(ms.deadline) {
		panic(errMatchDeadline)
	}
}

// classEnd returns the index just after the single-character class at p.
func (ms *matchState) classEnd(p int) int {
	pat := ms.pat
	c := pat[p]
	p++
	if c == patEsc {
		if p >= len(pat) {
			ms.fail("malformed pattern (ends with '%')")
		}
		return p + 1
	}
	if c == '[' {
		if p < len(pat) && pat[p] == '^' {
			p++
		}
		for { // look for a ']'
			if p >= len(pat) {
				ms.fail("malformed pattern (missing ']')")
			}
			c := pat[p]
			p++
			if c == patEsc && p < len(pat) {
				p++ // skip escapes (e.g. '%]')
			}
			if p < len(pat) && pat[p] == ']' {
				return p + 1
			}
			if p >= len(pat) {
				ms.fail("malformed pattern (missing ']')")
			}
		}
	}
	return p
}

func isLower(c byte) bool  { return 'a' <= c && c <= 'z' }
func isUpper(c byte) bool  { return 'A' <= c && c <= 'Z' }
func isDigit(c byte) bool  { return '0' <= c && c <= '9' }
func isAlpha(c byte) bool  { return isLower(c) || isUpper(c) }
func isSpace(c byte) bool  { return c == ' ' || ('\t' <= c && c <= '\r') }
func isCntrl(c byte) bool  { return c < 0x20 || c == 0x7f }
func isPunct(c byte) bool  { return isGraph(c) && !isAlpha(c) && !isDigit(c) }
func isGraph(c byte) bool  { return 0x21 <= c && c <= 0x7e }
func isXDigit(c byte) bool { return isDigit(c) || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F') }

// matchClass reports whether c belongs to the class letter cl (%a, %D, …);
// any other letter stands for itself.
func matchClass(c, cl byte) bool {
	var res bool
	switch cl | 0x20 {
	case 'a':
		res = isAlpha(c)
	case 'c':
		res = isCntrl(c)
	case 'd':
		res = isDigit(c)
	case 'g':
		res = isGraph(c)
	case 'l':
		res = isLower(c)
	case 'p':
		res = isPunct(c)
	case 's':
		res = isSpace(c)
	case 'u':
		res = isUpper(c)
	case 'w':
		res = isAlpha(c) || isDigit(c)
	case 'x':
		res = isXDigit(c)
	default:
		return cl == c
	}
	if isUpper(cl) {
		return !res
	}
	return res
}

// matchBracketClass matches c against the set pat[p:ec+1], where pat[p] is
// '[' and pat[ec] is ']'.
func (ms *matchState) matchBracketClass(c byte, p, ec int) bool {
	pat := ms.pat
	sig := true
	if pat[p+1] == '^' {
		sig = false
		p++
	}
	for p++; p < ec; p++ {
		switch {
		case pat[p] == patEsc:
			p++
			if matchClass(c, pat[p]) {
				return sig
			}
		case p+2 < ec && pat[p+1] == '-':
			if pat[p] <= c && c <= pat[p+2] {
				return sig
			}
			p += 2
		case pat[p] == c:
			return sig
		}
	}
	return !sig
}

// singleMatch matches the class pat[p:ep] against src[s].
func (ms *matchState) singleMatch(s, p, ep int) bool {
	if s >= len(ms.src) {
		return false
	}
	c := ms.src[s]
	switch ms.pat[p] {
	case '.':
		return true
	case patEsc:
		return matchClass(c, ms.pat[p+1])
	case '[':
		return ms.matchBracketClass(c, p, ep-1)
	}
	return ms.pat[p] == c
}

// match returns the end of the match of pat[p:] at src[s], or -1.
func (ms *matchState) match(s, p int) int {
	if ms.depth++; ms.depth > maxMatchDepth {
		ms.fail("pattern too complex")
	}
	defer func() { ms.depth-- }()
	pat := ms.pat
	for {
		ms.step()
		if p >= len(pat) {
			return s
		}
		switch pat[p] {
		case '(':
			if p+1 < len(pat) && pat[p+1] == ')' {
				return ms.startCapture(s, p+2, capPosition)
			}
			return ms.startCapture(s, p+1, capUnfinished)
		case ')':
			return ms.endCapture(s, p+1)
		case '$':
			if p+1 == len(pat) {
				if s == len(ms.src) {
					return s
				}
				return -1
			}
		case patEsc:
			if p+1 < len(pat) {
				switch pat[p+1] {
				case 'b':
					s = ms.matchBalance(s, p+2)
					if s != -1 {
						p += 4
						continue
					}
					return -1
				case 'f':
					p += 2
					if p >= len(pat) || pat[p] != '[' {
						ms.fail("missing '[' after '%f' in pattern")
					}
					ep := ms.classEnd(p)
					var prev byte
					if s > 0 {
						prev = ms.src[s-1]
					}
					var cur byte
					if s < len(ms.src) {
						cur = ms.src[s]
					}
					if !ms.matchBracketClass(prev, p, ep-1) && ms.matchBracketClass(cur, p, ep-1) {
						p = ep
						continue
					}
					return -1
				case '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
					s = ms.matchCapture(s, pat[p+1])
					if s != -1 {
						p += 2
						continue
					}
					return -1
				}
			}
		}
		// default: a single-character class, maybe with a quantifier
		ep := ms.classEnd(p)
		if !ms.singleMatch(s, p, ep) {
			if ep < len(pat) && (pat[ep] == '*' || pat[ep] == '?' || pat[ep] == '-') {
				p = ep + 1 // accept empty
				continue
			}
			return -1
		}
		if ep < len(pat) {
			switch pat[ep] {
			case '?':
				if res := ms.match(s+1, ep+1); res != -1 {
					return res
				}
				p = ep + 1
				continue
			case '+':
				return ms.maxExpand(s+1, p, ep)
			case '*':
				return ms.maxExpand(s, p, ep)
			case '-':
				return ms.minExpand(s, p, ep)
			}
		}
		s++
		p = ep
	}
}

func (ms *matchState) maxExpand(s, p, ep int) int {
	i := 0
	for ms.singleMatch(s+i, p, ep) {
		ms.step()
		i++
	}
	for i >= 0 { // try with the longest run first
		if res := ms.match(s+i, ep+1); res != -1 {
			return res
		}
		i--
	}
	return -1
}

func (ms *matchState) minExpand(s, p, ep int) int {
	for {
		if res := ms.match(s, ep+1); res != -1 {
			return res
		}
		if !ms.singleMatch(s, p, ep) {
			return -1
		}
		s++
	}
}

func (ms *matchState) startCapture(s, p, what int) int {
	if ms.level >= maxCaptures {
		ms.fail("too many captures")
	}
	ms.capture[ms.level] = capture{init: s, len: what}
	ms.level++
	res := ms.match(s, p)
	if res == -1 {
		ms.level--
	}
	return res
}

func (ms *matchState) endCapture(s, p int) int {
	l := ms.captureToClose()
	ms.capture[l].len = s - ms.capture[l].init
	res := ms.match(s, p)
	if res == -1 {
		ms.capture[l].len = capUnfinished
	}
	return res
}

func (ms *matchState) captureToClose() int {
	for level := ms.level - 1; level >= 0; level-- {
		if ms.capture[level].len == capUnfinished {
			return level
		}
	}
	ms.fail("invalid pattern capture")
	return 0
}

func (ms *matchState) matchBalance(s, p int) int {
	if p+1 >= len(ms.pat) {
		ms.fail("malformed pattern (missing arguments to '%b')")
	}
	if s >= len(ms.src) || ms.src[s] != ms.pat[p] {
		return -1
	}
	b, e := ms.pat[p], ms.pat[p+1]
	cont := 1
	for i := s + 1; i < len(ms.src); i++ {
		ms.step()
		switch ms.src[i] {
		case e:
			if cont--; cont == 0 {
				return i + 1
			}
		case b:
			cont++
		}
	}
	return -1
}

func (ms *matchState) matchCapture(s int, c byte) int {
	l := int(c - '1')
	if l < 0 || l >= ms.level || ms.capture[l].len == capUnfinished {
		ms.fail("invalid capture index %" + strconv.Itoa(l+1))
	}
	cp := ms.capture[l]
	if cp.len < 0 { // a position capture matches nothing
		return -1
	}
	if len(ms.src)-s >= cp.len && ms.src[cp.init:cp.init+cp.len] == ms.src[s:s+cp.len] {
		return s + cp.len
	}
	return -1
}

// captureValue returns capture i (0-based) as a string or a position;
// whole is the match when there are no explicit captures.
func (ms *matchState) captureValue(i, s, e int) (str string, pos int, isPos bool) {
	if i >= ms.level {
		if i != 0 {
			ms.fail("invalid capture index %" + strconv.Itoa(i+1))
		}
		return ms.src[s:e], 0, false
	}
	c := ms.capture[i]
	if c.len == capUnfinished {
		ms.fail("unfinished capture")
	}
	if c.len == capPosition {
		return "", c.init + 1, true
	}
	return ms.src[c.init : c.init+c.len], 0, false
}

func (ms *matchState) pushCapture(l *lua.State, i, s, e int) {
	str, pos, isPos := ms.captureValue(i, s, e)
	if isPos {
		l.PushInteger(pos)
	} else {
		ms.s.pushPiece(l, str, len(ms.src), "a pattern capture")
	}
}

// pushCaptures pushes all captures (or the whole match) and returns their count.
func (ms *matchState) pushCaptures(l *lua.State, s, e int, wholeIfNone bool) int {
	n := ms.level
	if n == 0 && wholeIfNone {
		n = 1
	}
	lua.CheckStackWithMessage(l, n, "too many captures")
	for i := 0; i < n; i++ {
		ms.pushCapture(l, i, s, e)
	}
	return n
}

// run calls f and converts the matcher's panics into Lua errors, charging
// the steps used to the sandbox.
func (s *Sandbox) runMatch(l *lua.State, ms *matchState, f func()) {
	budget := s.Remaining() * stepsPerInstruction
	ms.steps = budget
	ms.deadline = s.deadline
	var perr error
	func() {
		defer func() {
			if p := recover(); p != nil {
				switch p := p.(type) {
				case patternError:
					perr = p
				case error:
					if p == errSteps || p == errMatchDeadline {
						perr = p
						return
					}
					panic(p)
				default:
					panic(p)
				}
			}
		}()
		f()
	}()
	used := budget - ms.steps
	if used < 0 {
		used = budget
	}
	switch perr {
	case errSteps:
		s.Charge(l, s.Remaining()+1)
	case errMatchDeadline:
		s.trip(KindDeadline, fmt.Sprintf("deadline exceeded (%s)", s.cfg.Deadline))
	}
	if perr != nil {
		lua.Errorf(l, "%s", perr.Error())
	}
	// Steps are cheaper than instructions: carry the remainder over so
	// many tiny matches (a gsub over a long string) are still charged.
	s.matchSteps += used
	if s.matchSteps >= stepsPerInstruction {
		s.Charge(l, s.matchSteps/stepsPerInstruction)
		s.matchSteps %= stepsPerInstruction
	}
}

// newMatch returns the State's reusable match state (find, match and gsub
// finish before the next call; gmatch iterators keep their own).
func (s *Sandbox) newMatch(src, pat string) *matchState {
	if s.ms == nil {
		s.ms = &matchState{}
	}
	*s.ms = matchState{s: s, src: src, pat: pat}
	return s.ms
}

// stepsPerInstruction: a matcher step costs less than a VM instruction.
const stepsPerInstruction = 4

// posRelat converts a relative string position (negative counts from the end).
func posRelat(pos, n int) int {
	if pos >= 0 {
		return pos
	}
	if -pos > n {
		return 0
	}
	return n + pos + 1
}

func noSpecials(p string) bool { return !strings.ContainsAny(p, specials) }

func (s *Sandbox) strFindAux(l *lua.State, find bool) int {
	src := lua.CheckString(l, 1)
	pat := lua.CheckString(l, 2)
	init := posRelat(lua.OptInteger(l, 3, 1), len(src))
	if init < 1 {
		init = 1
	}
	if init > len(src)+1 {
		l.PushNil()
		return 1
	}
	if find && (l.ToBoolean(4) || noSpecials(pat)) {
		s.Charge(l, (len(src)-init+1)/64)
		if i := strings.Index(src[init-1:], pat); i >= 0 {
			l.PushInteger(init + i)
			l.PushInteger(init + i + len(pat) - 1)
			return 2
		}
		l.PushNil()
		return 1
	}
	ms := s.newMatch(src, pat)
	anchor := len(pat) > 0 && pat[0] == '^'
	p := 0
	if anchor {
		p = 1
	}
	sp := init - 1
	n := 0
	s.runMatch(l, ms, func() {
		for {
			ms.level = 0
			if e := ms.match(sp, p); e != -1 {
				if find {
					l.PushInteger(sp + 1)
					l.PushInteger(e)
					n = ms.pushCaptures(l, -1, -1, false) + 2
				} else {
					n = ms.pushCaptures(l, sp, e, true)
				}
				return
			}
			sp++
			if anchor || sp > len(src) {
				return
			}
		}
	})
	if n == 0 {
		l.PushNil()
		return 1
	}
	return n
}

func (s *Sandbox) strFind(l *lua.State) int  { return s.strFindAux(l, true) }
func (s *Sandbox) strMatch(l *lua.State) int { return s.strFindAux(l, false) }

func (s *Sandbox) strGmatch(l *lua.State) int {
	src := lua.CheckString(l, 1)
	pat := lua.CheckString(l, 2)
	pos := 0
	l.PushGoFunction(func(l *lua.State) int {
		ms := &matchState{s: s, src: src, pat: pat}
		n := 0
		s.runMatch(l, ms, func() {
			for ; pos <= len(src); pos++ {
				ms.level = 0
				if e := ms.match(pos, 0); e != -1 {
					start := pos
					if e == pos {
						pos = e + 1 // empty match: move on
					} else {
						pos = e
					}
					n = ms.pushCaptures(l, start, e, true)
					return
				}
			}
		})
		return n
	})
	return 1
}

func (s *Sandbox) strGsub(l *lua.State) int {
	src := lua.CheckString(l, 1)
	pat := lua.CheckString(l, 2)
	tr := l.TypeOf(3)
	lua.ArgumentCheck(l, tr == lua.TypeNumber || tr == lua.TypeString || tr == lua.TypeFunction || tr == lua.TypeTable, 3,
		"string/function/table expected")
	maxN := lua.OptInteger(l, 4, len(src)+1)
	anchor := len(pat) > 0 && pat[0] == '^'
	p := 0
	if anchor {
		p = 1
	}
	var repl string
	if tr == lua.TypeString || tr == lua.TypeNumber {
		repl = numberOrString(l, 3)
	}
	ms := s.newMatch(src, pat)
	var b strings.Builder
	sp, n := 0, 0
	g := growth{what: "string.gsub"}
	grow := func(add int) { g.need(s, l, b.Len()+add) }
	for n < maxN {
		ms.level = 0
		e := -1
		s.runMatch(l, ms, func() { e = ms.match(sp, p) })
		if e != -1 {
			n++
			// add the replacement for src[sp:e]
			switch tr {
			case lua.TypeString, lua.TypeNumber:
				var out strings.Builder
				s.runMatch(l, ms, func() {
					for i := 0; i < len(repl); i++ {
						c := repl[i]
						if c != patEsc {
							out.WriteByte(c)
							continue
						}
						i++
						if i >= len(repl) {
							ms.fail("invalid use of '%' in replacement string")
						}
						c = repl[i]
						switch {
						case c == patEsc:
							out.WriteByte(c)
						case c == '0':
							out.WriteString(src[sp:e])
						case isDigit(c):
							str, pos, isPos := ms.captureValue(int(c-'1'), sp, e)
							if isPos {
								out.WriteString(strconv.Itoa(pos))
							} else {
								out.WriteString(str)
							}
						default:
							ms.fail("invalid use of '%' in replacement string")
						}
						if out.Len() > s.cfg.StringLimit {
							break
						}
					}
				})
				grow(out.Len())
				b.WriteString(out.String())
			default:
				s.runMatch(l, ms, func() { ms.pushCapture(l, 0, sp, e) })
				if tr == lua.TypeFunction {
					l.PushValue(3)
					l.Insert(-2)
					k := 0
					s.runMatch(l, ms, func() {
						for i := 1; i < ms.level; i++ {
							ms.pushCapture(l, i, sp, e)
							k++
						}
					})
					l.Call(1+k, 1)
				} else {
					l.Table(3)
				}
				switch l.TypeOf(-1) {
				case lua.TypeNil:
					grow(e - sp)
					b.WriteString(src[sp:e])
				case lua.TypeBoolean:
					if l.ToBoolean(-1) {
						lua.Errorf(l, "invalid replacement value (a boolean)")
					}
					grow(e - sp)
					b.WriteString(src[sp:e])
				case lua.TypeString, lua.TypeNumber:
					v := numberOrString(l, -1)
					grow(len(v))
					b.WriteString(v)
				default:
					lua.Errorf(l, "invalid replacement value (a %s)", lua.TypeNameOf(l, -1))
				}
				l.Pop(1)
			}
		}
		switch {
		case e != -1 && e > sp:
			sp = e
		case sp < len(src):
			grow(1)
			b.WriteByte(src[sp])
			sp++
		default:
			sp = len(src) + 1
		}
		if sp > len(src) || anchor {
			break
		}
	}
	if sp <= len(src) {
		grow(len(src) - sp)
		b.WriteString(src[sp:])
	}
	l.PushString(b.String())
	l.PushInteger(n)
	return 2
}

func numberOrString(l *lua.State, idx int) string {
	if v, ok := l.ToValue(idx).(string); ok {
		return v
	}
	if l.TypeOf(idx) == lua.TypeNumber {
		return numberString(l, idx)
	}
	str, _ := l.ToString(idx)
	return str
}
