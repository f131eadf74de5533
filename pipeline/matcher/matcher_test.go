package matcher

import (
	"bufio"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ternlog/tern/pipeline"
)

const fixtureUUID = "8e414f01-9d7f-4a48-a5e1-ae92e5954df5"

// fixture is Heka's matcher test message plus the fields our own rows need.
func fixture() *pipeline.Message {
	u, ok := pipeline.ParseUUID(fixtureUUID)
	if !ok {
		panic("bad fixture uuid")
	}
	m := &pipeline.Message{
		UUID:       u,
		Timestamp:  5123456789,
		Type:       "TEST",
		Logger:     "GoSpec",
		Severity:   6,
		Payload:    "Test Payload",
		EnvVersion: "0.8",
		Pid:        14098,
		Hostname:   "hostname",
	}
	m.AddString("foo", "bar")
	m.AddInt("number", 64)
	m.AddBytes("data", []byte("data"))
	m.AddBytes("bytes", []byte("data")) // the name Heka's own cases use
	m.AddField(pipeline.NewField("int", pipeline.TypeInteger, "", pipeline.IntValue(999), pipeline.IntValue(1024)))
	m.AddDouble("double", 99.9)
	m.AddBool("bool", true)
	m.AddString("foo", "alternate")
	m.AddString("Payload", "name=test;type=web;")
	m.AddField(pipeline.NewField("Timestamp", pipeline.TypeString, "date-time", pipeline.StringValue("Mon Jan 02 15:04:05 -0700 2006")))
	m.AddInt("zero", 0)
	m.AddString("string", "43")
	m.AddBool("bfalse", false)
	m.AddInt("neg", -5)
	m.AddString("a b", "sp")
	m.AddInt("big", 1763769600123456789)
	m.AddString("dotted.name", "dot")
	m.AddField(pipeline.NewField("none", pipeline.TypeString, "")) // a field with no values
	m.AddString("empty", "")
	m.AddDouble("nan", math.NaN())
	m.AddString("multi", "line1\nline2")
	m.AddString("slash", "a/b")
	m.AddString("back", `a\b`)
	m.AddString("quote", "it's")
	m.AddString("dq", `say "hi"`)
	m.AddString("utf8", "héllo")
	return m
}

type row struct {
	line int
	expr string
	want string // true, false or error
}

func loadRows(t testing.TB) []row {
	t.Helper()
	f, err := os.Open("testdata/matches.txt")
	require.NoError(t, err)
	defer f.Close()
	var rows []row
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		tab := strings.LastIndexByte(line, '\t')
		require.Positive(t, tab, "line %d: no tab", n)
		expr, want := line[:tab], line[tab+1:]
		if q, ok := strings.CutPrefix(expr, "quoted: "); ok {
			expr, err = strconv.Unquote(q)
			require.NoError(t, err, "line %d", n)
		}
		require.Contains(t, []string{"true", "false", "error"}, want, "line %d", n)
		rows = append(rows, row{n, expr, want})
	}
	require.NoError(t, sc.Err())
	return rows
}

func TestConformance(t *testing.T) {
	msg := fixture()
	for _, r := range loadRows(t) {
		m, err := Compile(r.expr)
		if r.want == "error" {
			assert.Error(t, err, "line %d: %q compiled to %v", r.line, r.expr, m)
			continue
		}
		if !assert.NoError(t, err, "line %d: %q", r.line, r.expr) {
			continue
		}
		assert.Equal(t, r.want == "true", m.Match(msg), "line %d: %q", r.line, r.expr)
		// The canonical form must give the same verdict.
		m2, err := Compile(m.String())
		if assert.NoError(t, err, "line %d: String() = %q", r.line, m.String()) {
			assert.Equal(t, r.want == "true", m2.Match(msg), "line %d: String() = %q", r.line, m.String())
		}
	}
}

func TestMatchDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under -race")
	}
	msg := fixture()
	for _, r := range loadRows(t) {
		if r.want == "error" {
			continue
		}
		m := MustCompile(r.expr)
		allocs := testing.AllocsPerRun(100, func() { m.Match(msg) })
		assert.Zero(t, allocs, "line %d: %q", r.line, r.expr)
	}
}

