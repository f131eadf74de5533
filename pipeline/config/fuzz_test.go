package config_test

import (
	"strings"
	"testing"

	"github.com/ternlog/tern/pipeline/config"
)

// FuzzParse: any text yields a plan or placed errors, never a panic.
func FuzzParse(f *testing.F) {
	f.Add(good)
	f.Add("[inputs.a]\ntype = \"tcp\"\naddress = \"${A:-x}\"\ndecoder = [\"payload\", \"payload\"]\n")
	f.Add("[outputs.o]\ntype = \"file\"\nmessage_matcher = \"Fields[x] =~ /a/\"\n[outputs.o.retries]\ndelay = \"1s\"\n")
	f.Add("a = \"\"\"\nmulti\n\"\"\"\n[[b]]\nc = [1,\n2]\n")
	// Hostile nesting and width: refused, or loaded, in linear time.
	for _, c := range hostileConfigs {
		f.Add(c.src)
	}
	f.Add(hostileHead + strings.Repeat("k = {}\n", 3) + "x = [{a = [1, {b.c = 2}], d = {}}, [[3]]]\ny = \"\"\"[{\n\\\"\"\"\n")
	reg := testRegistry()
	f.Fuzz(func(t *testing.T, src string) {
		plan, err := config.Parse("fuzz.toml", []byte(src), reg, config.Options{Lookup: func(string) (string, bool) { return "v", true }})
		if err == nil && plan == nil {
			t.Fatal("nil plan without error")
		}
	})
}
