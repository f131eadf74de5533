package roundtrip

import (
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

// pieces is the hostile alphabet of reliability.md R24, plus invalid UTF-8
// and text shaped like the syntax of the formats under test.
var pieces = []string{
	"\n", "\r", "\r\n", "\x00", "|", "=", "\\", "]", "[", "\"", "\t", "#", "\x09", "\u0085", "\u2028", "\u2029",
	"(empty)", "-", " ", "  ", "a", "Z", "7", "é", "日本", "\xff", "\xfe\xfd", "\xc3", "\x1b[31m", "\x7f", "\x01",
	"k=v", " k=v", "\tsrc=6.6.6.6", "CEF:0|Evil|Evil|1|1|forged|10|", "<13>1 - - - - - - ", "[x@1 a=\"b\"]",
	"\\n", "\\\\", "\\=", "\\|", "\\]", "%SYS-5:", "tag[1]: ", "host: ",
}

// records is how many random messages each property test checks: 10^5 as
// R24 asks of CI, fewer with -short or -race.
func records(t *testing.T) int {
	switch {
	case testing.Short():
		return 5_000
	case raceEnabled:
		return 20_000
	}
	return 100_000
}

// hostile returns a random string from the alphabet: sometimes empty,
// sometimes one of the marker values, sometimes with a leading '#' or a
// 4 KiB run.
func hostile(r *rand.Rand) string {
	switch r.IntN(200) {
	case 0, 1, 2, 3, 4, 5, 6, 7, 8, 9:
		return ""
	case 10, 11, 12, 13, 14, 15, 16, 17, 18, 19:
		return "-"
	case 20, 21, 22, 23, 24:
		return "(empty)"
	case 25, 26, 27, 28, 29, 30, 31, 32, 33, 34:
		return "#" + hostile(r)
	case 35: // a 4 KiB run
		p := pieces[r.IntN(len(pieces))]
		return strings.Repeat(p, 4096/len(p)+1)
	}
	var b strings.Builder
	for n := r.IntN(8) + 1; n > 0; n-- {
		b.WriteString(pieces[r.IntN(len(pieces))])
	}
	return b.String()
}

// word returns 1..max bytes of [A-Za-z0-9_].
func word(r *rand.Rand, max int) string {
	const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"
	b := make([]byte, r.IntN(max)+1)
	for i := range b {
		b[i] = chars[r.IntN(len(chars))]
	}
	return string(b)
}

// replaceInvalid is what an encoder in "replace" mode does to a string:
// each byte of an invalid sequence becomes U+FFFD. It returns the count.
func replaceInvalid(s string) (string, int) {
	if utf8.ValidString(s) {
		return s, 0
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteString("\uFFFD")
			n++
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String(), n
}

func settings(t testing.TB, name string) (pipeline.Settings, *pipelinetest.Telemetry) {
	set := pipelinetest.Settings(t, name)
	return set, set.Telemetry.(*pipelinetest.Telemetry)
}

func counted(tel *pipelinetest.Telemetry, name string) int { return int(tel.Counts[name]) }

// diffFields describes the first difference between two field lists.
func diffFields(got, want []pipeline.Field) string {
	if len(got) != len(want) {
		var g, w []string
		for i := range got {
			g = append(g, got[i].Name)
		}
		for i := range want {
			w = append(w, want[i].Name)
		}
		return "field names " + strings.Join(g, ",") + " want " + strings.Join(w, ",")
	}
	for i := range got {
		if !got[i].Equal(&want[i]) {
			return "field " + want[i].Name + ": got " + show(&got[i]) + " want " + show(&want[i])
		}
	}
	return ""
}

func show(f *pipeline.Field) string {
	var b []byte
	m := pipeline.Message{Fields: []pipeline.Field{*f}}
	b = codec.AppendJSON(b, &m)
	return string(b[strings.Index(string(b), `"fields"`):])
}