func TestSyntaxErrors(t *testing.T) {
	cases := []struct {
		expr string
		pos  int
		msg  string
	}{
		{"", 0, "unexpected end of input"},
		{"Type == 'abc", 8, "unterminated string"},
		{`Type == "abc\"`, 8, "unterminated string"},
		{"Type =~ /abc", 8, "unterminated regex"},
		{"Type =~ /a\\/", 8, "unterminated regex"},
		{"Type =~ /a(/", 8, "invalid regex: missing closing )"},
		{"Fields[test][a]", 13, "an index must be a non-negative integer"},
		{"Fields[test][]", 13, "empty index"},
		{"Fields[test][0][1][2] == NIL", 18, "too many indexes"},
		{"Fields[test][xxxx", 13, "an index must be"},
		{"Fields[test][12", 12, "unterminated index"},
		{"Fields[test", 6, "unterminated Fields["},
		{"Fields[] == NIL", 7, "empty field name"},
		{"Fields == NIL", 6, "expected [ after Fields"},
		{"Fields[x][99999999999] == NIL", 10, "index 99999999999 is too large"},
		{"Invalid == 'x'", 0, "unknown identifier Invalid"},
		{"Type == 'x' && bogus", 15, "unknown identifier bogus"},
		{"'TEST' == Type", 0, "put the literal on the right"},
		{"Severity > 3 && 6 < Severity", 16, "put the literal on the right"},
		{"TRUE FALSE", 5, "expected && or || before FALSE"},
		{"Type == 'x'\nFALSE", 12, "expected && or || before FALSE"},
		{"Type = 'x'", 5, "= is not an operator"},
		{"Type == 'x' & TRUE", 12, "single &"},
		{"Type =~ 'x'", 8, "expected a regex after =~, found a string"},
		{"Type == /x/", 8, "a regex needs =~ or !~"},
		{"Pid =~ /6/", 7, "Pid is a number; a regex cannot match it"},
		{"Pid == '6'", 7, "Pid is a number"},
		{"Type == 6", 8, "Type is a string"},
		{"Type == NIL", 8, "NIL works only with Fields[...]"},
		{"Fields[x] > NIL", 12, "NIL works only with == and !="},
		{"Fields[x] < TRUE", 12, "TRUE works only with == and !="},
		{"Timestamp > 'soon'", 12, "RFC 3339"},
		{"Timestamp > '1000-01-01T00:00:00Z'", 12, "out of range"},
		{"Severity == 1e999", 12, "number 1e999 is out of range"},
		{"Severity == 1-2", 12, "invalid number 1-2"},
		{"Type", 4, "expected an operator"},
		{"(Type == 'x'", 12, "expected ) to close the ( at position 0"},
		{"Type == 'x')", 11, "unbalanced )"},
		{"Type == 'x' ~", 12, "unexpected character '~'"},
		{strings.Repeat("(", maxDepth+1) + "TRUE" + strings.Repeat(")", maxDepth+1), maxDepth, "nested more than"},
	}
	for _, c := range cases {
		_, err := Compile(c.expr)
		var se *SyntaxError
		if !assert.ErrorAs(t, err, &se, "%q", c.expr) {
			continue
		}
		assert.Equal(t, c.pos, se.Pos, "%q: %v", c.expr, err)
		assert.Contains(t, se.Msg, c.msg, "%q", c.expr)
	}
}

func TestSyntaxErrorText(t *testing.T) {
	_, err := Compile("Type == 'x' && Payload =~ 'y'")
	require.EqualError(t, err, `syntax error at position 26: expected a regex after =~, found a string (near "'y'")`)
	_, err = Compile("Type ==")
	require.EqualError(t, err, `syntax error at position 7: unexpected end of input, expected a value after == (at end of input)`)
	_, err = Compile("Type == 'x' && Payload =~ /abc/ && Hostname =~ 'a very long host name'")
	require.ErrorContains(t, err, `(near "'a very long host na...")`)
}

func TestMustCompilePanics(t *testing.T) {
	assert.PanicsWithValue(t, `matcher: syntax error at position 0: unknown identifier bogus (near "bogus")`, func() { MustCompile("bogus") })
	assert.NotPanics(t, func() { MustCompile("TRUE") })
}

