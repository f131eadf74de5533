package json_test

import (
	"bytes"
	stdjson "encoding/json"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/ternlog/tern/encoders/json"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

// loadConfig decodes dir/config.toml, when there is one, over the defaults.
func loadConfig(t testing.TB, dir string) json.Config {
	t.Helper()
	return *pipelinetest.ConfigFor(t, json.Factory(), pipelinetest.Case{Dir: dir}).(*json.Config)
}

// readMessages reads canonical JSON messages, one per line.
func readMessages(t testing.TB, path string) []*pipeline.Message {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []*pipeline.Message
	for line := range bytes.SplitSeq(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		m := pipeline.NewMessage()
		if err := codec.DecodeJSON(line, m, nil); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, m)
	}
	return out
}

// counter is a Telemetry that records utf8_replaced_total.
type counter struct {
	pipeline.NopTelemetry
	n float64
}

func (c *counter) Counter(name, _ string, _ ...string) func(float64, ...string) {
	if name != "utf8_replaced_total" {
		return func(float64, ...string) {}
	}
	return func(d float64, _ ...string) { c.n += d }
}

func TestCases(t *testing.T) {
	inputs, _ := filepath.Glob("testdata/*/input.jsonl")
	if len(inputs) == 0 {
		t.Fatal("no testdata cases")
	}
	for _, input := range inputs {
		dir := filepath.Dir(input)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			tel := &counter{}
			e, err := json.New(pipeline.Settings{Telemetry: tel}, loadConfig(t, dir))
			if err != nil {
				t.Fatal(err)
			}
			var got []byte
			for _, m := range readMessages(t, input) {
				start := len(got)
				got, err = e.Encode(got, m)
				if err != nil {
					t.Fatal(err)
				}
				if !stdjson.Valid(got[start:]) {
					t.Errorf("invalid JSON: %s", got[start:])
				}
				got = append(got, '\n')
			}
			if tel.n > 0 {
				got = append(got, "# utf8_replaced_total "...)
				got = strconv.AppendFloat(got, tel.n, 'f', -1, 64)
				got = append(got, '\n')
			}
			pipelinetest.Golden(t, filepath.Join(dir, "expected.jsonl"), got)
		})
	}
}

func TestReadmeHasSample(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	sample := json.Factory().Sample
	if !strings.Contains(string(readme), "```toml\n"+sample+"```\n") {
		t.Error("README.md does not quote sample.toml verbatim in a toml fence")
	}
	var v map[string]any
	if _, err := toml.Decode(sample, &v); err != nil {
		t.Errorf("sample.toml: %v", err)
	}
	if !strings.HasPrefix(sample, "[encoders.json]\ntype = \"json\"\n") {
		t.Error("sample.toml does not start with the table and its type")
	}
}

