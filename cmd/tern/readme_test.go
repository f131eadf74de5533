package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/engine"
)

// The README's plugin table lists every registered plugin with its
// factory's Summary (what `tern plugins` prints), and every link in it
// leads to a file that exists.
func TestREADMEListsEveryPlugin(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, p := range pluginTypes(registry()) {
		row := "| " + strings.TrimSuffix(p.kind, "s") + " | [" + p.typ + "](" + p.kind + "/" + p.typ + "/README.md) | " + p.summary + " |"
		if !strings.Contains(readme, row) {
			t.Errorf("README.md: no plugin table row %q", row)
		}
	}
	for _, m := range regexp.MustCompile(`\]\(([^)#]+)\)`).FindAllStringSubmatch(readme, -1) {
		if strings.Contains(m[1], "://") {
			continue
		}
		if _, err := os.Stat(filepath.Join("../..", m[1])); err != nil {
			t.Errorf("README.md links to %s, which does not exist", m[1])
		}
	}
}

// Every TOML example in the READMEs is valid, as tern check sees it.
// Paths in them are relative to the repository root; files an example
// names that only an operator has (certificates) are not looked for.
// Examples without an input get a stub one; fragments of a table (no
// section header) are skipped.
func TestREADMEConfigExamplesCheck(t *testing.T) {
	files := []string{"../../README.md"}
	for _, pattern := range []string{"../../*/*/README.md", "../../*/*/*/README.md"} {
		more, _ := filepath.Glob(pattern)
		files = append(files, more...)
	}
	block := regexp.MustCompile("(?s)```toml\n(.*?)```")
	header, input := regexp.MustCompile(`(?m)^\[`), regexp.MustCompile(`(?m)^\[inputs\.`)
	reg := registry()
	checked := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, blk := range block.FindAllSubmatch(b, -1) {
			src := blk[1]
			if !header.Match(src) {
				continue
			}
			if !input.Match(src) {
				src = append(append([]byte{}, src...), "\n[inputs.readme_stub]\ntype = \"stdin\"\ndecoder = \"payload\"\n"...)
			}
			checked++
			plan, err := config.Parse("../../README.md", src, reg, config.Options{})
			if err == nil {
				var e *engine.Engine
				if e, err = engine.New(plan, reg, engine.Options{NewBuffer: checkBuffer}); err == nil {
					err = e.Check()
				}
			}
			if err != nil && !strings.Contains(err.Error(), "/tls/") {
				t.Errorf("%s, TOML example %d (line numbers count from the block):\n%v", f, i+1, err)
			}
		}
	}
	t.Logf("%d TOML examples in %d READMEs", checked, len(files))
}