func TestString(t *testing.T) {
	cases := []struct{ in, want string }{
		{"Type=='x'", "Type == 'x'"},
		{"((Type == 'x'))", "Type == 'x'"},
		{"(TRUE && FALSE) && (TRUE && TRUE)", "TRUE && FALSE && TRUE && TRUE"},
		{"TRUE || (FALSE || TRUE)", "TRUE || FALSE || TRUE"},
		{"(TRUE || FALSE) && TRUE", "(TRUE || FALSE) && TRUE"},
		{"TRUE || FALSE && TRUE", "TRUE || FALSE && TRUE"},
		{"Fields[a b][0][0] == 1", "Fields[a b] == 1"},
		{"Fields[x][0][2] == 1", "Fields[x][0][2] == 1"},
		{"Fields[x][3][0] == 1", "Fields[x][3] == 1"},
		{`Type == "it's"`, `Type == "it's"`},
		{`Type == 'say "hi"'`, `Type == 'say "hi"'`},
		{`Type == "a\"b'c"`, `Type == 'a"b\'c'`},
		{`Type == 'a\b'`, `Type == 'a\b'`},
		{`Type == "a\'"`, `Type == "a\'"`},
		{`Type =~ /a\/b\d/`, `Type =~ /a\/b\d/`},
		{"Severity == 6e0", "Severity == 6.0"},
		{"Severity == 6", "Severity == 6"},
		{"Severity > -0.5", "Severity > -0.5"},
		{"Severity < 1e21", "Severity < 1e+21"},
		{"Severity < 99999999999999999999", "Severity < 1e+20"},
		{"Timestamp >= '2026-11-22T01:00:00+01:00'", "Timestamp >= '2026-11-22T00:00:00Z'"},
		{"Timestamp >= '2026-11-22T00:00:00.000000001Z'", "Timestamp >= '2026-11-22T00:00:00.000000001Z'"},
		{"Fields[b] != TRUE", "Fields[b] != TRUE"},
		{"Fields[b] == NIL", "Fields[b] == NIL"},
		{"Type == 'x'\n&&\tSeverity == 1", "Type == 'x' && Severity == 1"},
	}
	for _, c := range cases {
		m, err := Compile(c.in)
		if c.want == "" {
			assert.Error(t, err, c.in)
			continue
		}
		require.NoError(t, err, c.in)
		assert.Equal(t, c.want, m.String(), c.in)
		assert.Equal(t, c.want, MustCompile(m.String()).String(), "canonical form is a fixed point")
	}
}

// trace replays Match and records which tests ran.
func trace(m *Matcher, msg *pipeline.Message) (ran []string, verdict bool) {
	pc := m.entry
	for pc >= 0 {
		in := &m.prog[pc]
		ran = append(ran, in.src.s)
		if in.test(msg) {
			pc = in.ifTrue
		} else {
			pc = in.ifFalse
		}
	}
	return ran, pc == verdictTrue
}

func TestShortCircuit(t *testing.T) {
	msg := fixture()
	cases := []struct {
		expr string
		ran  []string
	}{
		{"Type == 'a' && Type == 'b' && Type == 'c'", []string{"a"}},
		{"Type == 'TEST' && Type == 'b' && Type == 'c'", []string{"TEST", "b"}},
		{"Type == 'TEST' || Type == 'b'", []string{"TEST"}},
		{"Type == 'a' || Type == 'TEST' || Type == 'c'", []string{"a", "TEST"}},
		{"Type == 'a' && Type == 'b' || Type == 'TEST'", []string{"a", "TEST"}},
		{"(Type == 'a' || Type == 'TEST') && Type == 'c'", []string{"a", "TEST", "c"}},
		{"(Type == 'TEST' || Type == 'b') && Type == 'c'", []string{"TEST", "c"}},
		// Constants fold away, and so does a test whose outcome cannot matter.
		{"TRUE || Type == 'a'", nil},
		{"FALSE && Type == 'a'", nil},
		{"Type == 'a' && FALSE", nil},
		{"TRUE && Type == 'a'", []string{"a"}},
		{"(Type == 'a' || TRUE) && Type == 'TEST'", []string{"TEST"}},
		{"Uuid == 'nope' || Type == 'TEST'", []string{"TEST"}},
	}
	for _, c := range cases {
		m := MustCompile(c.expr)
		ran, verdict := trace(m, msg)
		assert.Equal(t, c.ran, ran, c.expr)
		assert.Equal(t, m.Match(msg), verdict, c.expr)
	}
}

func TestTimestampIsExact(t *testing.T) {
	ts := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC).UnixNano()
	msg := &pipeline.Message{Timestamp: ts}
	at := "'2026-11-22T00:00:00Z'"
	after := "'2026-11-22T00:00:00.000000001Z'"
	for expr, want := range map[string]bool{
		"Timestamp == " + strconv.FormatInt(ts, 10):   true,
		"Timestamp == " + strconv.FormatInt(ts+1, 10): false,
		"Timestamp < " + strconv.FormatInt(ts+1, 10):  true,
		"Timestamp > " + strconv.FormatInt(ts-1, 10):  true,
		"Timestamp == " + at:                          true,
		"Timestamp >= " + at:                          true,
		"Timestamp < " + after:                        true,
		"Timestamp == " + after:                       false,
		"Timestamp >= " + after:                       false,
		// A float literal compares as float64, Heka's way, which cannot
		// tell 1 ns apart at this magnitude.
		"Timestamp == " + strconv.FormatInt(ts+1, 10) + ".0": true,
	} {
		assert.Equal(t, want, MustCompile(expr).Match(msg), expr)
	}
}

