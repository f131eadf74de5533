package pipelinetest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
)

// CheckKind enforces the house rules for every plugin directory under
// kindDir (e.g. "." from inputs/registry_test.go): the directory name is the
// registered type, the folder has <name>.go, <name>_test.go, sample.toml and
// README.md, the README quotes sample.toml verbatim, the factory embeds it,
// the sample is a valid config for the plugin, and the factory has a
// one-line Summary.
func CheckKind[P any](t *testing.T, kind, kindDir string, fs []pipeline.Factory[P]) {
	t.Helper()
	byType := map[string]pipeline.Factory[P]{}
	for _, f := range fs {
		byType[f.Type] = f
	}
	ents, err := os.ReadDir(kindDir)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range ents {
		name := e.Name()
		if !e.IsDir() || name == "internal" || name == "testdata" || strings.HasPrefix(name, ".") {
			continue
		}
		seen[name] = true
		dir := filepath.Join(kindDir, name)
		t.Run(name, func(t *testing.T) {
			f, ok := byType[name]
			if !ok {
				t.Fatalf("%s: no factory with type %q in %s/registry.go", dir, name, kind)
			}
			for _, file := range []string{name + ".go", name + "_test.go", "sample.toml", "README.md"} {
				if _, err := os.Stat(filepath.Join(dir, file)); err != nil {
					t.Errorf("%s: missing %s", dir, file)
				}
			}
			sample, err := os.ReadFile(filepath.Join(dir, "sample.toml"))
			if err != nil {
				return
			}
			if f.Summary == "" || strings.ContainsAny(f.Summary, "\n") || strings.HasSuffix(f.Summary, ".") {
				t.Errorf("%s: the factory needs a one-line Summary without a final period (WithSummary), not %q", dir, f.Summary)
			}
			if f.Sample != string(sample) {
				t.Errorf("%s: the factory's Sample is not sample.toml (embed it)", dir)
			}
			readme, _ := os.ReadFile(filepath.Join(dir, "README.md"))
			if !strings.Contains(string(readme), "```toml\n"+string(sample)+"```") {
				t.Errorf("%s: README.md must contain sample.toml verbatim in a ```toml fence", dir)
			}
			CheckSample(t, kind, f)
		})
	}
	for typ := range byType {
		if !seen[typ] {
			t.Errorf("%s type %q has no directory %s/%s", kind, typ, kindDir, typ)
		}
	}
}

// CheckSample decodes the plugin table of f.Sample ([<kind>.<name>]) into
// the plugin's config, strictly, and validates it.
func CheckSample[P any](t *testing.T, kind string, f pipeline.Factory[P]) {
	t.Helper()
	var doc map[string]map[string]toml.Primitive
	md, err := toml.Decode(f.Sample, &doc)
	if err != nil {
		t.Fatalf("sample.toml: %v", err)
	}
	tables := doc[kind]
	if len(tables) == 0 {
		t.Fatalf("sample.toml: no [%s.<name>] table", kind)
	}
	for name, prim := range tables {
		cfg := f.NewConfig()
		if err := md.PrimitiveDecode(prim, cfg); err != nil {
			t.Errorf("sample.toml [%s.%s]: %v", kind, name, err)
			continue
		}
		var typ struct {
			Type string `toml:"type"`
		}
		_ = md.PrimitiveDecode(prim, &typ)
		if typ.Type != f.Type {
			t.Errorf("sample.toml [%s.%s]: type = %q, want %q", kind, name, typ.Type, f.Type)
		}
		if v, ok := cfg.(pipeline.Validator); ok {
			if err := v.Validate(); err != nil {
				t.Errorf("sample.toml [%s.%s] does not validate: %v", kind, name, err)
			}
		}
	}
	for _, k := range md.Undecoded() {
		if len(k) >= 3 && !config.EngineKey(k[0], k[2]) {
			t.Errorf("sample.toml: key %s is not in the plugin's Config", k)
		}
	}
}
