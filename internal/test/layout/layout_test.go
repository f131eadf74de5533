// Package layout checks the import rules that keep tern's house in order:
// the contract (pipeline/) imports no plugin, plugins import no other
// plugin, and test support is imported only by tests.
package layout

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/ternlog/tern"

type pkg struct {
	ImportPath   string
	Dir          string
	Name         string
	GoFiles      []string
	Imports      []string
	TestImports  []string
	XTestImports []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", mod+"/...").Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if len(pkgs) < 50 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

var pluginKinds = []string{"inputs", "decoders", "filters", "encoders", "outputs"}

// plugin returns the plugin a package belongs to ("inputs/tail"), or "" for
// a package that is no plugin (a kind's registry included).
func plugin(path string) string {
	rel, ok := strings.CutPrefix(path, mod+"/")
	if !ok {
		return ""
	}
	parts := strings.Split(rel, "/")
	for _, k := range pluginKinds {
		if parts[0] == k && len(parts) >= 2 {
			return k + "/" + parts[1]
		}
	}
	return ""
}

// testSupport reports whether path is a package only tests may import.
func testSupport(path string) bool {
	return strings.HasPrefix(path, mod+"/internal/testutil/") ||
		strings.HasPrefix(path, mod+"/internal/test/") ||
		path == mod+"/pipeline/pipelinetest"
}

func local(path string) bool { return path == mod || strings.HasPrefix(path, mod+"/") }

func TestImportRules(t *testing.T) {
	pkgs := listPackages(t)
	checked := 0
	for _, p := range pkgs {
		self := plugin(p.ImportPath)
		for _, imp := range p.Imports {
			if !local(imp) {
				continue
			}
			checked++
			// Only test support itself builds on test support.
			if testSupport(imp) && !testSupport(p.ImportPath) {
				t.Errorf("%s (production code) imports test support %s", p.ImportPath, imp)
			}
			switch {
			case strings.HasPrefix(p.ImportPath, mod+"/pipeline") && !testSupport(p.ImportPath):
				// The contract and the engine know no plugin, command or client.
				if !strings.HasPrefix(imp, mod+"/pipeline") && !strings.HasPrefix(imp, mod+"/internal/") {
					t.Errorf("%s imports %s: pipeline/ imports only pipeline/ and internal/", p.ImportPath, imp)
				}
			case self != "":
				// A plugin builds on the contract and production internal
				// packages, never on another plugin, a command or the client.
				if other := plugin(imp); other != "" && other != self {
					t.Errorf("plugin %s imports plugin %s", self, other)
				}
				if !strings.HasPrefix(imp, mod+"/pipeline") && !strings.HasPrefix(imp, mod+"/internal/") && plugin(imp) != self {
					t.Errorf("plugin %s imports %s: plugins import only pipeline/ and internal/", self, imp)
				}
			case strings.HasPrefix(p.ImportPath, mod+"/internal/") && !testSupport(p.ImportPath):
				// Shared production code sits below the plugins.
				if plugin(imp) != "" || strings.HasPrefix(imp, mod+"/cmd/") || strings.HasPrefix(imp, mod+"/client") {
					t.Errorf("%s imports %s: internal/ packages import no plugin, command or client", p.ImportPath, imp)
				}
			}
		}
		// Tests of a plugin may use test support, but still no other plugin.
		if self != "" {
			for _, imp := range append(append([]string(nil), p.TestImports...), p.XTestImports...) {
				if other := plugin(imp); other != "" && other != self {
					t.Errorf("tests of plugin %s import plugin %s", self, other)
				}
			}
		}
		// internal/test/ packages are tests only: no code a build could use.
		if strings.HasPrefix(p.ImportPath, mod+"/internal/test/") {
			for _, f := range p.GoFiles {
				if f != "doc.go" {
					t.Errorf("%s: %s is not a test file; internal/test holds tests only", p.ImportPath, f)
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no local imports checked")
	}
}
