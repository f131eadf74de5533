package matcher

import (
	"math"
	"strconv"
	"strings"
)

type tokKind uint8

const (
	tEOF tokKind = iota
	tLParen
	tRParen
	tAnd
	tOr
	tEq
	tNe
	tLt
	tLe
	tGt
	tGe
	tMatch
	tNoMatch
	tString
	tRegex
	tNumber
	tTrue
	tFalse
	tNil
	tVar   // a header variable; hdr says which
	tField // Fields[name][fi][ai]
)

var tokNames = [...]string{
	tEOF: "end of input", tLParen: "(", tRParen: ")", tAnd: "&&", tOr: "||",
	tEq: "==", tNe: "!=", tLt: "<", tLe: "<=", tGt: ">", tGe: ">=", tMatch: "=~", tNoMatch: "!~",
	tString: "a string", tRegex: "a regex", tNumber: "a number",
	tTrue: "TRUE", tFalse: "FALSE", tNil: "NIL", tVar: "a variable", tField: "Fields[...]",
}

// header names a message variable; hField stands for any Fields[...] reference.
type header uint8

const (
	hUuid header = iota
	hType
	hLogger
	hPayload
	hEnvVersion
	hHostname
	hTimestamp
	hSeverity
	hPid
	hField
)

var headerNames = [...]string{"Uuid", "Type", "Logger", "Payload", "EnvVersion", "Hostname", "Timestamp", "Severity", "Pid", "Fields"}

func (h header) numeric() bool { return h == hTimestamp || h == hSeverity || h == hPid }

type token struct {
	kind  tokKind
	pos   int
	str   string // string or regex body (unescaped), field name, raw number text
	hdr   header
	fi    int
	ai    int
	isInt bool // a number token that fits int64 exactly
	i     int64
	isU   bool   // a number token above int64 that fits uint64 exactly
	u     uint64 // its value
	f     float64
}

func (t token) String() string {
	switch t.kind {
	case tVar:
		return headerNames[t.hdr]
	case tField:
		return "Fields[" + t.str + "]"
	case tNumber:
		return t.str
	}
	return tokNames[t.kind]
}

type lexer struct {
	src string
	pos int
}

// maxIndex bounds field and array indexes; no message holds that many.
const maxIndex = math.MaxInt32

func (l *lexer) next() (token, error) {
	src := l.src
	for l.pos < len(src) {
		c := src[l.pos]
		if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
			break
		}
		l.pos++
	}
	start := l.pos
	if start >= len(src) {
		return token{kind: tEOF, pos: start}, nil
	}
	c := src[start]
	two := func(k tokKind) (token, error) {
		l.pos += 2
		return token{kind: k, pos: start}, nil
	}
	one := func(k tokKind) (token, error) {
		l.pos++
		return token{kind: k, pos: start}, nil
	}
	var c2 byte
	if start+1 < len(src) {
		c2 = src[start+1]
	}
	switch {
	case c == '(':
		return one(tLParen)
	case c == ')':
		return one(tRParen)
	case c == '&':
		if c2 == '&' {
			return two(tAnd)
		}
		return token{}, errAt(l.src, start, "expected && but found a single &")
	case c == '|':
		if c2 == '|' {
			return two(tOr)
		}
		return token{}, errAt(l.src, start, "expected || but found a single |")
	case c == '=':
		switch c2 {
		case '=':
			return two(tEq)
		case '~':
			return two(tMatch)
		}
		return token{}, errAt(l.src, start, "= is not an operator; use == or =~")
	case c == '!':
		switch c2 {
		case '=':
			return two(tNe)
		case '~':
			return two(tNoMatch)
		}
		return token{}, errAt(l.src, start, "! is not an operator; use != or !~")
	case c == '<':
		if c2 == '=' {
			return two(tLe)
		}
		return one(tLt)
	case c == '>':
		if c2 == '=' {
			return two(tGe)
		}
		return one(tGt)
	case c == '\'' || c == '"':
		s, ok := l.quoted(c)
		if !ok {
			return token{}, errAt(l.src, start, "unterminated string")
		}
		return token{kind: tString, pos: start, str: s}, nil
	case c == '/':
		s, ok := l.quoted(c)
		if !ok {
			return token{}, errAt(l.src, start, "unterminated regex (a / inside it is written \\/)")
		}
		return token{kind: tRegex, pos: start, str: s}, nil
	case isDigit(c) || c == '.' || c == '-' && (isDigit(c2) || c2 == '.'):
		return l.number()
	case isLetter(c):
		return l.ident()
	}
	return token{}, errAt(l.src, start, "unexpected character %q", rune(c))
}

