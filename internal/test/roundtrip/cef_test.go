package roundtrip

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	cefdec "github.com/ternlog/tern/decoders/cef"
	cefenc "github.com/ternlog/tern/encoders/cef"
	"github.com/ternlog/tern/internal/cefx"
	"github.com/ternlog/tern/pipeline"
)

var cefSeverities = []string{"0", "1", "3", "4", "6", "7", "8", "9", "10", "Unknown", "Low", "Medium", "High", "Very-High"}

var headerNames = []string{"deviceVendor", "deviceProduct", "deviceVersion", "deviceEventClassId", "name", "severity"}

// randomCEF makes a message in the CEF decoder's image: the header fields,
// then extensions with distinct keys (never rt or dtz, which set the
// Timestamp) and hostile values.
func randomCEF(r *rand.Rand) *pipeline.Message {
	m := pipeline.NewMessage()
	m.Type = "cef"
	m.AddInt("cefVersion", int64(r.IntN(2)))
	for _, h := range headerNames[:5] {
		m.AddString(h, hostile(r))
	}
	sev := cefSeverities[r.IntN(len(cefSeverities))]
	m.AddString("severity", sev)
	m.Severity = cefx.ToSyslog(sev)
	seen := map[string]bool{"rt": true, "dtz": true}
	for n := r.IntN(8); n > 0; n-- {
		k := word(r, 12)
		if r.IntN(4) == 0 {
			k += "." + word(r, 4) + "[" + strconv.Itoa(r.IntN(9)) + "]"
		}
		if seen[k] {
			continue
		}
		seen[k] = true
		m.AddString(k, hostile(r))
	}
	return m
}

// cefNormal is what the documented normalisation does to a header value
// (header) or an extension value: CR LF, CR and LF become one space in the
// header; other control characters, U+0085, U+2028 and U+2029 become
// \xHH or \uHHHH text; invalid UTF-8 becomes U+FFFD unless keep.
func cefNormal(s string, header, keep bool) (string, int) {
	if header {
		s = strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ").Replace(s)
	}
	var b strings.Builder
	replaced := 0
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			if keep {
				b.WriteByte(s[i])
			} else {
				b.WriteString("\uFFFD")
				replaced++
			}
		case r < 0x20 && r != '\t' && r != '\n' && r != '\r':
			b.WriteString(`\x`)
			b.WriteString(hex(uint64(r), 2))
		case r >= 0x80 && r <= 0x9f || r == 0x2028 || r == 0x2029:
			b.WriteString(`\u`)
			b.WriteString(hex(uint64(r), 4))
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String(), replaced
}

// expectedCEF is m after the encoder's normalisation, as the decoder must
// return it.
func expectedCEF(m *pipeline.Message, keep bool) (*pipeline.Message, int) {
	want := pipeline.NewMessage()
	want.Type, want.Severity = m.Type, m.Severity
	replaced := 0
	for i := range m.Fields {
		f := &m.Fields[i]
		if f.Type != pipeline.TypeString {
			want.AddField(*f)
			continue
		}
		v, n := cefNormal(f.Value(0).Str(), i <= 6, keep)
		replaced += n
		if i == len(m.Fields)-1 && i > 6 {
			v = strings.TrimRight(v, " \t") // the final value loses trailing blanks (§1.3)
		}
		want.AddString(f.Name, v)
	}
	return want, replaced
}

