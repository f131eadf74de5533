package codec_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ternlog/tern/internal/testutil/benchutil"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
)

func TestJSONGolden(t *testing.T) {
	m := goldenMessage()
	if got := string(codec.AppendJSON(nil, m)); got != goldenJSON {
		t.Fatalf("AppendJSON:\n got %s\nwant %s", got, goldenJSON)
	}
	var back pipeline.Message
	for _, b := range []*pipeline.Batch{nil, pipeline.NewBatch()} {
		if err := codec.DecodeJSON([]byte(goldenJSON), &back, b); err != nil {
			t.Fatal(err)
		}
		if !back.Equal(m) {
			t.Fatalf("DecodeJSON(golden) = %+v, want %+v", back, *m)
		}
	}
	if got := string(codec.AppendJSON(nil, &back)); got != goldenJSON {
		t.Fatalf("round trip:\n got %s\nwant %s", got, goldenJSON)
	}
	if !json.Valid([]byte(goldenJSON)) {
		t.Fatal("golden is not JSON")
	}
}

func TestJSONEmptyMessage(t *testing.T) {
	const want = `{"uuid":"00000000-0000-0000-0000-000000000000","timestamp":"1970-01-01T00:00:00Z","type":"","logger":"","severity":7,"payload":"","env_version":"","pid":0,"hostname":"","fields":[]}`
	if got := string(codec.AppendJSON(nil, pipeline.NewMessage())); got != want {
		t.Fatalf("got %s", got)
	}
}

func TestJSONEscapes(t *testing.T) {
	m := pipeline.NewMessage()
	m.Payload = "a\"b\\c\n\r\t\x01\u2028\u2029<>&é\xff"
	got, n := codec.AppendJSONCount(nil, m)
	if want := `"payload":"a\"b\\c\n\r\t\u0001\u2028\u2029<>&é` + "\ufffd" + `"`; !strings.Contains(string(got), want) || n != 1 {
		t.Fatalf("got %s (%d replaced)", got, n)
	}
	s, n := codec.AppendJSONString([]byte("x"), "\xc3(")
	if string(s) != "x\"\ufffd(\"" || n != 1 {
		t.Fatalf("AppendJSONString = %q, %d", s, n)
	}
}

