package matcher

import (
	"fmt"
	"strings"
)

// Matcher is a compiled message_matcher expression. It is immutable and safe
// for concurrent use.
type Matcher struct {
	root  *node  // the parsed expression, for String
	prog  []inst // the tests, wired into a decision graph
	entry int32  // first instruction, or a verdict when no test is needed
}

// SyntaxError reports why an expression does not compile.
type SyntaxError struct {
	Pos  int    // 0-based byte offset into the expression
	Msg  string // what is wrong, without the position
	near string // the input from Pos on, shortened
}

func (e *SyntaxError) Error() string {
	if e.near == "" {
		return fmt.Sprintf("syntax error at position %d: %s (at end of input)", e.Pos, e.Msg)
	}
	return fmt.Sprintf("syntax error at position %d: %s (near %q)", e.Pos, e.Msg, e.near)
}

func errAt(src string, pos int, format string, args ...any) *SyntaxError {
	near := src[min(pos, len(src)):]
	if len(near) > 20 {
		near = near[:20] + "..."
	}
	return &SyntaxError{Pos: pos, Msg: fmt.Sprintf(format, args...), near: near}
}

// Compile parses expr and prepares it for matching. Errors are *SyntaxError.
func Compile(expr string) (*Matcher, error) {
	root, err := parse(expr)
	if err != nil {
		return nil, err
	}
	m := &Matcher{root: root}
	m.entry = m.build(root, verdictTrue, verdictFalse)
	m.layout()
	return m, nil
}

// MustCompile is Compile for expressions known to be valid; it panics otherwise.
func MustCompile(expr string) *Matcher {
	m, err := Compile(expr)
	if err != nil {
		panic("matcher: " + err.Error())
	}
	return m
}

// String returns the expression in canonical form: single spaces, no
// redundant parentheses, minimal Fields indexes. It compiles to an
// equivalent matcher.
func (m *Matcher) String() string {
	var b strings.Builder
	m.root.write(&b)
	return b.String()
}
