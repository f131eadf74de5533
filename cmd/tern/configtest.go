package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/ternlog/tern/internal/msgvar"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/engine"
	"github.com/ternlog/tern/pipeline/matcher"
	"github.com/ternlog/tern/pipeline/queue"
)

// A tests file for `tern test` (README.md, "Testing a config").
type testFile struct {
	// Start is the simulated clock at the start of each test (RFC 3339).
	Start string     `toml:"start"`
	Test  []testCase `toml:"test"`
}

type testCase struct {
	Name   string       `toml:"name"`
	Start  string       `toml:"start"`
	Step   []testStep   `toml:"step"`
	Expect []testExpect `toml:"expect"`
	line   int
}

// testStep is one thing that happens, in order: records for an input,
// canonical JSON messages, or time passing.
type testStep struct {
	Input    string          `toml:"input"`
	Records  []string        `toml:"records"`
	Messages []string        `toml:"messages"`
	Advance  config.Duration `toml:"advance"`
	line     int
}

// testExpect is an assertion on what one filter or output received by the
// end of the test.
type testExpect struct {
	Plugin   string            `toml:"plugin"`
	Matcher  string            `toml:"matcher"`
	Fields   map[string]string `toml:"fields"`
	Count    *int              `toml:"count"`
	Contains []string          `toml:"output_contains"`
	line     int
}

// defaultTestStart is the simulated clock's start when a file names none.
const defaultTestStart = "2026-01-01T00:00:00Z"

func cmdTest(args []string, _ io.Reader, stdout, stderr io.Writer) int {
	fs := newFlags("test")
	path := configFlag(fs)
	verbose := fs.Bool("v", false, "list every test, and what each destination received when one fails")
	if code, done := parseFlags(fs, "test", args, stdout, stderr); done {
		return code
	}
	if fs.NArg() == 0 {
		return usageError(stderr, "test", "name at least one tests file")
	}
	reg := registry()
	if _, warnings, err := checkConfig(*path, reg); err != nil {
		printWarnings(stderr, warnings)
		printConfigErrors(stderr, err, "")
		return 2
	}
	total, failed := 0, 0
	for _, file := range fs.Args() {
		tf, err := loadTests(file)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		for _, tc := range tf.Test {
			total++
			report, err := runTest(*path, reg, file, tf, tc, *verbose)
			switch {
			case err != nil:
				failed++
				fmt.Fprintf(stdout, "FAIL %s (%s:%d)\n  %v\n", tc.Name, file, tc.line, err)
			case report != "":
				failed++
				fmt.Fprintf(stdout, "FAIL %s (%s:%d)\n%s", tc.Name, file, tc.line, report)
			case *verbose:
				fmt.Fprintf(stdout, "ok   %s\n", tc.Name)
			}
		}
	}
	fmt.Fprintf(stdout, "%d tests, %d failed\n", total, failed)
	if failed > 0 {
		return 1
	}
	return 0
}

