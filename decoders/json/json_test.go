package json_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/ternlog/tern/decoders/json"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

// loadConfig decodes dir/config.toml, when there is one, over the defaults.
func loadConfig(t testing.TB, dir string) json.Config {
	t.Helper()
	return *pipelinetest.ConfigFor(t, json.Factory(), pipelinetest.Case{Dir: dir}).(*json.Config)
}

// records splits input.txt into records, one per line.
func records(data []byte) [][]byte {
	var out [][]byte
	for line := range bytes.SplitSeq(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		out = append(out, line)
	}
	return out
}

// golden renders a message as in expected.jsonl: the canonical form, with
// the zero UUID left out (the engine assigns UUIDs).
func golden(m *pipeline.Message) string {
	s := string(codec.AppendJSON(nil, m))
	return strings.Replace(s, `"uuid":"00000000-0000-0000-0000-000000000000",`, "", 1)
}

func TestCases(t *testing.T) {
	dirs, _ := filepath.Glob("testdata/*/input.txt")
	if len(dirs) == 0 {
		t.Fatal("no testdata cases")
	}
	for _, input := range dirs {
		dir := filepath.Dir(input)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			d, err := json.New(pipeline.Settings{}, loadConfig(t, dir))
			if err != nil {
				t.Fatal(err)
			}
			input, err := os.ReadFile(filepath.Join(dir, "input.txt"))
			if err != nil {
				t.Fatal(err)
			}
			var got strings.Builder
			var errs []string
			b := pipeline.NewBatch()
			for _, rec := range records(input) {
				n := b.Len()
				if err := d.Decode(pipeline.Record{Data: rec}, b); err != nil {
					if b.Len() != n {
						t.Errorf("failed decode left %d messages", b.Len()-n)
					}
					errs = append(errs, err.Error())
					continue
				}
				for _, m := range b.Msgs[n:] {
					got.WriteString(golden(m) + "\n")
				}
			}
			pipelinetest.Golden(t, filepath.Join(dir, "expected.jsonl"), []byte(got.String()))
			if len(errs) > 0 || exists(filepath.Join(dir, "expected.err")) {
				pipelinetest.Golden(t, filepath.Join(dir, "expected.err"), []byte(strings.Join(errs, "\n")+"\n"))
			}
		})
	}
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
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
	if !strings.HasPrefix(sample, "[decoders.json]\ntype = \"json\"\n") {
		t.Error("sample.toml does not start with the table and its type")
	}
}

func TestFactory(t *testing.T) {
	f := json.Factory()
	if f.Type != "json" {
		t.Fatal(f.Type)
	}
	cfg := f.NewConfig()
	if _, err := f.Build(pipeline.Settings{}, cfg); err != nil {
		t.Fatal(err)
	}
	c := cfg.(*json.Config)
	c.Format = "yaml"
	c.MaxDepth = 0
	c.HeaderKeys.Pid = "uuid"
	_, err := f.Build(pipeline.Settings{}, c)
	for _, want := range []string{`format: "yaml"`, "max_depth: 0", `header_keys: "uuid" used twice`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Build error %v lacks %q", err, want)
		}
	}
}

func TestDecodeConcurrent(t *testing.T) {
	d, err := json.New(pipeline.Settings{}, json.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	rec := []byte(`{"a":{"b":{"c":"x\u00e9"}},"n":[1,2,3],"timestamp":1.5}`)
	want := `{"timestamp":"1970-01-01T00:00:01.5Z","type":"","logger":"","severity":7,"payload":"","env_version":"","pid":0,"hostname":"","fields":[{"name":"a.b.c","type":"string","value":["xé"]},{"name":"n","type":"integer","value":[1,2,3]}]}`
	done := make(chan struct{})
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 2000 {
				b := pipeline.NewBatch()
				if err := d.Decode(pipeline.Record{Data: rec}, b); err != nil {
					t.Error(err)
					return
				}
				if got := golden(b.Msgs[0]); got != want {
					t.Errorf("got %s", got)
					return
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
}

func TestDeepNesting(t *testing.T) {
	d, _ := json.New(pipeline.Settings{}, json.DefaultConfig())
	deep := strings.Repeat(`{"a":`, 100000) + "1" + strings.Repeat("}", 100000)
	b := pipeline.NewBatch()
	if err := d.Decode(pipeline.Record{Data: []byte(deep)}, b); err == nil || b.Len() != 0 {
		t.Fatalf("100000 levels: %v, %d messages", err, b.Len())
	}
	ok := strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100)
	if err := d.Decode(pipeline.Record{Data: []byte(ok)}, b); err != nil {
		t.Fatal(err)
	}
	f := &b.Msgs[0].Fields[0]
	if f.Name != "a.a.a.a.a.a.a.a" || f.Representation() != "json" {
		t.Fatalf("field %q repr %q", f.Name, f.Representation())
	}
}

func FuzzDecode(f *testing.F) {
	dirs, _ := filepath.Glob("testdata/*/input.txt")
	for _, p := range dirs {
		data, _ := os.ReadFile(p)
		for _, rec := range records(data) {
			f.Add(rec, false)
		}
	}
	f.Add([]byte(`{"a":[1,2.5,"x",null,{"b":[]}],"timestamp":-1e3}`), true)
	flat, _ := json.New(pipeline.Settings{}, json.DefaultConfig())
	cfg := json.DefaultConfig()
	cfg.Objects, cfg.Nulls, cfg.TimestampUnit, cfg.MaxDepth = "json", "json", "ms", 2
	raw, _ := json.New(pipeline.Settings{}, cfg)
	b := pipeline.NewBatch() // reused: a fresh batch costs 40 KiB per run
	f.Fuzz(func(t *testing.T, data []byte, alt bool) {
		d := flat
		if alt {
			d = raw
		}
		b.Truncate(0)
		if err := d.Decode(pipeline.Record{Data: data}, b); err != nil {
			if b.Len() != 0 {
				t.Fatal("messages left after an error")
			}
			return
		}
		if b.Len() != 1 {
			t.Fatalf("%d messages", b.Len())
		}
		// Whatever was decoded has a canonical form that reads back.
		out := codec.AppendJSON(nil, b.Msgs[0])
		var m pipeline.Message
		if err := codec.DecodeJSON(out, &m, nil); err != nil {
			t.Fatalf("canonical form of the result does not decode: %v\n%s", err, out)
		}
	})
}
