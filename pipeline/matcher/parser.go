package matcher

import (
	"math"
	"regexp"
	"regexp/syntax"
	"strconv"
	"strings"
	"time"
)

type nodeKind uint8

const (
	nAnd nodeKind = iota
	nOr
	nTrue
	nFalse
	nTest
)

// node is the parsed expression, kept for String. And and Or chains are
// flattened, so (a && b) && c and a && b && c print the same.
type node struct {
	kind nodeKind
	kids []*node
	test *test
}

type op uint8

const (
	opEq op = iota
	opNe
	opLt
	opLe
	opGt
	opGe
	opMatch
	opNoMatch
)

var opNames = [...]string{"==", "!=", "<", "<=", ">", ">=", "=~", "!~"}

type litKind uint8

const (
	lString litKind = iota
	lNumber
	lRegex
	lBool
	lNil
	lTime // an RFC 3339 string compared with Timestamp, held as ns in i
)

// test is one comparison: variable, operator, literal.
type test struct {
	hdr   header
	name  string // field name when hdr == hField
	fi    int
	ai    int
	op    op
	lit   litKind
	s     string // string value or regex source
	isInt bool
	i     int64
	isU   bool // above int64, exact in u
	u     uint64
	f     float64
	b     bool
	re    *regexp.Regexp
}

// maxDepth bounds parenthesis nesting so a hostile expression cannot exhaust
// the stack of the recursive parser.
const maxDepth = 200

type parser struct {
	lx    lexer
	tok   token
	depth int
}

func parse(src string) (*node, error) {
	p := &parser{lx: lexer{src: src}}
	if err := p.advance(); err != nil {
		return nil, err
	}
	n, err := p.or()
	if err != nil {
		return nil, err
	}
	switch p.tok.kind {
	case tEOF:
		return n, nil
	case tRParen:
		return nil, p.errf("unbalanced )")
	case tVar, tField, tTrue, tFalse, tLParen:
		return nil, p.errf("expected && or || before %s", p.tok)
	}
	return nil, p.errf("expected && or || or the end of the expression, found %s", p.tok)
}

func (p *parser) advance() error {
	t, err := p.lx.next()
	if err != nil {
		return err
	}
	p.tok = t
	return nil
}

func (p *parser) errf(format string, args ...any) error {
	return errAt(p.lx.src, p.tok.pos, format, args...)
}

func (p *parser) or() (*node, error) {
	return p.chain(nOr, tOr, (*parser).and)
}

func (p *parser) and() (*node, error) {
	return p.chain(nAnd, tAnd, (*parser).primary)
}

// chain parses operand { sep operand } into one flattened node of kind k.
func (p *parser) chain(k nodeKind, sep tokKind, operand func(*parser) (*node, error)) (*node, error) {
	first, err := operand(p)
	if err != nil || p.tok.kind != sep {
		return first, err
	}
	n := &node{kind: k}
	add := func(c *node) {
		if c.kind == k {
			n.kids = append(n.kids, c.kids...)
		} else {
			n.kids = append(n.kids, c)
		}
	}
	add(first)
	for p.tok.kind == sep {
		if err := p.advance(); err != nil {
			return nil, err
		}
		c, err := operand(p)
		if err != nil {
			return nil, err
		}
		add(c)
	}
	return n, nil
}

func (p *parser) primary() (*node, error) {
	switch p.tok.kind {
	case tLParen:
		open := p.tok.pos
		if p.depth++; p.depth > maxDepth {
			return nil, p.errf("parentheses nested more than %d deep", maxDepth)
		}
		if err := p.advance(); err != nil {
			return nil, err
		}
		n, err := p.or()
		if err != nil {
			return nil, err
		}
		if p.tok.kind != tRParen {
			return nil, p.errf("expected ) to close the ( at position %d, found %s", open, p.tok)
		}
		p.depth--
		return n, p.advance()
	case tTrue, tFalse:
		k := nTrue
		if p.tok.kind == tFalse {
			k = nFalse
		}
		return &node{kind: k}, p.advance()
	case tVar, tField:
		t, err := p.test()
		if err != nil {
			return nil, err
		}
		return &node{kind: nTest, test: t}, nil
	case tString, tNumber, tRegex, tNil:
		return nil, p.errf("a comparison starts with a variable (Type, Severity, Fields[name], ...), not %s; put the literal on the right", p.tok)
	case tEOF:
		return nil, p.errf("unexpected end of input, expected a comparison, TRUE, FALSE or (")
	}
	return nil, p.errf("expected a comparison, TRUE, FALSE or (, found %s", p.tok)
}

var tokOps = map[tokKind]op{tEq: opEq, tNe: opNe, tLt: opLt, tLe: opLe, tGt: opGt, tGe: opGe, tMatch: opMatch, tNoMatch: opNoMatch}

