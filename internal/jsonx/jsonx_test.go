package jsonx

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAppendString(t *testing.T) {
	cases := map[string]string{
		"":                    `""`,
		"plain ascii text 12": `"plain ascii text 12"`,
		"q\"b\\s/":            `"q\"b\\s/"`,
		"\n\r\t\x00\x1f\x7f":  `"\n\r\t\u0000\u001f` + "\x7f\"",
		"<&>":                 `"<&>"`,
		"a\u2028b\u2029c":     `"a\u2028b\u2029c"`,
		"é€𝄞":                 `"é€𝄞"`,
		"bad\xffbyte\xc3":     "\"bad\ufffdbyte\ufffd\"",
		"long enough to use the word-at-a-time path \" here": `"long enough to use the word-at-a-time path \" here"`,
	}
	for in, want := range cases {
		got, n := AppendString(nil, in)
		if string(got) != want {
			t.Errorf("AppendString(%q) = %s, want %s", in, got, want)
		}
		if wantN := strings.Count(want, "\ufffd"); n != wantN {
			t.Errorf("AppendString(%q) replaced %d, want %d", in, n, wantN)
		}
	}
}

func TestAppendStringRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	alphabet := []string{"a", "b", "\"", "\\", "\n", "\x01", "\x7f", "é", "\u2028", "\xff", "\xe2\x80", "𝄞", " ", "<"}
	for range 20000 {
		var sb strings.Builder
		for range r.IntN(40) {
			sb.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		in := sb.String()
		out, _ := AppendString(nil, in)
		if !json.Valid(out) || !utf8.Valid(out) {
			t.Fatalf("invalid output for %q: %s", in, out)
		}
		var back string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatal(err)
		}
		if want := string([]rune(in)); back != want { // []rune maps each bad byte to U+FFFD
			t.Fatalf("round trip %q -> %q, want %q", in, back, want)
		}
		if bytes.ContainsAny(out, "\n\r\u2028\u2029") {
			t.Fatalf("unescaped line break in %q", out)
		}
	}
}

func TestAppendFloat(t *testing.T) {
	cases := map[float64]string{
		0: "0.0", 1: "1.0", -2: "-2.0", 99.9: "99.9", 12.345: "12.345", 1e20: "100000000000000000000.0",
		1e21: "1e+21", 1e-7: "1e-7", 1.5e-7: "1.5e-7", 0.000001: "0.000001", math.Copysign(0, -1): "-0.0",
		math.NaN(): `"NaN"`, math.Inf(1): `"Infinity"`, math.Inf(-1): `"-Infinity"`, 5e-324: "5e-324",
		math.MaxFloat64: "1.7976931348623157e+308",
	}
	for in, want := range cases {
		if got := string(AppendFloat(nil, in)); got != want {
			t.Errorf("AppendFloat(%v) = %s, want %s", in, got, want)
		}
	}
	r := rand.New(rand.NewPCG(5, 6))
	for range 100000 {
		f := math.Float64frombits(r.Uint64())
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		out := AppendFloat(nil, f)
		back, err := strconv.ParseFloat(string(out), 64)
		if err != nil || math.Float64bits(back) != math.Float64bits(f) || !json.Valid(out) {
			t.Fatalf("AppendFloat(%v) = %s does not read back", f, out)
		}
	}
}

func TestSkip(t *testing.T) {
	good := []string{`1`, `-0.5e+3`, `"x\u00e9\n"`, `true`, `null`, `[]`, `{}`, `[1,[2,{"a":[3]}],"x"]`, ` { "a" : { "b" : [ ] } } `}
	for _, in := range good {
		var s Scanner
		s.Reset([]byte(in))
		raw, err := s.Skip(MaxDepth)
		if err != nil || !s.AtEnd() || string(raw) != strings.TrimSpace(in) {
			t.Errorf("Skip(%s) = %q, %v", in, raw, err)
		}
	}
	bad := []string{``, `[`, `{"a"}`, `{"a":1,}`, `[1,]`, `[1 2]`, `{1:2}`, `01`, `1.`, `-`, `"\x"`, "\"a\x01\"", `tru`, `[}`, `{]`, `"abc`, `1e`, `nul`}
	for _, in := range bad {
		var s Scanner
		s.Reset([]byte(in))
		if _, err := s.Skip(MaxDepth); err == nil && s.AtEnd() {
			t.Errorf("Skip(%s) succeeded", in)
		}
	}
	deep := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	var s Scanner
	s.Reset([]byte(deep))
	if _, err := s.Skip(MaxDepth); err == nil {
		t.Error("deep nesting accepted")
	}
	ok := strings.Repeat(`{"a":[`, 200) + strings.Repeat(`]}`, 200)
	s.Reset([]byte(ok))
	if _, err := s.Skip(MaxDepth); err != nil {
		t.Errorf("depth 400: %v", err)
	}
}