func TestDecodeJSONShorthands(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{}`, `{"uuid":"00000000-0000-0000-0000-000000000000","timestamp":"1970-01-01T00:00:00Z","type":"","logger":"","severity":7,"payload":"","env_version":"","pid":0,"hostname":"","fields":[]}`},
		{` {"payload":"x", "timestamp": 1795305600123456789 , "fields":[{"name":"s","value":"v"},{"value":[1,2],"name":"i"},{"name":"d","value":1.5},{"name":"e","value":[1e3]},{"name":"b","value":[false,true]},{"name":"n","value":[]},{"value":[3],"name":"dd","type":"double","representation":"ms"},{"name":"x","type":"double","value":["NaN","Infinity","-Infinity",2]}]} `,
			`{"uuid":"00000000-0000-0000-0000-000000000000","timestamp":"2026-11-22T00:00:00.123456789Z","type":"","logger":"","severity":7,"payload":"x","env_version":"","pid":0,"hostname":"","fields":[{"name":"s","type":"string","value":["v"]},{"name":"i","type":"integer","value":[1,2]},{"name":"d","type":"double","value":[1.5]},{"name":"e","type":"double","value":[1000.0]},{"name":"b","type":"bool","value":[false,true]},{"name":"n","type":"string","value":[]},{"name":"dd","type":"double","value":[3.0],"representation":"ms"},{"name":"x","type":"double","value":["NaN","Infinity","-Infinity",2.0]}]}`},
		{`{"timestamp":"2026-11-22T01:00:00+01:00","uuid":"0F1E2D3C-4B5A-4978-8695-A4B3C2D1E0F9","payload":"\u00e9\ud83d\ude00\/","severity":-3}`,
			`{"uuid":"0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9","timestamp":"2026-11-22T00:00:00Z","type":"","logger":"","severity":-3,"payload":"é😀/","env_version":"","pid":0,"hostname":"","fields":[]}`},
	}
	for _, c := range cases {
		var m pipeline.Message
		if err := codec.DecodeJSON([]byte(c.in), &m, pipeline.NewBatch()); err != nil {
			t.Errorf("DecodeJSON(%s): %v", c.in, err)
			continue
		}
		if got := string(codec.AppendJSON(nil, &m)); got != c.want {
			t.Errorf("DecodeJSON(%s):\n got %s\nwant %s", c.in, got, c.want)
		}
	}
}

func TestDecodeJSONErrors(t *testing.T) {
	cases := []struct{ in, want string }{
		{``, "message: empty input"},
		{`[]`, "message: JSON object expected"},
		{`{"uuid":"x"}`, `uuid: not a UUID: "x"`},
		{`{"uuid":1}`, `uuid: string expected`},
		{`{"timestamp":"yesterday"}`, `timestamp: not RFC 3339: "yesterday"`},
		{`{"timestamp":"9999-12-31T00:00:00Z"}`, `timestamp: out of range: "9999-12-31T00:00:00Z"`},
		{`{"timestamp":1.5}`, `timestamp: integer nanoseconds expected: 1.5`},
		{`{"timestamp":true}`, `timestamp: RFC 3339 string or integer expected`},
		{`{"severity":"info"}`, `severity: integer expected`},
		{`{"severity":1.5}`, `severity: integer expected`},
		{`{"pid":4294967296}`, `pid: out of range: 4294967296`},
		{`{"type":1}`, `type: string expected`},
		{`{"hostname":null}`, `hostname: string expected`},
		{`{"color":"red"}`, `message: unknown key "color"`},
		{`{"type":"a","type":"b"}`, `message: duplicate key "type"`},
		{`{"fields":{}}`, `fields: array expected`},
		{`{"fields":[1]}`, `fields[0]: object expected`},
		{`{"fields":[{"value":1}]}`, `fields[0]: name missing`},
		{`{"fields":[{"name":"a"}]}`, `fields[0]: value missing`},
		{`{"fields":[{"name":"a","value":1,"unit":"s"}]}`, `fields[0]: unknown key "unit"`},
		{`{"fields":[{"name":"a","type":"text","value":1}]}`, `fields[0].type: unknown type "text"`},
		{`{"fields":[{"name":"a","value":1},{"name":"b","value":1},{"name":"c","type":"integer","value":[1,"2"]}]}`, `fields[2].value[1]: integer expected`},
		{`{"fields":[{"name":"c","value":[1,2.5]}]}`, `fields[0].value[1]: integer expected`},
		{`{"fields":[{"name":"c","type":"integer","value":[99999999999999999999]}]}`, `fields[0].value[0]: integer out of range`},
		{`{"fields":[{"name":"c","type":"double","value":"fast"}]}`, `fields[0].value: double expected, got "fast"`},
		{`{"fields":[{"name":"c","type":"double","value":1e999}]}`, `fields[0].value: double out of range`},
		{`{"fields":[{"name":"c","type":"bytes","value":"!!"}]}`, `fields[0].value: invalid base64`},
		{`{"fields":[{"name":"c","type":"bool","value":[true,1]}]}`, `fields[0].value[1]: bool expected`},
		{`{"fields":[{"name":"c","value":[[1]]}]}`, `fields[0].value[0]: string expected`},
		{`{"fields":[{"name":"c","value":{"a":1}}]}`, `fields[0].value: string expected`},
		{`{"payload":"x"} {}`, `message: offset 16: invalid character '{', expected end of input`},
		{`{"payload":"x"`, `message: offset 14: unexpected end of input, expected ',' or '}'`},
		{`{"payload":"x`, `payload: offset 13: unterminated string`},
		{`{"payload":"a` + "\x01" + `"}`, `payload: offset 13: control character '\x01' in string`},
		{`{"fields":[{"name":"c","value":[1,]}]}`, `fields[0].value: offset 34: invalid character ']', expected value`},
		{`{"fields":[` + strings.Repeat("[", 10000), `fields[0]: object expected`},
	}
	for _, c := range cases {
		var m pipeline.Message
		err := codec.DecodeJSON([]byte(c.in), &m, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("DecodeJSON(%.60s) = %v, want %q", c.in, err, c.want)
		}
	}
}

func TestJSONRoundTripRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	b := pipeline.NewBatch()
	for i := range 3000 {
		m := randMessage(r)
		out := codec.AppendJSON(nil, m)
		if !json.Valid(out) {
			t.Fatalf("#%d: invalid JSON %s", i, out)
		}
		if strings.ContainsAny(string(out), "\n\r\u2028\u2029") {
			t.Fatalf("#%d: raw line break in %s", i, out)
		}
		var back pipeline.Message
		if err := codec.DecodeJSON(out, &back, b); err != nil {
			t.Fatalf("#%d: DecodeJSON(%s): %v", i, out, err)
		}
		if want := sanitized(m); !back.Equal(want) {
			t.Fatalf("#%d: round trip of %s\n got %+v\nwant %+v", i, out, back, *want)
		}
		if again := codec.AppendJSON(nil, &back); string(again) != string(out) {
			t.Fatalf("#%d: not a fixed point:\n%s\n%s", i, out, again)
		}
	}
}

