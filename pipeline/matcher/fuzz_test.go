package matcher

import (
	"errors"
	"regexp"
	"testing"

	"github.com/ternlog/tern/pipeline"
)

// fuzzMessages are the messages every fuzzed expression is matched against:
// the fixture, an empty message, and one whose fields change type.
func fuzzMessages() []*pipeline.Message {
	odd := fixture()
	odd.Type, odd.Severity, odd.Timestamp, odd.Payload = "", -1, -1, "\xff\xfe"
	odd.UUID = [16]byte{0xff, 0x00, 0x12}
	odd.Fields = nil
	odd.AddInt("foo", 7)
	odd.AddString("number", "64")
	odd.AddBool("int", false)
	odd.AddBytes("bool", []byte("true"))
	odd.AddField(pipeline.NewField("foo", pipeline.TypeDouble, "", pipeline.DoubleValue(-0.5), pipeline.DoubleValue(1e300)))
	return []*pipeline.Message{fixture(), pipeline.NewMessage(), odd}
}

func FuzzCompile(f *testing.F) {
	for _, r := range loadRows(f) {
		f.Add(r.expr)
	}
	msgs := fuzzMessages()
	f.Fuzz(func(t *testing.T, expr string) {
		m, err := Compile(expr)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Pos < 0 || se.Pos > len(expr) {
				t.Fatalf("%q: bad error %#v", expr, err)
			}
			_ = err.Error()
			return
		}
		s := m.String()
		m2, err := Compile(s)
		if err != nil {
			t.Fatalf("%q: String() = %q does not compile: %v", expr, s, err)
		}
		if s2 := m2.String(); s2 != s {
			t.Fatalf("%q: String() is not a fixed point: %q then %q", expr, s, s2)
		}
		for i, msg := range msgs {
			if a, b := m.Match(msg), m2.Match(msg); a != b {
				t.Fatalf("%q: message %d: %v, but %v for String() = %q", expr, i, a, b, s)
			}
		}
	})
}

// FuzzRegexMode checks that the substring fast paths agree with the regex
// engine.
func FuzzRegexMode(f *testing.F) {
	for _, s := range []string{"^abc", "abc$", "^abc$", "abc", "^", "$", "", `\Aé\z`, "(?i)^a", "^\xff"} {
		f.Add(s, "abc")
		f.Add(s, "xabcx\xff")
	}
	f.Fuzz(func(t *testing.T, pattern, text string) {
		re, err := regexp.Compile(pattern)
		if err != nil {
			return
		}
		mode, lit := regexMode(re)
		for _, o := range []op{opMatch, opNoMatch} {
			sm := strMatcher(&test{lit: lRegex, op: o, re: re})
			if got, want := sm(text), re.MatchString(text) == (o == opMatch); got != want {
				t.Fatalf("/%s/ %s %q: fast path %v (mode %d, %q), regex %v", pattern, opNames[o], text, got, mode, lit, want)
			}
		}
	})
}
