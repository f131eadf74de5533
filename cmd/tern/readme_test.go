package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/ternlog/tern/pipeline"
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