func TestJSONNaNDoubleIsString(t *testing.T) {
	m := pipeline.NewMessage()
	m.AddDouble("x", math.NaN())
	if !strings.Contains(string(codec.AppendJSON(nil, m)), `"value":["NaN"]`) {
		t.Fatal("NaN not written as a string")
	}
}

func FuzzDecodeJSON(f *testing.F) {
	f.Add([]byte(goldenJSON))
	f.Add([]byte(`{"fields":[{"value":[1,2],"name":"i"},{"name":"d","type":"double","value":"NaN"}],"timestamp":1}`))
	f.Add(codec.AppendJSON(nil, w2Message()))
	if seeds, _ := filepath.Glob("../decoders/json/testdata/*/input.txt"); len(seeds) > 0 {
		for _, p := range seeds {
			if data, err := os.ReadFile(p); err == nil {
				for line := range strings.SplitSeq(string(data), "\n") {
					f.Add([]byte(line))
				}
			}
		}
	}
	b := pipeline.NewBatch() // reused: a fresh batch costs 40 KiB per run
	f.Fuzz(func(t *testing.T, data []byte) {
		var m pipeline.Message
		b.Truncate(0)
		if err := codec.DecodeJSON(data, &m, b); err != nil {
			return
		}
		out := codec.AppendJSON(nil, &m)
		if !json.Valid(out) {
			t.Fatalf("invalid JSON %q", out)
		}
		var m2 pipeline.Message
		if err := codec.DecodeJSON(out, &m2, nil); err != nil {
			t.Fatalf("re-decoding %s: %v", out, err)
		}
		if out2 := codec.AppendJSON(nil, &m2); string(out2) != string(out) {
			t.Fatalf("not a fixed point:\n%s\n%s", out, out2)
		}
	})
}

func BenchmarkAppendJSON(b *testing.B) {
	m := w2Message()
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	defer benchutil.CPU(b)()
	for b.Loop() {
		buf = codec.AppendJSON(buf[:0], m)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkDecodeJSON(b *testing.B) {
	data := codec.AppendJSON(nil, w2Message())
	batch := pipeline.NewBatch()
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	defer benchutil.CPU(b)()
	for b.Loop() {
		if batch.Len() == 256 {
			batch = pipeline.NewBatch()
		}
		if err := codec.DecodeJSON(data, batch.Add(), batch); err != nil {
			b.Fatal(err)
		}
	}
}
