package matcher

import (
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

type instKind uint8

const (
	kStr        instKind = iota // string header vs string
	kStrRe                      // string header vs regex
	kInt                        // numeric header vs integer literal, exact
	kFloat                      // numeric header vs float literal
	kUuidEq                     // Uuid == or != a well-formed lower-case UUID
	kUuid                       // Uuid vs string, other operators
	kUuidRe                     // Uuid vs regex
	kFieldStr                   // field vs string
	kFieldInt                   // field vs integer literal
	kFieldFloat                 // field vs float literal
	kFieldRe                    // field vs regex
	kFieldBool                  // field vs TRUE/FALSE
	kFieldNil                   // field vs NIL
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

type inst struct {
	kind    instKind
	hdr     header
	op      op
	mode    reMode
	neg     bool // !~
	b       bool
	ifTrue  int32
	ifFalse int32
	fi      int
	ai      int
	name    string
	s       string
	i       int64
	f       float64
	re      *regexp.Regexp
	uuid    [16]byte
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
	in, konst, val := compileTest(n.test)
	if konst {
		if val {
			return onTrue
		}
		return onFalse
	}
	in.ifTrue, in.ifFalse = onTrue, onFalse
	m.prog = append(m.prog, in)
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

// compileTest turns a parsed test into an instruction, or reports that its
// outcome is known without looking at a message.
func compileTest(t *test) (in inst, konst, val bool) {
	in = inst{hdr: t.hdr, op: t.op, name: t.name, fi: t.fi, ai: t.ai, s: t.s, i: t.i, f: t.f, b: t.b}
	if t.lit == lRegex {
		in.neg = t.op == opNoMatch
		in.mode, in.s = regexMode(t.re)
		if in.mode == reFull {
			in.re = t.re
		}
	}
	switch {
	case t.hdr == hField:
		switch t.lit {
		case lString:
			in.kind = kFieldStr
		case lNumber:
			in.kind = kFieldFloat
			if t.isInt {
				in.kind = kFieldInt
			}
		case lRegex:
			in.kind = kFieldRe
		case lBool:
			in.kind = kFieldBool
		case lNil:
			in.kind = kFieldNil
		}
	case t.hdr == hUuid:
		switch {
		case t.lit == lRegex:
			in.kind = kUuidRe
		case t.op == opEq || t.op == opNe:
			// Uuid reads as the lower-case dashed form, so any other
			// literal can never be equal.
			u, ok := pipeline.ParseUUID(t.s)
			if !ok || strings.ToLower(t.s) != t.s {
				return in, true, t.op == opNe
			}
			in.kind, in.uuid = kUuidEq, u
		default:
			in.kind = kUuid
		}
	case t.hdr.numeric():
		in.kind = kFloat
		if t.isInt {
			in.kind = kInt
		}
	case t.lit == lRegex:
		in.kind = kStrRe
	default:
		in.kind = kStr
	}
	return in, false, false
}

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
		if in.eval(msg) {
			pc = in.ifTrue
		} else {
			pc = in.ifFalse
		}
	}
	return pc == verdictTrue
}

func (in *inst) eval(m *pipeline.Message) bool {
	switch in.kind {
	case kStr:
		return cmpStr(in.op, strHeader(m, in.hdr), in.s)
	case kStrRe:
		return in.match(strHeader(m, in.hdr))
	case kInt:
		return cmpInt(in.op, intHeader(m, in.hdr), in.i)
	case kFloat:
		return cmpFloat(in.op, float64(intHeader(m, in.hdr)), in.f)
	case kUuidEq:
		return (m.UUID == in.uuid) == (in.op == opEq)
	case kUuid, kUuidRe:
		buf := uuidBufs.Get().(*[36]byte)
		formatUUID(buf, &m.UUID)
		s := unsafe.String(&buf[0], len(buf))
		var ok bool
		if in.kind == kUuid {
			ok = cmpStr(in.op, s, in.s)
		} else {
			ok = in.match(s)
		}
		uuidBufs.Put(buf)
		return ok
	}
	// A field test. A missing field or value satisfies only == NIL.
	f := m.Field(in.name, in.fi)
	if f == nil || in.ai >= f.Len() {
		return in.kind == kFieldNil && in.op == opEq
	}
	v := f.Value(in.ai)
	switch in.kind {
	case kFieldNil:
		return in.op == opNe
	case kFieldStr:
		return (f.Type == pipeline.TypeString || f.Type == pipeline.TypeBytes) && cmpStr(in.op, v.Str(), in.s)
	case kFieldRe:
		return (f.Type == pipeline.TypeString || f.Type == pipeline.TypeBytes) && in.match(v.Str())
	case kFieldInt:
		switch f.Type {
		case pipeline.TypeInteger:
			return cmpInt(in.op, v.Int(), in.i)
		case pipeline.TypeDouble:
			return cmpFloat(in.op, v.Double(), in.f)
		}
	case kFieldFloat:
		switch f.Type {
		case pipeline.TypeInteger:
			return cmpFloat(in.op, float64(v.Int()), in.f)
		case pipeline.TypeDouble:
			return cmpFloat(in.op, v.Double(), in.f)
		}
	case kFieldBool:
		return f.Type == pipeline.TypeBool && (v.Bool() == in.b) == (in.op == opEq)
	}
	return false
}

func (in *inst) match(s string) bool {
	var ok bool
	switch in.mode {
	case reFull:
		ok = in.re.MatchString(s)
	case rePrefix:
		ok = strings.HasPrefix(s, in.s)
	case reSuffix:
		ok = strings.HasSuffix(s, in.s)
	case reEqual:
		ok = s == in.s
	case reContains:
		ok = strings.Contains(s, in.s)
	}
	return ok != in.neg
}

func strHeader(m *pipeline.Message, h header) string {
	switch h {
	case hType:
		return m.Type
	case hLogger:
		return m.Logger
	case hPayload:
		return m.Payload
	case hEnvVersion:
		return m.EnvVersion
	case hHostname:
		return m.Hostname
	}
	return ""
}

func intHeader(m *pipeline.Message, h header) int64 {
	switch h {
	case hTimestamp:
		return m.Timestamp
	case hSeverity:
		return int64(m.Severity)
	case hPid:
		return int64(m.Pid)
	}
	return 0
}

func cmpStr(o op, a, b string) bool {
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

func cmpInt(o op, a, b int64) bool {
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

func cmpFloat(o op, a, b float64) bool {
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
