package roundtrip

import (
	"bytes"
	stdjson "encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	decjson "github.com/ternlog/tern/decoders/json"
	encjson "github.com/ternlog/tern/encoders/json"
	"github.com/ternlog/tern/pipeline"
)

// FuzzFlat feeds whatever the json decoder makes of arbitrary bytes to the
// flat encoder: the output must always be one line of valid UTF-8 JSON,
// and a message without repeated or colliding names must read back with
// the same keys.
func FuzzFlat(f *testing.F) {
	inputs, _ := filepath.Glob("../../../decoders/json/testdata/*/input.txt")
	for _, p := range inputs {
		data, _ := os.ReadFile(p)
		for line := range strings.SplitSeq(string(data), "\n") {
			f.Add([]byte(line))
		}
	}
	f.Add([]byte("{\"a.b\":1,\"a\":{\"c\":[1,2]},\"a.b\":\"\xff\",\"r\":{\"x\":\"\u2028\"}}"))
	dcfg := decjson.DefaultConfig()
	dcfg.Headers = false
	d, _ := decjson.New(pipeline.Settings{}, dcfg)
	rcfg := dcfg
	rcfg.Objects = "json"
	raw, _ := decjson.New(pipeline.Settings{}, rcfg)
	ecfg := encjson.DefaultConfig()
	ecfg.Mode, ecfg.Nest = "flat", true
	e, _ := encjson.New(pipeline.Settings{}, ecfg)
	b := pipeline.NewBatch() // reused: a fresh batch costs 40 KiB per run
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, dec := range []*decjson.Decoder{d, raw} {
			b.Truncate(0)
			if dec.Decode(pipeline.Record{Data: data}, b) != nil {
				return
			}
			out, err := e.Encode(nil, b.Msgs[0])
			if err != nil {
				t.Fatal(err)
			}
			if !stdjson.Valid(out) || !utf8.Valid(out) || strings.ContainsAny(string(out), "\n\r\u2028\u2029") {
				t.Fatalf("bad output %q", out)
			}
			// e keeps layouts of the shapes it met (the third time on,
			// it replays one): what it writes is what an encoder that
			// never met the shape writes.
			fresh, _ := encjson.New(pipeline.Settings{}, ecfg)
			want, _ := fresh.Encode(nil, b.Msgs[0])
			for range 2 {
				if out, _ = e.Encode(nil, b.Msgs[0]); !bytes.Equal(out, want) {
					t.Fatalf("replayed layout:\n got %s\nwant %s", out, want)
				}
			}
		}
	})
}
