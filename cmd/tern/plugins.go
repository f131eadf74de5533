package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/ternlog/tern/pipeline"
)

// pluginType is one registered plugin type, whatever its kind.
type pluginType struct {
	kind, typ, summary, sample string
}

// The plugin kinds, as config tables name them.
const (
	kindInputs   = "inputs"
	kindDecoders = "decoders"
	kindFilters  = "filters"
	kindEncoders = "encoders"
	kindOutputs  = "outputs"
)

var kinds = []string{kindInputs, kindDecoders, kindFilters, kindEncoders, kindOutputs}

// pluginTypes lists the registry's plugins in kind order, by type within a
// kind.
func pluginTypes(reg *pipeline.Registry) []pluginType {
	var out []pluginType
	add := func(kind string, typ, summary, sample string) {
		out = append(out, pluginType{kind, typ, summary, sample})
	}
	for _, f := range reg.Inputs {
		add(kindInputs, f.Type, f.Summary, f.Sample)
	}
	for _, f := range reg.Decoders {
		add(kindDecoders, f.Type, f.Summary, f.Sample)
	}
	for _, f := range reg.Filters {
		add(kindFilters, f.Type, f.Summary, f.Sample)
	}
	for _, f := range reg.Encoders {
		add(kindEncoders, f.Type, f.Summary, f.Sample)
	}
	for _, f := range reg.Outputs {
		add(kindOutputs, f.Type, f.Summary, f.Sample)
	}
	sort.SliceStable(out, func(i, j int) bool {
		ki, kj := kindIndex(out[i].kind), kindIndex(out[j].kind)
		return ki < kj || ki == kj && out[i].typ < out[j].typ
	})
	return out
}

func kindIndex(k string) int {
	for i, x := range kinds {
		if x == k {
			return i
		}
	}
	return len(kinds)
}

// parseKind accepts a kind in the singular or plural ("filter", "filters").
func parseKind(s string) (string, bool) {
	for _, k := range kinds {
		if s == k || s == strings.TrimSuffix(k, "s") {
			return k, true
		}
	}
	return "", false
}

// typeList prints one kind's types with their summaries under title.
func typeList(w io.Writer, title, kind string) {
	fmt.Fprintf(w, "%s:\n", title)
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	for _, p := range pluginTypes(registry()) {
		if p.kind == kind {
			fmt.Fprintf(tw, "  %s\t%s\n", p.typ, p.summary)
		}
	}
	_ = tw.Flush()
}

// cmdPlugins is `tern plugins [KIND]`.
func cmdPlugins(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("plugins")
	if code, done := parseFlags(fs, "plugins", args, stdout, stderr); done {
		return code
	}
	show := kinds
	switch fs.NArg() {
	case 0:
	case 1:
		k, ok := parseKind(fs.Arg(0))
		if !ok {
			return usageError(stderr, "plugins", fmt.Sprintf("unknown kind %q (known: %s)", fs.Arg(0), strings.Join(kinds, ", ")))
		}
		show = []string{k}
	default:
		return usageError(stderr, "plugins", "want at most one KIND")
	}
	for i, k := range show {
		if i > 0 {
			fmt.Fprintln(stdout)
		}
		typeList(stdout, k, k)
	}
	return 0
}

// cmdConfig is `tern config [KIND] TYPE`: the plugin's sample.toml.
func cmdConfig(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("config")
	if code, done := parseFlags(fs, "config", args, stdout, stderr); done {
		return code
	}
	var kind, typ string
	switch fs.NArg() {
	case 1:
		typ = fs.Arg(0)
	case 2:
		k, ok := parseKind(fs.Arg(0))
		if !ok {
			return usageError(stderr, "config", fmt.Sprintf("unknown kind %q (known: %s)", fs.Arg(0), strings.Join(kinds, ", ")))
		}
		kind, typ = k, fs.Arg(1)
	default:
		return usageError(stderr, "config", "want TYPE or KIND TYPE")
	}
	all := pluginTypes(registry())
	var found []pluginType
	var known []string
	for _, p := range all {
		if kind == "" || p.kind == kind {
			known = append(known, p.typ)
			if p.typ == typ {
				found = append(found, p)
			}
		}
	}
	switch len(found) {
	case 1:
		fmt.Fprint(stdout, found[0].sample)
		return 0
	case 0:
		if hint := didYouMean(typ, known); hint != "" || kind == "" {
			fmt.Fprintf(stderr, "tern config: unknown plugin type %q%s\nrun 'tern plugins' for the list of types\n", typ, hint)
			return 2
		}
		return usageError(stderr, "config", fmt.Sprintf("unknown %s type %q (known: %s)", strings.TrimSuffix(kind, "s"), typ, strings.Join(known, ", ")))
	}
	// The same type in several kinds: say which, and how to ask for each.
	var as, ways []string
	for _, p := range found {
		k := strings.TrimSuffix(p.kind, "s")
		article := "a "
		if k == "input" || k == "encoder" || k == "output" {
			article = "an "
		}
		as = append(as, article+k)
		ways = append(ways, "'tern config "+k+" "+typ+"'")
	}
	fmt.Fprintf(stderr, "tern config: %s is %s type; run %s\n", typ, andList(as, "and"), andList(ways, "or"))
	return 2
}

// andList joins "a", "b" and "c" as "a, b and c" (with conj for "and").
func andList(items []string, conj string) string {
	if len(items) < 2 {
		return strings.Join(items, "")
	}
	return strings.Join(items[:len(items)-1], ", ") + " " + conj + " " + items[len(items)-1]
}