func newCEF(t testing.TB, mod func(*cefenc.Config)) (*cefenc.Encoder, *cefdec.Decoder, func() int) {
	set, tel := settings(t, "encoders.cef")
	cfg := cefenc.DefaultConfig()
	if mod != nil {
		mod(&cfg)
	}
	enc, err := cefenc.New(set, cfg)
	if err != nil {
		t.Fatal(err)
	}
	dec, err := cefdec.New(set, cefdec.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return enc, dec, func() int { return counted(tel, "utf8_replaced_total") }
}

// TestCEFRoundTrip: decode(encode(m)) equals m after the documented
// normalisation, for hostile field contents; each message is exactly one
// line; an independent strict parser reads the same fields (R23, R24).
func TestCEFRoundTrip(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("keep_utf8=%v", keep), func(t *testing.T) {
			enc, dec, replacedCount := newCEF(t, func(c *cefenc.Config) {
				if keep {
					c.InvalidUTF8 = "keep"
				}
			})
			r := rand.New(rand.NewPCG(1, uint64(len(fmt.Sprint(keep)))))
			lines := 0
			var b *pipeline.Batch
			n := records(t)
			if keep {
				n /= 5
			}
			wantReplaced := 0
			for i := range n {
				m := randomCEF(r)
				want, replaced := expectedCEF(m, keep)
				wantReplaced += replaced
				line, err := enc.Encode(nil, m)
				if err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
				if bad := lineBreak(line); bad >= 0 {
					t.Fatalf("record %d: line break 0x%x at %d in %q", i, line[bad], bad, line)
				}
				if !keep && !utf8.Valid(line) {
					t.Fatalf("record %d: invalid UTF-8 in %q", i, line)
				}
				if i%256 == 0 {
					b = pipeline.NewBatch()
				}
				if err := dec.Decode(pipeline.Record{Data: line}, b); err != nil {
					t.Fatalf("record %d: decode %q: %v", i, line, err)
				}
				got := b.Msgs[len(b.Msgs)-1]
				if got.Type != want.Type || got.Severity != want.Severity || got.Timestamp != 0 {
					t.Fatalf("record %d: header %q %d %d", i, got.Type, got.Severity, got.Timestamp)
				}
				if d := diffFields(got.Fields, want.Fields); d != "" {
					t.Fatalf("record %d: decoder: %s\nline %q", i, d, line)
				}
				if !keep {
					fields, err := strictCEF(string(line))
					if err != nil {
						t.Fatalf("record %d: strict parser: %v\nline %q", i, err, line)
					}
					if d := diffFields(fields, want.Fields); d != "" {
						t.Fatalf("record %d: strict parser: %s\nline %q", i, d, line)
					}
				}
				// What a line-based receiver of the stream would count.
				lines += bytes.Count(append(line, '\n'), []byte("\n"))
			}
			if lines != n {
				t.Errorf("%d lines for %d messages", lines, n)
			}
			if got := replacedCount(); got != wantReplaced {
				t.Errorf("utf8_replaced_total = %d, want %d", got, wantReplaced)
			}
			t.Logf("%d messages, %d invalid UTF-8 bytes replaced", n, wantReplaced)
		})
	}
}

// lineBreak finds a byte or character a line-based reader may split at:
// any control character but TAB, U+0085, U+2028, U+2029.
func lineBreak(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if (r < 0x20 && r != '\t') || r == 0x85 || r == 0x2028 || r == 0x2029 || (r >= 0x80 && r <= 0x9f && n > 1) {
			return i
		}
		i += n
	}
	return -1
}

var (
	cefStart = regexp.MustCompile(`^CEF:(0|[1-9][0-9]*)\|`)
	cefKey   = regexp.MustCompile(`(?:^|[ \t])([A-Za-z0-9_][A-Za-z0-9_.,\[\]]*)=`)
)