func TestUnescape(t *testing.T) {
	cases := map[string]string{
		`a\"b\\c\/d\b\f\n\r\t`: "a\"b\\c/d\b\f\n\r\t",
		`\u00e9\u20AC`:         "é€",
		`\ud834\udd1e`:         "𝄞",
		`\ud834x`:              "\ufffdx",
		`\udd1e`:               "\ufffd",
		`\ud834\u0041`:         "\ufffdA",
	}
	for in, want := range cases {
		if got := string(Unescape(nil, []byte(in))); got != want {
			t.Errorf("Unescape(%s) = %q, want %q", in, got, want)
		}
	}
}

func TestParseInt(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "-0": 0, "9223372036854775807": math.MaxInt64, "-9223372036854775808": math.MinInt64, "42": 42} {
		if got, ok := ParseInt([]byte(in)); !ok || got != want {
			t.Errorf("ParseInt(%s) = %d, %v", in, got, ok)
		}
	}
	for _, in := range []string{"9223372036854775808", "-9223372036854775809", "99999999999999999999", "18446744073709551616"} {
		if _, ok := ParseInt([]byte(in)); ok {
			t.Errorf("ParseInt(%s) accepted", in)
		}
	}
}

func TestParseUint(t *testing.T) {
	for in, want := range map[string]uint64{"0": 0, "18446744073709551615": math.MaxUint64, "9223372036854775808": 1 << 63, "42": 42} {
		if got, ok := ParseUint([]byte(in)); !ok || got != want {
			t.Errorf("ParseUint(%s) = %d, %v", in, got, ok)
		}
	}
	for _, in := range []string{"-1", "-0", "18446744073709551616", "99999999999999999999", "100000000000000000000", ""} {
		if _, ok := ParseUint([]byte(in)); ok {
			t.Errorf("ParseUint(%s) accepted", in)
		}
	}
}

func TestAppendRaw(t *testing.T) {
	got, n, ok := AppendRaw(nil, " { \"a\" : [1, \"x y\xff\u2028\" ] } ", MaxDepth)
	if !ok || n != 1 || string(got) != "{\"a\":[1,\"x y\ufffd\\u2028\"]}" {
		t.Errorf("AppendRaw = %q, %d, %v", got, n, ok)
	}
	for _, in := range []string{"", "{", "1 2", "[1,]", "x"} {
		if _, _, ok := AppendRaw(nil, in, MaxDepth); ok {
			t.Errorf("AppendRaw(%q) accepted", in)
		}
	}
}

func BenchmarkAppendString(b *testing.B) {
	s := "GET /api/v1/items/123 completed lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod"
	buf := make([]byte, 0, 256)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendString(buf[:0], s)
	}
}

// BenchmarkAppendShortStrings writes the names and short values of a
// syslog message, the strings most of a message's are.
func BenchmarkAppendShortStrings(b *testing.B) {
	names := []string{"appname", "procid", "msgid", "sd", "name", "user", "postgres", "10068", "facility", "db@32473"}
	buf := make([]byte, 0, 256)
	for b.Loop() {
		buf = buf[:0]
		for _, s := range names {
			buf, _ = AppendString(buf, s)
		}
	}
}

func BenchmarkScanString(b *testing.B) {
	in := []byte(`"GET /api/v1/items/123 completed lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod"`)
	b.ReportAllocs()
	for b.Loop() {
		var s Scanner
		s.Reset(in)
		if _, _, err := s.String(); err != nil {
			b.Fatal(err)
		}
	}
}

