package matcher

import (
	"cmp"
	"regexp"
	"regexp/syntax"
	"strings"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/ternlog/tern/pipeline"
)

// The expression compiles to a decision graph: each instruction runs one
// test and names the instruction to run next for either outcome, or a
// verdict. && and || become edges, so Match is a flat loop with no recursion
// and no boolean nodes, and TRUE/FALSE constants fold away.
const (
	verdictFalse int32 = -1
	verdictTrue  int32 = -2
)

// reMode picks a cheaper test for regexes that are only an anchored literal.
type reMode uint8

const (
	reFull reMode = iota
	rePrefix
	reSuffix
	reEqual
	reContains
)

// pred is one compiled test.
type pred func(*pipeline.Message) bool

type inst struct {
	test    pred
	ifTrue  int32
	ifFalse int32
	src     *test // what the test was compiled from, for tracing in tests
}

func (m *Matcher) build(n *node, onTrue, onFalse int32) int32 {
	switch n.kind {
	case nTrue:
		return onTrue
	case nFalse:
		return onFalse
	case nAnd:
		next := onTrue
		for i := len(n.kids) - 1; i >= 0; i-- {
			next = m.build(n.kids[i], next, onFalse)
		}
		return next
	case nOr:
		next := onFalse
		for i := len(n.kids) - 1; i >= 0; i-- {
			next = m.build(n.kids[i], onTrue, next)
		}
		return next
	}
	if onTrue == onFalse {
		return onTrue // the outcome does not matter, so skip the test
	}
	p, konst, val := compileTest(n.test)
	if konst {
		if val {
			return onTrue
		}
		return onFalse
	}
	m.prog = append(m.prog, inst{test: p, ifTrue: onTrue, ifFalse: onFalse, src: n.test})
	return int32(len(m.prog) - 1)
}

// layout reverses the program. build emits an instruction after both its
// successors, so reversed, every jump goes forward and the entry comes first.
func (m *Matcher) layout() {
	n := int32(len(m.prog))
	re := func(pc int32) int32 {
		if pc < 0 {
			return pc
		}
		return n - 1 - pc
	}
	for i, j := 0, len(m.prog)-1; i < j; i, j = i+1, j-1 {
		m.prog[i], m.prog[j] = m.prog[j], m.prog[i]
	}
	for i := range m.prog {
		m.prog[i].ifTrue, m.prog[i].ifFalse = re(m.prog[i].ifTrue), re(m.prog[i].ifFalse)
	}
	m.entry = re(m.entry)
}

// compileTest turns a parsed test into a closure specialised for its
// variable, operator and literal, or reports that its outcome is known
// without looking at a message. Closures measured faster than a switch over
// instruction kinds, which pays for several dispatches per test.
func compileTest(t *test) (p pred, konst, val bool) {
	switch {
	case t.hdr == hField:
		return fieldTest(t), false, false
	case t.hdr == hUuid:
		return uuidTest(t)
	case t.hdr.numeric() && t.isInt:
		return intHeaderTest(t.hdr, t.op, t.i), false, false
	case t.hdr.numeric():
		get, op, f := intHeaders[t.hdr], t.op, t.f
		return func(m *pipeline.Message) bool { return compare(op, float64(get(m)), f) }, false, false
	case t.lit == lString && t.op == opEq:
		return strHeaderEq(t.hdr, t.s), false, false
	}
	get, sm := stringHeaders[t.hdr], strMatcher(t)
	return func(m *pipeline.Message) bool { return sm(get(m)) }, false, false
}

// strHeaderEq and intHeaderTest spell out the most common tests per header:
// reading the header directly instead of through a getter saves a call.
func strHeaderEq(h header, s string) pred {
	switch h {
	case hType:
		return func(m *pipeline.Message) bool { return m.Type == s }
	case hLogger:
		return func(m *pipeline.Message) bool { return m.Logger == s }
	case hPayload:
		return func(m *pipeline.Message) bool { return m.Payload == s }
	case hEnvVersion:
		return func(m *pipeline.Message) bool { return m.EnvVersion == s }
	}
	return func(m *pipeline.Message) bool { return m.Hostname == s }
}