// quoted reads a string or regex delimited by q, starting at the opening q.
// A backslash escapes only q itself; any other backslash pair is kept as
// written, so regex escapes like \d pass through to the regex compiler.
func (l *lexer) quoted(q byte) (string, bool) {
	src := l.src
	i := l.pos + 1
	seg := i
	var b []byte // used only when an escaped q must be dropped
	for i < len(src) {
		c := src[i]
		if c == '\\' && i+1 < len(src) {
			if src[i+1] == q {
				b = append(b, src[seg:i]...)
				seg = i + 1
			}
			i += 2
			continue
		}
		if c == q {
			l.pos = i + 1
			if b == nil {
				return src[seg:i], true
			}
			return string(append(b, src[seg:i]...)), true
		}
		i++
	}
	return "", false
}

func (l *lexer) number() (token, error) {
	src := l.src
	start := l.pos
	i := start + 1
	for i < len(src) && (isDigit(src[i]) || strings.IndexByte(".eE+-", src[i]) >= 0) {
		i++
	}
	l.pos = i
	text := src[start:i]
	t := token{kind: tNumber, pos: start, str: text}
	if n, err := strconv.ParseInt(text, 10, 64); err == nil {
		t.isInt, t.i, t.f = true, n, float64(n)
		return t, nil
	}
	if u, err := strconv.ParseUint(text, 10, 64); err == nil {
		t.isU, t.u, t.f = true, u, float64(u)
		return t, nil
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil {
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return token{}, errAt(src, start, "number %s is out of range", text)
		}
		return token{}, errAt(src, start, "invalid number %s", text)
	}
	t.f = f
	return t, nil
}

var keywords = map[string]token{
	"TRUE":       {kind: tTrue},
	"FALSE":      {kind: tFalse},
	"NIL":        {kind: tNil},
	"Uuid":       {kind: tVar, hdr: hUuid},
	"Type":       {kind: tVar, hdr: hType},
	"Logger":     {kind: tVar, hdr: hLogger},
	"Payload":    {kind: tVar, hdr: hPayload},
	"EnvVersion": {kind: tVar, hdr: hEnvVersion},
	"Hostname":   {kind: tVar, hdr: hHostname},
	"Timestamp":  {kind: tVar, hdr: hTimestamp},
	"Severity":   {kind: tVar, hdr: hSeverity},
	"Pid":        {kind: tVar, hdr: hPid},
}

func (l *lexer) ident() (token, error) {
	src := l.src
	start := l.pos
	i := start
	for i < len(src) && (isLetter(src[i]) || isDigit(src[i]) || src[i] == '_') {
		i++
	}
	l.pos = i
	word := src[start:i]
	if word == "Fields" {
		return l.fieldRef(start)
	}
	t, ok := keywords[word]
	if !ok {
		return token{}, errAt(src, start, "unknown identifier %s", word)
	}
	t.pos = start
	return t, nil
}

// fieldRef reads [name], then up to two [digits] groups, right after "Fields".
// Heka allows no space inside or between the groups, and neither do we.
func (l *lexer) fieldRef(start int) (token, error) {
	src := l.src
	if l.pos >= len(src) || src[l.pos] != '[' {
		return token{}, errAt(src, l.pos, "expected [ after Fields")
	}
	open := l.pos
	end := strings.IndexByte(src[open+1:], ']')
	if end < 0 {
		return token{}, errAt(src, open, "unterminated Fields[ (missing ])")
	}
	name := src[open+1 : open+1+end]
	if name == "" {
		return token{}, errAt(src, open+1, "empty field name")
	}
	l.pos = open + 1 + end + 1
	var idx [2]int
	for n := 0; l.pos < len(src) && src[l.pos] == '['; n++ {
		if n == len(idx) {
			return token{}, errAt(src, l.pos, "too many indexes; the form is Fields[name][field index][array index]")
		}
		i := l.pos + 1
		j := i
		for j < len(src) && isDigit(src[j]) {
			j++
		}
		if j >= len(src) {
			return token{}, errAt(src, l.pos, "unterminated index (missing ])")
		}
		if src[j] != ']' {
			return token{}, errAt(src, j, "an index must be a non-negative integer")
		}
		if j == i {
			return token{}, errAt(src, j, "empty index")
		}
		v, err := strconv.ParseUint(src[i:j], 10, 64)
		if err != nil || v > maxIndex {
			return token{}, errAt(src, i, "index %s is too large", src[i:j])
		}
		idx[n] = int(v)
		l.pos = j + 1
	}
	return token{kind: tField, pos: start, hdr: hField, str: name, fi: idx[0], ai: idx[1]}, nil
}

func isDigit(c byte) bool  { return '0' <= c && c <= '9' }
func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
