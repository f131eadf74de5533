package config

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/ternlog/tern/pipeline"
)

// DecodeOptions applies command-line plugin options ("key=value", as given
// to `tern decode -o`) to cfg, a pointer returned by Factory.NewConfig. A
// value that is valid TOML keeps its type (numbers, booleans, arrays);
// anything else is taken as a string. Unknown keys are errors.
func DecodeOptions(cfg any, opts []string) error {
	var doc strings.Builder
	for _, o := range opts {
		k, v, ok := strings.Cut(o, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return fmt.Errorf("option %q: want key=value", o)
		}
		var probe map[string]any
		if _, err := toml.Decode("x = "+v, &probe); err != nil {
			v = strconv.Quote(v)
		}
		fmt.Fprintf(&doc, "%s = %s\n", k, v)
	}
	md, err := toml.Decode(doc.String(), cfg)
	if err != nil {
		return fmt.Errorf("options: %v", err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return fmt.Errorf("unknown option(s): %s", strings.Join(keys, ", "))
	}
	if v, ok := cfg.(pipeline.Validator); ok {
		return v.Validate()
	}
	return nil
}