// loadTests reads and checks a tests file; errors name its file and line.
func loadTests(path string) (*testFile, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var tf testFile
	md, err := toml.Decode(string(src), &tf)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, fmt.Errorf("%s:%d: %s", path, pe.Position.Line, pe.Message)
		}
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	lines := splitLines(string(src))
	var errs []string
	fail := func(line int, key, format string, a ...any) {
		errs = append(errs, fmt.Sprintf("%s:%d: %s: %s", path, line, key, fmt.Sprintf(format, a...)))
	}
	for _, k := range md.Undecoded() {
		fail(lines.keyLine(k), k.String(), "unknown key")
	}
	if tf.Start == "" {
		tf.Start = defaultTestStart
	}
	if _, err := time.Parse(time.RFC3339Nano, tf.Start); err != nil {
		fail(lines.line("start", 0), "start", "not an RFC 3339 time: %q", tf.Start)
	}
	if len(tf.Test) == 0 {
		fail(1, "test", "no [[test]] in the file")
	}
	si, ei := 0, 0
	for i := range tf.Test {
		tc := &tf.Test[i]
		tc.line = lines.line("[[test]]", i)
		key := fmt.Sprintf("test[%d]", i)
		if tc.Name == "" {
			fail(tc.line, key+".name", "required")
		}
		if tc.Start != "" {
			if _, err := time.Parse(time.RFC3339Nano, tc.Start); err != nil {
				fail(tc.line, key+".start", "not an RFC 3339 time: %q", tc.Start)
			}
		}
		if len(tc.Expect) == 0 {
			fail(tc.line, key, "no [[test.expect]]: a test must assert something")
		}
		for j := range tc.Step {
			st := &tc.Step[j]
			st.line = lines.line("[[test.step]]", si)
			si++
			kinds := 0
			if st.Input != "" || len(st.Records) > 0 {
				kinds++
				if st.Input == "" || len(st.Records) == 0 {
					fail(st.line, key+".step", "input and records go together")
				}
			}
			if len(st.Messages) > 0 {
				kinds++
			}
			if st.Advance != 0 {
				kinds++
				if st.Advance < 0 {
					fail(st.line, key+".step.advance", "must be positive")
				}
			}
			if kinds != 1 {
				fail(st.line, key+".step", "one of input with records, messages, or advance")
			}
		}
		for j := range tc.Expect {
			ex := &tc.Expect[j]
			ex.line = lines.line("[[test.expect]]", ei)
			ei++
			if ex.Plugin == "" {
				fail(ex.line, key+".expect.plugin", "required (a filter or output id, like outputs.alerts)")
			}
			if ex.Matcher != "" {
				if _, err := matcher.Compile(ex.Matcher); err != nil {
					fail(ex.line, key+".expect.matcher", "%v", err)
				}
			}
			for k := range ex.Fields {
				if _, err := msgvar.Parse(k); err != nil {
					fail(ex.line, key+".expect.fields", "%q: %v", k, err)
				}
			}
			if ex.Count != nil && *ex.Count < 0 {
				fail(ex.line, key+".expect.count", "must be 0 or more")
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "\n"))
	}
	return &tf, nil
}

// tableLines finds where a tests file's tables start, for error messages.
type tableLines []string

func (t tableLines) line(header string, n int) int {
	seen := 0
	for i, l := range t {
		l = strings.TrimSpace(l)
		if header == "start" && strings.HasPrefix(l, "start") {
			return i + 1
		}
		if l == header || strings.HasPrefix(l, header+" ") || strings.HasPrefix(l, header+"#") {
			if seen == n {
				return i + 1
			}
			seen++
		}
	}
	return 0
}

// keyLine is the first line that sets the last part of k.
func (t tableLines) keyLine(k toml.Key) int {
	last := k[len(k)-1]
	re := regexp.MustCompile(`^\s*"?` + regexp.QuoteMeta(last) + `"?\s*=`)
	for i, l := range t {
		if re.MatchString(l) {
			return i + 1
		}
	}
	return 0
}

func splitLines(s string) tableLines { return strings.Split(s, "\n") }

// runTest runs one test on a fresh engine built from the config and returns
// the report of its failed assertions ("" when all hold).
func runTest(cfgPath string, reg *pipeline.Registry, file string, tf *testFile, tc testCase, verbose bool) (string, error) {
	plan, err := config.Load(cfgPath, reg, config.Options{})
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "tern-test-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	// Nothing the test builds may touch the operator's state or listen.
	plan.Global.DataDir = dir
	plan.Global.MetricsAddress = ""
	start := tf.Start
	if tc.Start != "" {
		start = tc.Start
	}
	clock, _ := time.Parse(time.RFC3339Nano, start)
	var logs bytes.Buffer
	e, err := engine.New(plan, reg, engine.Options{
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Now:    func() time.Time { return clock },
		// Outputs never write in a test: a disk buffer becomes a memory queue.
		NewBuffer: func(o *config.Output, _ string, _ pipeline.Settings) (queue.Queue, error) {
			return queue.NewMemory(o.QueueMaxBytes, false), nil
		},
	})
	if err != nil {
		return "", err
	}
	h := engine.NewHarness(e, &clock)
	for _, st := range tc.Step {
		var err error
		switch {
		case st.Advance > 0:
			err = h.Advance(st.Advance.D())
		case len(st.Messages) > 0:
			for i, js := range st.Messages {
				m := pipeline.NewMessage()
				if derr := codec.DecodeJSON([]byte(js), m, nil); derr != nil {
					err = fmt.Errorf("messages[%d]: %v", i, derr)
					break
				}
				if err = h.Route(m); err != nil {
					break
				}
			}
		default:
			recs := make([][]byte, len(st.Records))
			for i, r := range st.Records {
				recs[i] = []byte(r)
			}
			err = h.Feed(st.Input, recs)
		}
		if err != nil {
			return "", fmt.Errorf("%s:%d: step: %v", file, st.line, err)
		}
	}
	known := map[string]bool{}
	for _, id := range h.Destinations() {
		known[id] = true
	}
	var report strings.Builder
	for _, ex := range tc.Expect {
		if !known[ex.Plugin] {
			ids := h.Destinations()
			sort.Strings(ids)
			fmt.Fprintf(&report, "  %s:%d: %s is not a filter or output of %s (%s)\n", file, ex.line, ex.Plugin, cfgPath, strings.Join(ids, ", "))
			continue
		}
		if msg := checkExpect(ex, h.Received(ex.Plugin), verbose); msg != "" {
			fmt.Fprintf(&report, "  %s:%d: %s\n", file, ex.line, msg)
		}
	}
	if report.Len() > 0 && logs.Len() > 0 {
		report.WriteString("  tern logged:\n")
		for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			report.WriteString("    " + l + "\n")
		}
	}
	return report.String(), nil
}