// strictCEF is an independent parser of what the encoder may write, and
// stricter than the decoder: UTF-8 only, no control characters but TAB,
// and only the escapes the encoder writes (\\ \| in the header, \\ \= \n
// \r in values, and the \xHH and \uHHHH forms kept as text).
func strictCEF(line string) ([]pipeline.Field, error) {
	if !utf8.ValidString(line) {
		return nil, errors.New("invalid UTF-8")
	}
	if i := lineBreak([]byte(line)); i >= 0 {
		return nil, fmt.Errorf("control character at %d", i)
	}
	sm := cefStart.FindStringSubmatch(line)
	if sm == nil {
		return nil, errors.New("no CEF:<version>| at the start")
	}
	v, _ := strconv.ParseInt(sm[1], 10, 64)
	fields := []pipeline.Field{pipeline.NewField("cefVersion", pipeline.TypeInteger, "", pipeline.IntValue(v))}
	rest := line[len(sm[0]):]
	for _, name := range headerNames {
		var b strings.Builder
		i := 0
		for ; i < len(rest) && rest[i] != '|'; i++ {
			if rest[i] != '\\' {
				b.WriteByte(rest[i])
				continue
			}
			n, text, err := escape(rest[i:], `\|`)
			if err != nil {
				return nil, fmt.Errorf("header %s: %v", name, err)
			}
			b.WriteString(text)
			i += n - 1
		}
		if i == len(rest) {
			return nil, fmt.Errorf("header %s: no closing pipe", name)
		}
		if name == "severity" && !cefx.ValidSeverity(b.String()) {
			return nil, fmt.Errorf("severity %q", b.String())
		}
		fields = append(fields, pipeline.NewField(name, pipeline.TypeString, "", pipeline.StringValue(b.String())))
		rest = rest[i+1:]
	}
	ext := strings.TrimRight(rest, " \t")
	if ext == "" {
		return fields, nil
	}
	keys := cefKey.FindAllStringSubmatchIndex(ext, -1)
	if len(keys) == 0 || keys[0][0] != 0 {
		return nil, errors.New("extension does not start with a key")
	}
	for k, loc := range keys {
		end := len(ext)
		if k+1 < len(keys) {
			end = keys[k+1][0]
		}
		raw := ext[loc[1]:end]
		var b strings.Builder
		for i := 0; i < len(raw); i++ {
			if raw[i] == '=' {
				return nil, fmt.Errorf("unescaped '=' in the value of %s", ext[loc[2]:loc[3]])
			}
			if raw[i] != '\\' {
				b.WriteByte(raw[i])
				continue
			}
			n, text, err := escape(raw[i:], `\=nr`)
			if err != nil {
				return nil, fmt.Errorf("value of %s: %v", ext[loc[2]:loc[3]], err)
			}
			b.WriteString(text)
			i += n - 1
		}
		fields = append(fields, pipeline.NewField(ext[loc[2]:loc[3]], pipeline.TypeString, "", pipeline.StringValue(b.String())))
	}
	return fields, nil
}

func hex(v uint64, width int) string {
	s := strconv.FormatUint(v, 16)
	return strings.Repeat("0", width-len(s)) + s
}

// lowerHex reports whether s is made of n lower-case hex digits.
func lowerHex(s string, n int) bool {
	if len(s) < n {
		return false
	}
	for i := 0; i < n; i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// escape reads the escape at the start of s (s[0] == '\\'): one of the
// characters in allowed after the backslash, or \xHH / \uHHHH (kept).
func escape(s, allowed string) (int, string, error) {
	if len(s) < 2 {
		return 0, "", errors.New("trailing backslash")
	}
	if s[1] == 'x' && lowerHex(s[2:], 2) {
		return 4, s[:4], nil
	}
	if s[1] == 'u' && lowerHex(s[2:], 4) {
		return 6, s[:6], nil
	}
	if !strings.ContainsRune(allowed, rune(s[1])) {
		return 0, "", fmt.Errorf("escape %q not allowed here", s[:2])
	}
	switch s[1] {
	case 'n':
		return 2, "\n", nil
	case 'r':
		return 2, "\r", nil
	}
	return 2, s[1:2], nil
}

// The passthrough of a CEF payload (tern's client library) is one line too.
func TestCEFPassthroughOneLine(t *testing.T) {
	enc, dec, _ := newCEF(t, nil)
	r := rand.New(rand.NewPCG(2, 2))
	for i := range records(t) / 10 {
		m := pipeline.NewMessage()
		m.Type = "cef"
		m.Payload = "CEF:0|V|P|1|S|N|5|msg=" + hostile(r)
		line, err := enc.Encode(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		if bad := lineBreak(line); bad >= 0 || !utf8.Valid(line) {
			t.Fatalf("record %d: %q", i, line)
		}
		if err := dec.Decode(pipeline.Record{Data: line}, pipeline.NewBatch()); err != nil {
			t.Fatalf("record %d: %q: %v", i, line, err)
		}
	}
}
