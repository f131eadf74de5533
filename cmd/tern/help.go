package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// verb is one of tern's commands. Its help has the same sections for every
// verb: Usage, Description, Flags (from its FlagSet), any extra section, and
// Examples.
type verb struct {
	name    string
	group   string // heading in `tern help`
	usage   string // the synopsis, after "tern "
	summary string // one line, lower-case, for `tern help`
	desc    string // one paragraph
	// extra prints sections after Flags (decode lists its decoder types).
	extra    func(w io.Writer)
	examples []string
	run      func(args []string, stdin io.Reader, stdout, stderr io.Writer) int
}

// groups orders the headings of `tern help`.
var groups = []string{"Configure and run", "Work with messages", "Talk to a running tern", "About tern"}

// verbs lists every verb; `tern help` shows them in this order. It is
// filled in init because the verbs' own code reads it (their -h).
var verbs []*verb

func init() {
	verbs = []*verb{
		{
			name: "run", group: groups[0], usage: "[run] [-config FILE] [-cpuprofile FILE]",
			summary: "run the pipeline of a config (the default verb)",
			desc: `Validates the config exactly as tern check does and refuses to start,
printing every error, when it has any; warnings are logged. Then it runs every
input, filter and output until SIGINT or SIGTERM: inputs stop first and what
they read is delivered before tern exits (a second signal exits at once).
SIGHUP reloads the config: a config with errors is logged and the running
pipeline goes on. Metrics, health and state are served at [tern]
metrics_address.`,
			examples: []string{
				"tern run -config /etc/tern/plugins.toml",
				"tern                     # runs ./plugins.toml",
			},
			run: cmdRun,
		},
		{
			name: "check", group: groups[0], usage: "check [-config FILE]",
			summary: "validate a config without starting it",
			desc: `Loads the config and builds every plugin as tern run does, reads the
scripts, alert definitions and certificates it names, and reports every
mistake at once as file:line: key: message, with exit code 1. Warnings, such
as a tail pattern that matches no file yet, are printed but do not fail the
check. It opens no socket and writes no file.`,
			examples: []string{"tern check -config plugins.toml"},
			run:      cmdCheck,
		},
		{
			name: "test", group: groups[0], usage: "test [-config FILE] [-v] TESTS...",
			summary: "run a config's unit tests",
			desc: `Runs the tests in each TESTS file (TOML) against the config, as
vector test does: each test feeds records to a named input (decoded by its
decoder chain) or canonical JSON messages, lets simulated time pass (filters'
timers fire at every ticker_interval), and asserts what each filter and
output received (by matcher, field values, count and encoded text) and the
alerts filters raised (title, severity, sources, update...), after a step
or at the end. Filters, decoders and encoders run for real; inputs do not
read and outputs do not write. A failed assertion shows what was received
instead. Prints "N tests, M failed"; exit code 1 when a test fails, 2 when
the config or a tests file is wrong.`,
			examples: []string{
				"tern test -config plugins.toml plugins_test.toml",
				"tern test -v -config /etc/tern/plugins.toml /etc/tern/tests/*.toml",
			},
			run: cmdTest,
		},
		{
			name: "plugins", group: groups[0], usage: "plugins [KIND]",
			summary: "list the plugin types by kind",
			desc: `Lists every plugin type this binary knows with a one-line summary, by kind
(inputs, decoders, filters, encoders, outputs), or only those of KIND.
tern config TYPE prints a type's sample config.`,
			examples: []string{"tern plugins", "tern plugins outputs"},
			run:      cmdPlugins,
		},
		{
			name: "config", group: groups[0], usage: "config [KIND] TYPE",
			summary: "print a plugin type's sample config",
			desc: `Prints the sample config table of a plugin type: every key with its
default, optional ones commented out, ready to paste into plugins.toml. A
type that exists in more than one kind (lua is a decoder and a filter, json an
encoder and a decoder) needs its KIND first: input, decoder, filter, encoder
or output.`,
			examples: []string{"tern config tail", "tern config filter lua >> plugins.toml"},
			run:      cmdConfig,
		},
		{
			name: "alerts", group: groups[0], usage: "alerts list [-config FILE | -dir DIR] [-locale LANG] [-json]",
			summary: "list the alert definitions of a config's Lua filters",
			desc: `Lists the alert definitions the Lua filters of a config use, or those of
one directory with -dir: key, key string, title, icon, namespace, and whether
sources and targets are described.`,
			examples: []string{"tern alerts list -config plugins.toml", "tern alerts list -dir filters/lua/alerts -json"},
			run:      cmdAlerts,
		},
		{
			name: "decode", group: groups[1], usage: "decode -d TYPE [-o key=value]... < RECORDS",
			summary: "decode raw records on stdin into canonical JSON messages",
			desc: `Reads records from standard input, one a line (or RFC 6587 syslog frames
with -framing), decodes each with a decoder built as tern run builds it, and
writes canonical JSON messages, one a line, with UUID, Timestamp and Logger
filled in as the engine would. -o sets a decoder option as in its config
table (tern config decoder TYPE lists them). A record that fails is reported
on stderr by number, and the exit code is 1.`,
			extra: func(w io.Writer) { typeList(w, "Decoder types", kindDecoders) },
			examples: []string{
				"tern decode -d syslog < /var/log/syslog | tern match 'Severity <= 3'",
				"tern decode -d cef -o typed=true < cef.log",
			},
			run: cmdDecode,
		},
		{
			name: "encode", group: groups[1], usage: "encode -e TYPE [-o key=value]... < MESSAGES",
			summary: "encode canonical JSON messages from stdin",
			desc: `Reads canonical JSON messages from standard input, one a line, gives each
what a router would before an output sees it (a UUID, the time now) and
writes it with an encoder built as tern run builds it, one record a line or
with the encoder's own delimiter. -o sets an encoder option as in its config
table (tern config encoder TYPE lists them).`,
			extra: func(w io.Writer) { typeList(w, "Encoder types", kindEncoders) },
			examples: []string{
				"tern decode -d cef < cef.log | tern encode -e eve",
				"tern encode -e syslog -o format=rfc3164 < messages.jsonl",
			},
			run: cmdEncode,
		},
		{
			name: "match", group: groups[1], usage: "match EXPR < MESSAGES",
			summary: "print the canonical JSON messages a matcher accepts",
			desc: `Compiles EXPR as a message_matcher and copies to standard output the
canonical JSON messages from standard input that it accepts. The syntax is in
the README (Matcher syntax).`,
			examples: []string{"tern match \"Type == 'auth' && Severity <= 4\" < out/messages.jsonl"},
			run:      cmdMatch,
		},
		{
			name: "cat", group: groups[1], usage: "cat [-match EXPR] [-count] [-tail] [-unread] [PATH]...",
			summary: "print the messages in disk buffers and native-framed files",
			desc: `Prints as canonical JSON the messages held in disk buffer directories
(data/buffer/<output>), buffer segment files (*.seg) or files of native
frames; no PATH or "-" reads native frames from standard input. It only reads,
so a buffer may be read while tern runs.`,
			examples: []string{"tern cat -count data/buffer/siem", "tern cat -tail -match \"Type == 'tern.alert'\" data/buffer/siem"},
			run:      cmdCat,
		},
		{
			name: "inject", group: groups[2], usage: "inject [-addr HOST:PORT] [flags] [-json MESSAGE | -json -]",
			summary: "send one message to a running tern and wait for its ack",
			desc: `Sends one message to a running tern (a tcp input with framing = "native")
and waits until that tern acknowledges that it delivered it. The message comes
from the flags, or from canonical JSON (-json, "-" for standard input).`,
			examples: []string{"tern inject -type auth -payload 'login failed' -f user=root", "tern inject -json - < message.json"},
			run:      cmdInject,
		},
		{
			name: "flood", group: groups[2], usage: "flood [-addr HOST:PORT] [flags]",
			summary: "send load to a running tern and report the rates",
			desc: `Sends messages to a running tern (a tcp input with framing = "native") as
fast as it takes them or at -rate, for -duration or -count messages, then
waits for every acknowledgement. A progress line is written every second; the
report gives messages/s, MiB/s, acknowledged and errors. -corrupt and
-oversize send that percentage of messages as frames the router must cope
with: undecodable messages (dead-lettered there) and frames over its size
limit (refused, and the connection closed).`,
			examples: []string{"tern flood -rate 50000 -duration 30s", "tern flood -count 100000 -corrupt 1 -oversize 0.1"},
			run:      cmdFlood,
		},
		{
			name: "tap", group: groups[2], usage: "tap [-addr HOST:PORT] [-match EXPR] [-plugin NAME] [-n N] [-rate R] [flags]",
			summary: "stream what a running tern routes, or a plugin receives",
			desc: `Streams the messages a running tern routes, as canonical JSON lines on
stdout, from its metrics address ([tern] metrics_address); with -plugin, only
what that filter or output receives. The router matches (-match), samples (at
most -rate messages per second) and buffers for this reader without ever
slowing the pipeline: when the reader falls behind, messages are dropped for
it alone, and stderr says how many. It ends after -n messages, at Ctrl-C, or
when the router stops or reloads; the last stderr line sums up what was seen.
A metrics address with metrics_tokens wants a token (-token-file, or the
TERN_METRICS_TOKEN environment variable); with [tern.metrics_tls], use -tls or
-ca (and -cert and -key for mutual TLS).`,
			examples: []string{
				"tern tap -match \"Type == 'tern.alert'\"",
				"tern tap -plugin outputs.siem -n 10",
			},
			run: cmdTap,
		},
		{
			name: "version", group: groups[3], usage: "version",
			summary: "print the version, Go version and VCS revision",
			desc:    `Prints the version of tern, the Go version and platform it was built with, and the VCS revision of its source (with "modified" when the tree had uncommitted changes). tern --version prints the same.`,
			run:     cmdVersion,
		},
		{
			name: "help", group: groups[3], usage: "help [VERB]",
			summary:  "show the help of tern or of a verb",
			desc:     `Lists the verbs, or shows the description, flags and examples of VERB, as tern VERB -h does.`,
			examples: []string{"tern help decode"},
			run:      cmdHelp,
		},
	}
}

