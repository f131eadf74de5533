package config

import (
	"os"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// depth is how deep the decoded value v nests: map keys and array
// elements on the path to its deepest value.
func depth(v any) int {
	d := 0
	switch v := v.(type) {
	case map[string]any:
		for _, e := range v {
			d = max(d, 1+depth(e))
		}
	case []map[string]any:
		for _, e := range v {
			d = max(d, 1+depth(e))
		}
	case []any:
		for _, e := range v {
			d = max(d, 1+depth(e))
		}
	}
	return d
}

// FuzzPrescan checks the pre-scan against the decoder on text both accept:
// what the pre-scan lets through nests at most 2×MaxNesting deep (a table
// header's parts may each pass through an array of tables), and what it
// refuses nests at least MaxNesting deep (an empty array is counted one
// level deeper than it holds anything).
func FuzzPrescan(f *testing.F) {
	for _, s := range []string{
		"[a.b]\nc.d = [1, {e = [2]}]\n",
		"x = \"[[[{{{\"\ny = '''\n[[[\n'''\n# [[[[\n",
		"[[a]]\n[[a.b]]\n[a.b.c]\nd = 1\n",
		"x = " + strings.Repeat("[", 33) + strings.Repeat("]", 33) + "\n",
		"x = " + strings.Repeat("{a = ", 32) + "1" + strings.Repeat("}", 32) + "\n",
		strings.Repeat("a.", 32) + "a = 1\n",
		"a = \"\"\"\\\"\"\"\"\nb = [\n  1, # ]\n  2,\n]\n",
	} {
		f.Add(s)
	}
	for _, p := range []string{"../../plugins.toml", "../../examples/kafka.toml"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(string(b))
		}
	}
	f.Fuzz(func(t *testing.T, src string) {
		line := prescan([]byte(src))
		if line > 0 && len(src) > 4096 {
			return // refused; deep and long text costs the decoder too much to check
		}
		var v map[string]any
		if _, err := toml.Decode(src, &v); err != nil {
			return
		}
		d := depth(v)
		if line == 0 && d > 2*MaxNesting {
			t.Fatalf("accepted, but nests %d deep", d)
		}
		if line > 0 && d < MaxNesting {
			t.Fatalf("refused at line %d, but nests only %d deep", line, d)
		}
	})
}
