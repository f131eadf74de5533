package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/engine"
)

// The README's plugin table lists every registered plugin, and every link in
// it leads to a file that exists.
func TestREADMEListsEveryPlugin(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	reg := registry()
	check := func(kind, dir string, types []string) {
		for _, typ := range types {
			row := "| " + kind + " | [" + typ + "](" + dir + "/" + typ + "/README.md) |"
			if !strings.Contains(readme, row) {
				t.Errorf("README.md: no plugin table row %q", row)
			}
		}
	}
	check("input", "inputs", pipeline.Types(reg.Inputs))
	check("decoder", "decoders", pipeline.Types(reg.Decoders))
	check("filter", "filters", pipeline.Types(reg.Filters))
	check("encoder", "encoders", pipeline.Types(reg.Encoders))
	check("output", "outputs", pipeline.Types(reg.Outputs))
	for _, m := range regexp.MustCompile(`\]\(([^)#]+)\)`).FindAllStringSubmatch(readme, -1) {
		if strings.Contains(m[1], "://") {
			continue
		}
		if _, err := os.Stat(filepath.Join("../..", m[1])); err != nil {
			t.Errorf("README.md links to %s, which does not exist", m[1])
		}
	}
}

// Every TOML example in the README is a valid config, as tern check sees
// it (paths in it are relative to the repository root).
func TestREADMEConfigExamplesCheck(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile("(?s)```toml\n(.*?)```").FindAllSubmatch(b, -1)
	if len(blocks) == 0 {
		t.Fatal("no TOML example in README.md")
	}
	reg := registry()
	for i, blk := range blocks {
		plan, err := config.Parse("../../README.md", blk[1], reg, config.Options{})
		if err == nil {
			var e *engine.Engine
			if e, err = engine.New(plan, reg, engine.Options{NewBuffer: checkBuffer}); err == nil {
				err = e.Check()
			}
		}
		if err != nil {
			t.Errorf("README.md TOML example %d (line numbers count from the block):\n%v", i+1, err)
		}
	}
}