func lookupVerb(name string) *verb {
	for _, v := range verbs {
		if v.name == name {
			return v
		}
	}
	return nil
}

func verbNames() []string {
	out := make([]string, len(verbs))
	for i, v := range verbs {
		out[i] = v.name
	}
	return out
}

const intro = `tern routes logs for security teams: inputs read records, decoders turn them
into messages, matchers route the messages to filters (Lua detections) and
outputs, and encoders write them as CEF, EVE JSON, Zeek, syslog or JSON.`

// printTopHelp is `tern help`: the verbs by group, one line each.
func printTopHelp(w io.Writer) {
	fmt.Fprintf(w, "%s\n\nUsage:\n  tern [VERB] [flags] [arguments]\n", intro)
	width := 0
	for _, v := range verbs {
		width = max(width, len(v.name))
	}
	for _, g := range groups {
		fmt.Fprintf(w, "\n%s:\n", g)
		for _, v := range verbs {
			if v.group == g {
				fmt.Fprintf(w, "  %-*s   %s\n", width, v.name, v.summary)
			}
		}
	}
	fmt.Fprint(w, `
Flags:
  -h, --help    show this help
  --version     print the version

Run 'tern help VERB' or 'tern VERB -h' for a verb's description, flags and examples.
`)
}

// printHelp prints v's help with the flags of fs (nil: none).
func printHelp(w io.Writer, v *verb, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage:\n  tern %s\n\nDescription:\n%s\n", v.usage, indent(v.desc))
	if fs != nil {
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			fmt.Fprint(w, "\nFlags:\n")
			printFlags(w, fs)
		}
	}
	if v.extra != nil {
		fmt.Fprintln(w)
		v.extra(w)
	}
	if len(v.examples) > 0 {
		fmt.Fprint(w, "\nExamples:\n")
		for _, e := range v.examples {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
}

// indent re-flows a paragraph written over several source lines, indented
// by two spaces.
func indent(p string) string {
	words := strings.Fields(p)
	var b strings.Builder
	line := 0
	for _, word := range words {
		if line > 0 && line+1+len(word) > 78 {
			b.WriteString("\n")
			line = 0
		}
		if line == 0 {
			b.WriteString("  ")
			line = 2
		} else {
			b.WriteString(" ")
			line++
		}
		b.WriteString(word)
		line += len(word)
	}
	return b.String()
}

// printFlags lists fs's flags in two columns: "-name ARG" and the usage
// with its default.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		name := "-" + f.Name
		if arg != "" {
			name += " " + arg
		}
		if def := f.DefValue; def != "" && def != "0" && def != "false" && def != "0s" && def != "[]" {
			if g, ok := f.Value.(flag.Getter); ok {
				if _, isString := g.Get().(string); isString {
					def = fmt.Sprintf("%q", def)
				}
			}
			usage += " (default " + def + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s\n", name, usage)
	})
	_ = tw.Flush()
}