// Decoders find where a returned slice starts from its capacity
// (cap(data)-cap(raw)): the scanner must return plain data[i:j] slices.
func TestSlicesShareCapacity(t *testing.T) {
	data := []byte(` {"key":"va\"lue","n":-12.5e3,"o":{"a":[1]}} `)
	var s Scanner
	s.Reset(data)
	check := func(raw []byte) {
		t.Helper()
		i := cap(data) - cap(raw)
		if i < 0 || i+len(raw) > len(data) || &data[i] != &raw[0] {
			t.Fatalf("slice %q does not start at data[%d]", raw, i)
		}
	}
	s.Peek()
	s.Advance()
	s.Peek()
	raw, _, _ := s.String()
	check(raw)
	s.Peek()
	s.Advance()
	s.Peek()
	raw, _, _ = s.String()
	check(raw)
	s.Peek()
	s.Advance()
	s.Peek()
	s.String()
	s.Peek()
	s.Advance()
	s.Peek()
	raw, _, _ = s.Number()
	check(raw)
	s.Peek()
	s.Advance()
	s.Peek()
	s.String()
	s.Peek()
	s.Advance()
	raw, _ = s.Skip(MaxDepth)
	check(raw)
}

func TestNextSpecialExact(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	alphabet := []byte{'a', ' ', '"', '\\', 0x00, 0x1f, 0x20, 0x21, 0x7f, 0x80, 0x9f, 0xa0, 0xe2, 0xff, '!', '#', '[', ']'}
	for range 200000 {
		b := make([]byte, r.IntN(100))
		for i := range b {
			b[i] = alphabet[r.IntN(len(alphabet))]
		}
		from := 0
		if len(b) > 0 {
			from = r.IntN(len(b) + 1)
		}
		want, want2 := len(b), len(b)
		for i := len(b) - 1; i >= from; i-- {
			if c := b[i]; c < 0x20 || c == '"' || c == '\\' {
				want = i
			}
			if c := b[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
				want2 = i
			}
		}
		if got := nextSpecial(b, from); got != want {
			t.Fatalf("nextSpecial(%q, %d) = %d, want %d", b, from, got, want)
		}
		if got := nextAttention(string(b), from); got != want2 {
			t.Fatalf("nextAttention(%q, %d) = %d, want %d", b, from, got, want2)
		}
	}
}

// BenchmarkSkipW2 validates a W2 record (compare jsontext's ReadValue).
func BenchmarkSkipW2(b *testing.B) {
	data, err := os.ReadFile("../../decoders/json/testdata/w2/input.txt")
	if err != nil {
		b.Fatal(err)
	}
	rec := bytes.SplitN(data, []byte("\n"), 2)[0]
	b.SetBytes(int64(len(rec)))
	b.ReportAllocs()
	for b.Loop() {
		var s Scanner
		s.Reset(rec)
		if _, err := s.Skip(MaxDepth); err != nil {
			b.Fatal(err)
		}
	}
}

// Every byte value, at every position of strings long enough for the
// 32-byte (AVX2), 16- and 8-byte rounds and the overlapping tail, stops
// nextAttention exactly when a JSON string cannot hold it as it is, and
// nextSpecial when it is a control byte, '"' or '\\'.
func TestNextAttentionEveryByteEveryPlace(t *testing.T) {
	for _, n := range []int{31, 32, 33, 63, 64, 95, 100} {
		base := []byte(strings.Repeat("abcdefgh", 13)[:n])
		for pos := 0; pos < n; pos++ {
			for c := 0; c < 256; c++ {
				b := bytes.Clone(base)
				b[pos] = byte(c)
				want := n
				if c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
					want = pos
				}
				if got := nextAttention(string(b), 0); got != want {
					t.Fatalf("n=%d byte 0x%02x at %d: nextAttention = %d, want %d", n, c, pos, got, want)
				}
				if c >= 0x80 {
					want = n
				}
				if got := nextSpecial(b, 0); got != want {
					t.Fatalf("n=%d byte 0x%02x at %d: nextSpecial = %d, want %d", n, c, pos, got, want)
				}
			}
		}
	}
}