func intHeaderTest(h header, op op, i int64) pred {
	switch h {
	case hTimestamp:
		return func(m *pipeline.Message) bool { return compare(op, m.Timestamp, i) }
	case hSeverity:
		return func(m *pipeline.Message) bool { return compare(op, int64(m.Severity), i) }
	}
	return func(m *pipeline.Message) bool { return compare(op, int64(m.Pid), i) }
}

var stringHeaders = [...]func(*pipeline.Message) string{
	hType:       func(m *pipeline.Message) string { return m.Type },
	hLogger:     func(m *pipeline.Message) string { return m.Logger },
	hPayload:    func(m *pipeline.Message) string { return m.Payload },
	hEnvVersion: func(m *pipeline.Message) string { return m.EnvVersion },
	hHostname:   func(m *pipeline.Message) string { return m.Hostname },
}

var intHeaders = [...]func(*pipeline.Message) int64{
	hTimestamp: func(m *pipeline.Message) int64 { return m.Timestamp },
	hSeverity:  func(m *pipeline.Message) int64 { return int64(m.Severity) },
	hPid:       func(m *pipeline.Message) int64 { return int64(m.Pid) },
}

// strMatcher compiles a string or regex comparison.
func strMatcher(t *test) func(string) bool {
	s, op := t.s, t.op
	if t.lit == lRegex {
		neg := op == opNoMatch
		mode, lit := regexMode(t.re)
		switch mode {
		case rePrefix:
			return func(v string) bool { return strings.HasPrefix(v, lit) != neg }
		case reSuffix:
			return func(v string) bool { return strings.HasSuffix(v, lit) != neg }
		case reEqual:
			return func(v string) bool { return (v == lit) != neg }
		case reContains:
			return func(v string) bool { return strings.Contains(v, lit) != neg }
		}
		re := t.re
		return func(v string) bool { return re.MatchString(v) != neg }
	}
	switch op {
	case opEq:
		return func(v string) bool { return v == s }
	case opNe:
		return func(v string) bool { return v != s }
	}
	return func(v string) bool { return compare(op, v, s) }
}

// uuidTest compares the dashed lower-case text of the UUID.
func uuidTest(t *test) (p pred, konst, val bool) {
	if t.lit == lString && (t.op == opEq || t.op == opNe) {
		// Compare bytes, not text. A literal that is not the
		// lower-case dashed form can never be equal.
		u, ok := pipeline.ParseUUID(t.s)
		if !ok || strings.ToLower(t.s) != t.s {
			return nil, true, t.op == opNe
		}
		eq := t.op == opEq
		return func(m *pipeline.Message) bool { return (m.UUID == u) == eq }, false, false
	}
	sm := strMatcher(t)
	return func(m *pipeline.Message) bool {
		buf := uuidBufs.Get().(*[36]byte)
		formatUUID(buf, &m.UUID)
		ok := sm(unsafe.String(&buf[0], len(buf)))
		uuidBufs.Put(buf)
		return ok
	}, false, false
}

// fieldTest compiles a Fields[name][fi][ai] test. A missing field or value
// (an unset vector slot included) satisfies only == NIL, and a value of the
// wrong type satisfies nothing.
func fieldTest(t *test) pred {
	name, fi, ai, op := t.name, t.fi, t.ai, t.op
	switch t.lit {
	case lNil:
		missing := op == opEq
		return func(m *pipeline.Message) bool {
			return !present(m.Field(name, fi), ai) == missing
		}
	case lBool:
		b, eq := t.b, op == opEq
		return func(m *pipeline.Message) bool {
			f := m.Field(name, fi)
			return present(f, ai) && f.Type == pipeline.TypeBool && (f.Value(ai).Bool() == b) == eq
		}
	case lNumber:
		i, x, isInt, u, isU := t.i, t.f, t.isInt, t.u, t.isU
		return func(m *pipeline.Message) bool {
			f := m.Field(name, fi)
			if !present(f, ai) {
				return false
			}
			switch {
			case f.Type == pipeline.TypeInteger && isInt:
				return compare(op, f.Value(ai).Int(), i)
			case f.Type == pipeline.TypeInteger && isU:
				return op == opNe || op == opLt || op == opLe // every int64 is below u
			case f.Type == pipeline.TypeInteger:
				return compare(op, float64(f.Value(ai).Int()), x)
			case f.Type == pipeline.TypeUnsigned && isInt:
				return compareUint(op, f.Value(ai).Uint(), i)
			case f.Type == pipeline.TypeUnsigned && isU:
				return compare(op, f.Value(ai).Uint(), u)
			case f.Type == pipeline.TypeUnsigned:
				return compare(op, float64(f.Value(ai).Uint()), x)
			case f.Type == pipeline.TypeDouble:
				return compare(op, f.Value(ai).Double(), x)
			}
			return false
		}
	}
	if s := t.s; t.lit == lString && op == opEq {
		return func(m *pipeline.Message) bool {
			f := m.Field(name, fi)
			return present(f, ai) && isText(f.Type) && f.Value(ai).Str() == s
		}
	}
	sm := strMatcher(t)
	return func(m *pipeline.Message) bool {
		f := m.Field(name, fi)
		return present(f, ai) && isText(f.Type) && sm(f.Value(ai).Str())
	}
}