// test parses variable, operator and literal, and checks at parse time that
// they fit together. Header types are fixed, so a mismatch there is an error;
// a field's type is known only per message, so there a mismatch is false.
func (p *parser) test() (*test, error) {
	v := p.tok
	t := &test{hdr: v.hdr, name: v.str, fi: v.fi, ai: v.ai}
	if err := p.advance(); err != nil {
		return nil, err
	}
	o, ok := tokOps[p.tok.kind]
	if !ok {
		return nil, p.errf("expected an operator (== != < <= > >= =~ !~) after %s, found %s", v, p.tok)
	}
	t.op = o
	if err := p.advance(); err != nil {
		return nil, err
	}
	l := p.tok
	regexOp := o == opMatch || o == opNoMatch
	switch {
	case regexOp && l.kind != tRegex:
		return nil, p.errf("expected a regex after %s, found %s", opNames[o], l)
	case !regexOp && l.kind == tRegex:
		return nil, p.errf("a regex needs =~ or !~, not %s", opNames[o])
	}
	switch l.kind {
	case tString:
		t.lit, t.s = lString, l.str
		switch {
		case v.hdr == hTimestamp:
			ts, err := time.Parse(time.RFC3339Nano, l.str)
			if err != nil {
				return nil, p.errf("Timestamp compares with a number of nanoseconds or an RFC 3339 time such as '2026-11-22T00:00:00Z'")
			}
			if ts.Before(minTime) || ts.After(maxTime) {
				return nil, p.errf("time %s is out of range (years 1678 to 2262 fit in int64 nanoseconds)", l.str)
			}
			t.lit, t.i, t.isInt = lTime, ts.UnixNano(), true
		case v.hdr.numeric():
			return nil, p.errf("%s is a number; compare it with a number", v)
		}
	case tNumber:
		if v.hdr != hField && !v.hdr.numeric() {
			return nil, p.errf("%s is a string; compare it with a string or regex", v)
		}
		t.lit, t.isInt, t.i, t.isU, t.u, t.f = lNumber, l.isInt, l.i, l.isU, l.u, l.f
	case tRegex:
		if v.hdr.numeric() {
			return nil, p.errf("%s is a number; a regex cannot match it", v)
		}
		re, err := regexp.Compile(l.str)
		if err != nil {
			msg := err.Error()
			if se, ok := err.(*syntax.Error); ok {
				msg = se.Code.String() + ": `" + se.Expr + "`"
			}
			return nil, p.errf("invalid regex: %s", msg)
		}
		t.lit, t.s, t.re = lRegex, l.str, re
	case tTrue, tFalse, tNil:
		if v.hdr != hField {
			return nil, p.errf("%s works only with Fields[...]", l)
		}
		if o != opEq && o != opNe {
			return nil, p.errf("%s works only with == and !=", l)
		}
		t.lit, t.b = lBool, l.kind == tTrue
		if l.kind == tNil {
			t.lit = lNil
		}
	case tEOF:
		return nil, p.errf("unexpected end of input, expected a value after %s", opNames[o])
	default:
		return nil, p.errf("expected a value after %s, found %s", opNames[o], l)
	}
	return t, p.advance()
}

// The range of time.Time that int64 nanoseconds since the epoch can hold.
var (
	minTime = time.Unix(0, math.MinInt64).UTC()
	maxTime = time.Unix(0, math.MaxInt64).UTC()
)

func (n *node) write(b *strings.Builder) {
	switch n.kind {
	case nTrue:
		b.WriteString("TRUE")
	case nFalse:
		b.WriteString("FALSE")
	case nTest:
		n.test.write(b)
	case nAnd, nOr:
		sep := " && "
		if n.kind == nOr {
			sep = " || "
		}
		for i, c := range n.kids {
			if i > 0 {
				b.WriteString(sep)
			}
			paren := n.kind == nAnd && c.kind == nOr
			if paren {
				b.WriteByte('(')
			}
			c.write(b)
			if paren {
				b.WriteByte(')')
			}
		}
	}
}

func (t *test) write(b *strings.Builder) {
	b.WriteString(headerNames[t.hdr])
	if t.hdr == hField {
		b.WriteString("[" + t.name + "]")
		if t.fi != 0 || t.ai != 0 {
			b.WriteString("[" + strconv.Itoa(t.fi) + "]")
		}
		if t.ai != 0 {
			b.WriteString("[" + strconv.Itoa(t.ai) + "]")
		}
	}
	b.WriteString(" " + opNames[t.op] + " ")
	switch t.lit {
	case lString:
		b.WriteString(quote(t.s))
	case lTime:
		b.WriteString(quote(time.Unix(0, t.i).UTC().Format(time.RFC3339Nano)))
	case lRegex:
		s, _ := escape(t.s, '/')
		b.WriteString(s)
	case lNumber:
		if t.isInt {
			b.WriteString(strconv.FormatInt(t.i, 10))
			break
		}
		if t.isU {
			b.WriteString(strconv.FormatUint(t.u, 10))
			break
		}
		s := strconv.FormatFloat(t.f, 'g', -1, 64)
		if !strings.ContainsAny(s, ".e") {
			s += ".0" // keep it a float literal: integers compare differently
		}
		b.WriteString(s)
	case lBool:
		if t.b {
			b.WriteString("TRUE")
		} else {
			b.WriteString("FALSE")
		}
	case lNil:
		b.WriteString("NIL")
	}
}

// quote writes s as a string literal the lexer reads back as s, in single
// quotes unless double quotes need fewer escapes. Every string the lexer
// produces fits at least one of the two.
func quote(s string) string {
	sq, sok := escape(s, '\'')
	dq, dok := escape(s, '"')
	if !sok || dok && len(dq) < len(sq) {
		return dq
	}
	return sq
}

// escape delimits s with q, escaping each q. It fails when s holds a
// backslash the lexer could not have produced inside q: a lone trailing one,
// or one directly before q.
func escape(s string, q byte) (string, bool) {
	b := make([]byte, 0, len(s)+2)
	b = append(b, q)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 >= len(s) || s[i+1] == q {
				return "", false
			}
			b = append(b, c, s[i+1])
			i++
		case q:
			b = append(b, '\\', q)
		default:
			b = append(b, c)
		}
	}
	return string(append(b, q)), true
}