// newFlags returns the FlagSet of a verb. It prints nothing itself:
// parseFlags shows the help on -h and a short hint on a mistake.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseFlags parses args into fs, the flags of verb name. On -h or --help
// it prints the verb's help on stdout and returns 0, true; on a mistake a
// one-line error and a hint on stderr and 2, true; when the verb should go
// on, false.
func parseFlags(fs *flag.FlagSet, name string, args []string, stdout, stderr io.Writer) (int, bool) {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return 0, false
	case errors.Is(err, flag.ErrHelp):
		printHelp(stdout, lookupVerb(name), fs)
		return 0, true
	}
	return usageError(stderr, name, err.Error()), true
}

// usageError prints "tern VERB: msg" and where to find the verb's usage,
// and returns the exit code of a usage mistake.
func usageError(stderr io.Writer, name, msg string) int {
	fmt.Fprintf(stderr, "tern %s: %s\nrun 'tern %s -h' for usage\n", name, msg, name)
	return 2
}

// didYouMean returns " (did you mean "x"?)" for the closest of known within
// edit distance 2 of s, or "".
func didYouMean(s string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(s, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" || best == s {
		return ""
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

// editDistance is the Levenshtein distance between a and b, where
// swapping two adjacent letters costs 1 (the commonest typo).
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// cmdHelp is `tern help [VERB]`.
func cmdHelp(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("help")
	if code, done := parseFlags(fs, "help", args, stdout, stderr); done {
		return code
	}
	switch fs.NArg() {
	case 0:
		printTopHelp(stdout)
		return 0
	case 1:
		v := lookupVerb(fs.Arg(0))
		if v == nil {
			return unknownVerb(stderr, fs.Arg(0))
		}
		// Every verb answers -h with its help before doing anything else.
		return v.run([]string{"-h"}, stdin, stdout, stderr)
	}
	return usageError(stderr, "help", "want at most one VERB")
}

func unknownVerb(stderr io.Writer, name string) int {
	fmt.Fprintf(stderr, "tern: unknown verb %q%s\nrun 'tern help' for the list of verbs\n", name, didYouMean(name, verbNames()))
	return 2
}

// isHelp reports whether arg asks for help.
func isHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help"
}