// present reports whether f has a value at ai that is not the unset value.
func present(f *pipeline.Field, ai int) bool {
	return f != nil && ai < f.Len() && !f.Unset(ai)
}

// compareUint compares an unsigned value with an integer literal exactly:
// a negative literal is below every unsigned value.
func compareUint(o op, u uint64, i int64) bool {
	if i < 0 {
		return o == opNe || o == opGt || o == opGe
	}
	return compare(o, u, uint64(i))
}

func isText(t pipeline.ValueType) bool { return t == pipeline.TypeString || t == pipeline.TypeBytes }

// regexMode recognises /literal/, /^literal/, /literal$/ and /^literal$/,
// which a substring test answers faster than the regex engine.
func regexMode(re *regexp.Regexp) (reMode, string) {
	r, err := syntax.Parse(re.String(), syntax.Perl)
	if err != nil {
		return reFull, ""
	}
	r = r.Simplify()
	subs := []*syntax.Regexp{r}
	if r.Op == syntax.OpConcat {
		subs = r.Sub
	}
	begin := len(subs) > 0 && subs[0].Op == syntax.OpBeginText
	if begin {
		subs = subs[1:]
	}
	end := len(subs) > 0 && subs[len(subs)-1].Op == syntax.OpEndText
	if end {
		subs = subs[:len(subs)-1]
	}
	var lit string
	switch {
	case len(subs) == 0 || len(subs) == 1 && subs[0].Op == syntax.OpEmptyMatch:
	case len(subs) == 1 && subs[0].Op == syntax.OpLiteral && subs[0].Flags&syntax.FoldCase == 0:
		for _, c := range subs[0].Rune {
			// The regex engine reads an invalid byte as U+FFFD; a
			// byte comparison would not, so leave those to it.
			if c == utf8.RuneError || !utf8.ValidRune(c) {
				return reFull, ""
			}
		}
		lit = string(subs[0].Rune)
	default:
		return reFull, ""
	}
	switch {
	case begin && end:
		return reEqual, lit
	case begin:
		return rePrefix, lit
	case end:
		return reSuffix, lit
	}
	return reContains, lit
}

// Match reports whether msg satisfies the expression. It does not allocate.
func (m *Matcher) Match(msg *pipeline.Message) bool {
	pc := m.entry
	for pc >= 0 {
		in := &m.prog[pc]
		if in.test(msg) {
			pc = in.ifTrue
		} else {
			pc = in.ifFalse
		}
	}
	return pc == verdictTrue
}

// compare applies the relational operator o to a and b (for floats, with
// Go's semantics: every comparison with NaN is false but !=).
func compare[T cmp.Ordered](o op, a, b T) bool {
	switch o {
	case opEq:
		return a == b
	case opNe:
		return a != b
	case opLt:
		return a < b
	case opLe:
		return a <= b
	case opGt:
		return a > b
	case opGe:
		return a >= b
	}
	return false
}

// uuidBufs holds scratch space for the text form of a UUID; the regex engine
// keeps its input reachable, so a stack buffer would escape and allocate.
var uuidBufs = sync.Pool{New: func() any { return new([36]byte) }}

func formatUUID(dst *[36]byte, u *[16]byte) {
	const hex = "0123456789abcdef"
	j := 0
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst[j] = '-'
			j++
		}
		dst[j], dst[j+1] = hex[c>>4], hex[c&0xf]
		j += 2
	}
}