func TestFactory(t *testing.T) {
	f := json.Factory()
	cfg := f.NewConfig()
	if _, err := f.Build(pipeline.Settings{}, cfg); err != nil {
		t.Fatal(err)
	}
	c := cfg.(*json.Config)
	c.Mode = "pretty"
	c.Headers = []string{"timestamp", "color", "timestamp"}
	c.TimestampFormat = "iso"
	_, err := f.Build(pipeline.Settings{}, c)
	for _, want := range []string{`mode: "pretty"`, `unknown header "color"`, `"timestamp" listed twice`, `unknown format "iso"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Build error %v lacks %q", err, want)
		}
	}
}

// The canonical mode is AppendJSON.
func TestCanonicalIsAppendJSON(t *testing.T) {
	e, _ := json.New(pipeline.Settings{}, json.DefaultConfig())
	m := pipeline.NewMessage()
	m.Payload = "x\xff"
	m.AddDouble("nan", math.NaN())
	got, _ := e.Encode([]byte("prefix"), m)
	if want := append([]byte("prefix"), codec.AppendJSON(nil, m)...); !bytes.Equal(got, want) {
		t.Fatalf("got %s", got)
	}
}

func TestFlatManyFields(t *testing.T) {
	cfg := json.DefaultConfig()
	cfg.Mode, cfg.Nest, cfg.Headers = "flat", true, nil
	e, _ := json.New(pipeline.Settings{}, cfg)
	m := pipeline.NewMessage()
	for i := range 1000 {
		m.AddInt(strings.Repeat("k", i%7+1), int64(i))
	}
	out, _ := e.Encode(nil, m)
	var v map[string][]int
	if err := stdjson.Unmarshal(out, &v); err != nil || len(v) != 7 || len(v["k"]) != 143 {
		t.Fatalf("%v %d", err, len(v))
	}
}

func TestFlatNoDuplicateKeys(t *testing.T) {
	cfg := json.DefaultConfig()
	cfg.Mode, cfg.Nest, cfg.Headers = "flat", true, nil
	e, _ := json.New(pipeline.Settings{}, cfg)
	m := pipeline.NewMessage()
	m.AddString("a.x", "1")
	m.AddString("b", "2")
	m.AddString("a.y.z", "3")
	m.AddString("c.d", "4")
	m.AddString("c", "5") // c is taken: c.d stays dotted
	m.AddString("a.x", "6")
	m.AddString("e.", "7")
	m.AddString(".f", "8")
	out, _ := e.Encode(nil, m)
	want := `{"a":{"x":["1","6"],"y":{"z":"3"}},"b":"2","c.d":"4","c":"5","e.":"7",".f":"8"}`
	if string(out) != want {
		t.Fatalf("got  %s\nwant %s", out, want)
	}
}

func TestFlatNestDepthCapped(t *testing.T) {
	cfg := json.DefaultConfig()
	cfg.Mode, cfg.Nest, cfg.Headers = "flat", true, nil
	e, _ := json.New(pipeline.Settings{}, cfg)
	m := pipeline.NewMessage()
	m.AddInt(strings.Repeat("a.", 1<<20)+"z", 1)
	out, _ := e.Encode(nil, m)
	if !stdjson.Valid(out) || strings.Count(string(out), "{") != 65 {
		t.Fatalf("%d objects", strings.Count(string(out), "{"))
	}
}

// A repeated name is found however many distinct names lie between its
// uses (findRepeats scans earlier names only when a hash bit collides).
func TestFlatRepeatAmongManyNames(t *testing.T) {
	cfg := json.DefaultConfig()
	cfg.Mode, cfg.Headers = "flat", nil
	e, _ := json.New(pipeline.Settings{}, cfg)
	for _, n := range []int{1, 10, 100, 255} {
		m := pipeline.NewMessage()
		m.AddInt("dup", 0)
		for i := range n {
			m.AddInt("k"+strconv.Itoa(i), int64(i))
		}
		m.AddInt("dup", 1)
		out, err := e.Encode(nil, m)
		if err != nil {
			t.Fatal(err)
		}
		var v map[string]any
		if err := stdjson.Unmarshal(out, &v); err != nil || len(v) != n+1 {
			t.Fatalf("%d names: %v, %d keys in %s", n, err, len(v), out)
		}
		if d, ok := v["dup"].([]any); !ok || len(d) != 2 {
			t.Fatalf("%d names: dup = %v", n, v["dup"])
		}
	}
}

// BenchmarkEncodeFlatNest encodes a message shaped like W2's (bench/w2.toml).
func BenchmarkEncodeFlatNest(b *testing.B) {
	cfg := json.DefaultConfig()
	cfg.Mode, cfg.Nest, cfg.Headers, cfg.TimestampFormat = "flat", true, []string{"timestamp"}, "rfc3339milli"
	e, err := json.New(pipeline.Settings{}, cfg)
	if err != nil {
		b.Fatal(err)
	}
	m := pipelinetest.W2Message() // plus the bool and the array W2 has
	m.AddBool("cached", false)
	m.AddField(pipeline.NewField("tags", pipeline.TypeString, "", pipeline.StringValue("ams2"), pipeline.StringValue("prod")))
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = e.Encode(buf[:0], m)
	}
}
