package pipelinetest

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
)

// Case is one testdata/<case>/ folder.
type Case struct {
	Name string
	Dir  string
}

// Cases lists the case folders under dir (default "testdata"), skipping the
// fuzz corpus.
func Cases(t testing.TB, dir string) []Case {
	t.Helper()
	if dir == "" {
		dir = "testdata"
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("reading %s: %v", dir, err)
	}
	var out []Case
	for _, e := range ents {
		if e.IsDir() && e.Name() != "fuzz" {
			out = append(out, Case{Name: e.Name(), Dir: filepath.Join(dir, e.Name())})
		}
	}
	return out
}

// ConfigFor returns the plugin config for a case: the factory's defaults with
// the keys of <case>/config.toml decoded over them (strictly).
func ConfigFor[P any](t testing.TB, f pipeline.Factory[P], c Case) any {
	t.Helper()
	cfg := f.NewConfig()
	src, err := os.ReadFile(filepath.Join(c.Dir, "config.toml"))
	if os.IsNotExist(err) {
		return cfg
	}
	if err != nil {
		t.Fatal(err)
	}
	md, err := toml.Decode(string(src), cfg)
	if err != nil {
		t.Fatalf("%s/config.toml: %v", c.Dir, err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		t.Fatalf("%s/config.toml: unknown keys %v", c.Dir, und)
	}
	return cfg
}

// Decode runs a decoder over records the way the engine does, filling UUID
// (from a fixed seed), Timestamp (Now) and Logger ("test") when the decoder
// left them unset. It returns the messages and the error of each record.
func Decode(d pipeline.Decoder, recs [][]byte) ([]*pipeline.Message, []error) {
	uuid := pipeline.SeededUUIDs(1)
	var msgs []*pipeline.Message
	errs := make([]error, len(recs))
	for i, r := range recs {
		b := pipeline.NewBatch()
		if err := d.Decode(pipeline.Record{Data: r, Source: "test"}, b); err != nil {
			errs[i] = err
			continue
		}
		for _, m := range b.Msgs {
			if m.UUID == ([16]byte{}) {
				m.UUID = uuid()
			}
			if m.Timestamp == 0 {
				m.Timestamp = Now.UnixNano()
			}
			if m.Logger == "" {
				m.Logger = "test"
			}
		}
		msgs = append(msgs, b.Msgs...)
	}
	return msgs, errs
}

// RunDecoderCases runs every testdata/<case>/: input.txt holds one record a
// line, expected.jsonl the canonical JSON of the messages, and expected.err
// (optional) one line per failing record: "record N: <substring of the error>".
// config.toml overrides the factory's defaults.
func RunDecoderCases(t *testing.T, f pipeline.Factory[pipeline.Decoder]) {
	for _, c := range Cases(t, "") {
		t.Run(c.Name, func(t *testing.T) {
			d, err := f.Build(Settings(t, "decoders."+f.Type), ConfigFor(t, f, c))
			if err != nil {
				t.Fatal(err)
			}
			in, err := os.ReadFile(filepath.Join(c.Dir, "input.txt"))
			if err != nil {
				t.Fatal(err)
			}
			msgs, errs := Decode(d, splitRecords(in))
			var got []byte
			for _, m := range msgs {
				got = append(codec.AppendJSON(got, m), '\n')
			}
			Golden(t, filepath.Join(c.Dir, "expected.jsonl"), got)
			var gotErr []byte
			for i, e := range errs {
				if e != nil {
					gotErr = append(gotErr, []byte("record "+itoa(i+1)+": "+e.Error()+"\n")...)
				}
			}
			wantErr, _ := os.ReadFile(filepath.Join(c.Dir, "expected.err"))
			checkErrLines(t, c, wantErr, gotErr)
		})
	}
}

func checkErrLines(t *testing.T, c Case, want, got []byte) {
	t.Helper()
	if *update {
		if len(got) > 0 {
			Golden(t, filepath.Join(c.Dir, "expected.err"), got)
		}
		return
	}
	wl := nonEmptyLines(want)
	gl := nonEmptyLines(got)
	if len(wl) != len(gl) {
		t.Fatalf("errors: want %d, got %d:\n%s", len(wl), len(gl), got)
	}
	for i := range wl {
		if !strings.Contains(gl[i], wl[i]) {
			t.Errorf("error %d: %q does not contain %q", i+1, gl[i], wl[i])
		}
	}
}

// RunEncoderCases runs every testdata/<case>/: input.jsonl holds canonical
// JSON messages, expected.txt the records joined by newlines, expected.err
// (optional) "message N: <substring>" lines.
func RunEncoderCases(t *testing.T, f pipeline.Factory[pipeline.Encoder]) {
	for _, c := range Cases(t, "") {
		t.Run(c.Name, func(t *testing.T) {
			e, err := f.Build(Settings(t, "encoders."+f.Type), ConfigFor(t, f, c))
			if err != nil {
				t.Fatal(err)
			}
			in, err := os.ReadFile(filepath.Join(c.Dir, "input.jsonl"))
			if err != nil {
				t.Fatal(err)
			}
			var got, gotErr []byte
			for i, line := range nonEmptyLines(in) {
				m := pipeline.NewMessage()
				if err := codec.DecodeJSON([]byte(line), m, nil); err != nil {
					t.Fatalf("input.jsonl line %d: %v", i+1, err)
				}
				out, err := e.Encode(nil, m)
				if err != nil {
					gotErr = append(gotErr, []byte("message "+itoa(i+1)+": "+err.Error()+"\n")...)
					continue
				}
				got = append(append(got, out...), '\n')
			}
			Golden(t, filepath.Join(c.Dir, "expected.txt"), got)
			wantErr, _ := os.ReadFile(filepath.Join(c.Dir, "expected.err"))
			checkErrLines(t, c, wantErr, gotErr)
		})
	}
}

// splitRecords splits input.txt into records, one a line; a final newline
// does not make an empty record.
func splitRecords(b []byte) [][]byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	if len(b) == 0 {
		return nil
	}
	return bytes.Split(b, []byte("\n"))
}

func nonEmptyLines(b []byte) []string {
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.TrimSpace(l) != "" {
			out = append(out, l)
		}
	}
	return out
}

func itoa(i int) string { return strconv.Itoa(i) }