func TestFieldTypesAndValues(t *testing.T) {
	msg := pipeline.NewMessage()
	msg.AddField(pipeline.NewField("s", pipeline.TypeString, "", pipeline.StringValue("a"), pipeline.StringValue("b")))
	msg.AddField(pipeline.NewField("d", pipeline.TypeDouble, "", pipeline.DoubleValue(1.5), pipeline.DoubleValue(-2)))
	msg.AddField(pipeline.NewField("b", pipeline.TypeBool, "", pipeline.BoolValue(false), pipeline.BoolValue(true)))
	msg.AddField(pipeline.NewField("odd", pipeline.ValueType(9), "", pipeline.IntValue(1)))
	msg.AddField(pipeline.NewField("u", pipeline.TypeUnsigned, "", pipeline.UintValue(math.MaxUint64), pipeline.UintValue(3)))
	holes := pipeline.NewField("v", pipeline.TypeString, "", pipeline.StringValue("x"))
	holes.AppendUnset()
	msg.AddField(holes)
	for expr, want := range map[string]bool{
		"Fields[u] == 18446744073709551615":              true, // exact beyond int64
		"Fields[u] == 18446744073709551614":              false,
		"Fields[u][0][1] < 18446744073709551615":         true,
		"Fields[d] < 18446744073709551615":               true,
		"Fields[u] > 9223372036854775807":                true,
		"Fields[u] > -1":                                 true,
		"Fields[u] != -1":                                true,
		"Fields[u] <= -1":                                false,
		"Fields[u][0][1] == 3":                           true,
		"Fields[u][0][1] < 3.5":                          true,
		"Fields[v][0][0] == 'x'":                         true,
		"Fields[v][0][1] == NIL":                         true, // an unset slot is no value
		"Fields[v][0][1] != NIL":                         false,
		"Fields[v][0][1] == ''":                          false,
		"Fields[v][0][1] =~ /.*/":                        false,
		"Fields[s][0][1] == 'b'":                         true,
		"Fields[s][0][1] =~ /^b/":                        true,
		"Fields[d][0][1] == -2":                          true,
		"Fields[d][0][1] < -1.5":                         true,
		"Fields[b][0][1] == TRUE":                        true,
		"Fields[b] == FALSE":                             true,
		"Fields[odd] == 1":                               false,
		"Fields[odd] != 1":                               false,
		"Fields[odd] == 'x'":                             false,
		"Fields[odd] =~ /x/":                             false,
		"Fields[odd] == TRUE":                            false,
		"Fields[odd] != NIL":                             true,
		"Severity == 7":                                  true, // NewMessage's default
		"Pid == 0 && Type == ''":                         true,
		"Uuid == '00000000-0000-0000-0000-000000000000'": true,
	} {
		assert.Equal(t, want, MustCompile(expr).Match(msg), expr)
	}
}

func TestRegexMode(t *testing.T) {
	cases := []struct {
		re   string
		mode reMode
		lit  string
	}{
		{"^abc", rePrefix, "abc"},
		{`\Aabc`, rePrefix, "abc"},
		{"abc$", reSuffix, "abc"},
		{`abc\z`, reSuffix, "abc"},
		{"^abc$", reEqual, "abc"},
		{"abc", reContains, "abc"},
		{"^", rePrefix, ""},
		{"", reContains, ""},
		{"^$", reEqual, ""},
		{`^a\.b`, rePrefix, "a.b"},
		{"^é", rePrefix, "é"},
		{"(?i)^abc", reFull, ""},
		{"(?m)^abc", reFull, ""},
		{"(?m)abc$", reFull, ""},
		{"^(abc)", reFull, ""},
		{"^a.c", reFull, ""},
		{"^ab*", reFull, ""},
		{"^^abc", reFull, ""},
		{`^\x{FFFD}`, reFull, ""},
		{"a|b", reFull, ""},
	}
	for _, c := range cases {
		mode, lit := regexMode(regexp.MustCompile(c.re))
		assert.Equal(t, c.mode, mode, c.re)
		assert.Equal(t, c.lit, lit, c.re)
	}
}

func TestConcurrentMatch(t *testing.T) {
	exprs := []string{
		"Type == 'TEST' && Severity <= 6 && Fields[foo] =~ /^ba/",
		"Uuid =~ /(?i)^8E/ || Uuid < 'a'",
		"Payload =~ /T[a-z]+t P/",
		"Fields[missing] == NIL && Fields[int][0][1] > 1000",
	}
	msg := fixture()
	var wg sync.WaitGroup
	for _, e := range exprs {
		m := MustCompile(e)
		want := m.Match(msg)
		for range 4 {
			wg.Go(func() {
				for range 1000 {
					if m.Match(msg) != want {
						t.Errorf("%q: verdict changed under concurrency", e)
						return
					}
				}
			})
		}
	}
	wg.Wait()
}