// checkExpect returns what is wrong with got for ex, or "".
func checkExpect(ex testExpect, got []engine.Received, verbose bool) string {
	var m *matcher.Matcher
	if ex.Matcher != "" {
		m = matcher.MustCompile(ex.Matcher)
	}
	keys := make([]string, 0, len(ex.Fields))
	for k := range ex.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var sel []engine.Received
	var near []string // why the closest messages did not match
	for _, r := range got {
		if m != nil && !m.Match(r.Msg) {
			continue
		}
		ok := true
		for _, k := range keys {
			v, _ := msgvar.Parse(k)
			s, has := v.String(r.Msg)
			if !has || s != ex.Fields[k] {
				ok = false
				if len(near) < 3 {
					if has {
						near = append(near, fmt.Sprintf("%s = %q", k, s))
					} else {
						near = append(near, k+" missing")
					}
				}
				break
			}
		}
		if ok {
			sel = append(sel, r)
		}
	}
	var want strings.Builder
	if ex.Count != nil {
		fmt.Fprintf(&want, "%d", *ex.Count)
	} else {
		want.WriteString("at least 1")
	}
	want.WriteString(" message")
	if ex.Matcher != "" {
		fmt.Fprintf(&want, " matching %s", ex.Matcher)
	}
	for i, k := range keys {
		sep := " with "
		if i > 0 {
			sep = ", "
		}
		fmt.Fprintf(&want, "%s%s = %q", sep, k, ex.Fields[k])
	}
	bad := ""
	switch {
	case ex.Count != nil && len(sel) != *ex.Count, ex.Count == nil && len(sel) == 0:
		bad = fmt.Sprintf("%s: want %s, got %d (of %d received)", ex.Plugin, want.String(), len(sel), len(got))
		if len(near) > 0 {
			bad += "\n      not matched: " + strings.Join(near, "; ")
		}
	default:
		for _, c := range ex.Contains {
			found := false
			for _, r := range sel {
				if bytes.Contains(r.Encoded, []byte(c)) {
					found = true
					break
				}
			}
			if !found {
				bad = fmt.Sprintf("%s: no record it encoded for %s contains %q", ex.Plugin, want.String(), c)
				break
			}
		}
	}
	if bad == "" {
		return ""
	}
	show := got
	if !verbose && len(show) > 5 {
		show = show[:5]
	}
	var b strings.Builder
	b.WriteString(bad)
	for _, r := range show {
		js := codec.AppendJSON(nil, r.Msg)
		if !verbose && len(js) > 400 {
			js = append(js[:400], "…"...)
		}
		fmt.Fprintf(&b, "\n      received: %s", js)
		if r.Encoded != nil {
			enc := strings.TrimRight(string(r.Encoded), "\n")
			if !verbose && len(enc) > 300 {
				enc = enc[:300] + "…"
			}
			fmt.Fprintf(&b, "\n        encoded: %s", enc)
		}
	}
	if len(show) < len(got) {
		fmt.Fprintf(&b, "\n      … and %d more (-v shows all)", len(got)-len(show))
	}
	return b.String()
}
