package pipeline

import (
	"fmt"
	"sort"
)

// Validator is implemented by plugin configs that check themselves. Validate
// returns every problem it finds (errors.Join); the loader prefixes each with
// the plugin's name and the file position of its section.
type Validator interface {
	Validate() error
}

// Warner is implemented by plugin configs that can spot a likely mistake
// that is not an error, such as a file pattern that matches no file yet.
// `tern check` and `tern run` print each warning and go on. configDir is the
// config file's directory, where relative paths start. Warnings may read the
// file system but must not change it, listen or connect. Each warning reads
// "key: message", like a Validate error.
type Warner interface {
	Warnings(configDir string) []string
}

// Factory makes plugins of one type. P is the plugin kind (Input, Decoder,
// Filter, Encoder or Output).
type Factory[P any] struct {
	// Type is the value of `type = "…"` that selects this plugin.
	Type string
	// Summary says in one line what the plugin does (`tern plugins`, the
	// README's plugin table).
	Summary string
	// Sample is the plugin's sample.toml: every key, with defaults.
	Sample string
	// DefaultEncoder is the encoder an output uses when its config names none.
	DefaultEncoder string

	newConfig func() any
	build     func(Settings, any) (P, error)
}

// NewFactory builds a Factory from a config constructor and a plugin
// constructor. defaults returns the config with every default filled in; the
// loader decodes the user's keys over it. build must do no I/O and start no
// goroutines: it may run for `tern check` only.
func NewFactory[C any, P any](typ, sample string, defaults func() C, build func(Settings, C) (P, error)) Factory[P] {
	return Factory[P]{
		Type:   typ,
		Sample: sample,
		newConfig: func() any {
			c := defaults()
			return &c
		},
		build: func(s Settings, cfg any) (P, error) {
			return build(s, *cfg.(*C))
		},
	}
}

// WithDefaultEncoder returns f with DefaultEncoder set.
func (f Factory[P]) WithDefaultEncoder(name string) Factory[P] {
	f.DefaultEncoder = name
	return f
}

// WithSummary returns f with Summary set.
func (f Factory[P]) WithSummary(s string) Factory[P] {
	f.Summary = s
	return f
}

// NewConfig returns a pointer to a config filled with defaults.
func (f Factory[P]) NewConfig() any { return f.newConfig() }

// Build makes a plugin from a config returned by NewConfig. It calls the
// config's Validate first when it has one.
func (f Factory[P]) Build(s Settings, cfg any) (P, error) {
	if v, ok := cfg.(Validator); ok {
		if err := v.Validate(); err != nil {
			var zero P
			return zero, err
		}
	}
	return f.build(s, cfg)
}

// Registry is the set of plugin types a binary knows. Each kind's list lives
// in its directory's registry.go (inputs.Factories() and so on).
type Registry struct {
	Inputs   []Factory[Input]
	Decoders []Factory[Decoder]
	Filters  []Factory[Filter]
	Encoders []Factory[Encoder]
	Outputs  []Factory[Output]
}

// Validate rejects duplicate type names within a kind.
func (r *Registry) Validate() error {
	check := func(kind string, types []string) error {
		seen := map[string]bool{}
		for _, t := range types {
			if seen[t] {
				return fmt.Errorf("registry: %s type %q registered twice", kind, t)
			}
			seen[t] = true
		}
		return nil
	}
	for _, k := range []struct {
		kind  string
		types []string
	}{
		{"input", types(r.Inputs)}, {"decoder", types(r.Decoders)}, {"filter", types(r.Filters)},
		{"encoder", types(r.Encoders)}, {"output", types(r.Outputs)},
	} {
		if err := check(k.kind, k.types); err != nil {
			return err
		}
	}
	return nil
}

func types[P any](fs []Factory[P]) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.Type
	}
	return out
}

// Types lists the registered type names of a kind, sorted.
func Types[P any](fs []Factory[P]) []string {
	t := types(fs)
	sort.Strings(t)
	return t
}

// Lookup finds the factory for typ.
func Lookup[P any](fs []Factory[P], typ string) (Factory[P], bool) {
	for _, f := range fs {
		if f.Type == typ {
			return f, true
		}
	}
	return Factory[P]{}, false
}
