package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/ternlog/tern/internal/alert"
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
	Alert  []testAlert  `toml:"alert"`
	line   int
}

// testStep is one thing that happens, in order: records for an input,
// canonical JSON messages, or time passing. Its own expectations are
// checked right after it, on what arrived during it.
type testStep struct {
	Input    string          `toml:"input"`
	Records  []string        `toml:"records"`
	Messages []string        `toml:"messages"`
	Advance  config.Duration `toml:"advance"`
	Expect   []testExpect    `toml:"expect"`
	Alert    []testAlert     `toml:"alert"`
	line     int
}

// testExpect is an assertion on what one filter or output received: by
// the end of the test, or during its step.
type testExpect struct {
	Plugin   string            `toml:"plugin"`
	Matcher  string            `toml:"matcher"`
	Fields   map[string]string `toml:"fields"`
	Count    *int              `toml:"count"`
	Contains []string          `toml:"output_contains"`
	line     int
}

// testAlert is an assertion on the alerts (messages of Type tern.alert) a
// filter raised, wherever they were routed; unset keys are not checked.
type testAlert struct {
	Filter      string            `toml:"filter"`
	Title       *string           `toml:"title"`
	KeyName     *string           `toml:"key_name"`
	Severity    *string           `toml:"severity"`
	Description *string           `toml:"description"`
	Completion  *string           `toml:"completion"`
	Sources     *[]string         `toml:"sources"`
	Targets     *[]string         `toml:"targets"`
	Update      *bool             `toml:"update"`
	Matcher     string            `toml:"matcher"`
	Fields      map[string]string `toml:"fields"`
	Count       *int              `toml:"count"`
	line        int
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
	// Tables are numbered by their header's occurrences, in file order.
	seen := map[string]int{}
	next := func(header string) int {
		n := seen[header]
		seen[header]++
		return lines.line(header, n)
	}
	checkExpects := func(key string, exs []testExpect, header string) {
		for j := range exs {
			ex := &exs[j]
			ex.line = next(header)
			if ex.Plugin == "" {
				fail(ex.line, key+".plugin", "required (a filter or output id, like outputs.alerts)")
			}
			checkSelect(fail, ex.line, key, ex.Matcher, ex.Fields, ex.Count)
		}
	}
	checkAlerts := func(key string, als []testAlert, header string) {
		for j := range als {
			al := &als[j]
			al.line = next(header)
			if al.Severity != nil && !slices.Contains([]string{"low", "medium", "high"}, *al.Severity) {
				fail(al.line, key+".severity", "low, medium or high, not %q", *al.Severity)
			}
			if al.Completion != nil && *al.Completion != "failed" && *al.Completion != "successful" {
				fail(al.line, key+".completion", "failed or successful, not %q", *al.Completion)
			}
			checkSelect(fail, al.line, key, al.Matcher, al.Fields, al.Count)
		}
	}
	for i := range tf.Test {
		tc := &tf.Test[i]
		tc.line = next("[[test]]")
		key := fmt.Sprintf("test[%d]", i)
		if tc.Name == "" {
			fail(tc.line, key+".name", "required")
		}
		if tc.Start != "" {
			if _, err := time.Parse(time.RFC3339Nano, tc.Start); err != nil {
				fail(tc.line, key+".start", "not an RFC 3339 time: %q", tc.Start)
			}
		}
		asserts := len(tc.Expect) + len(tc.Alert)
		for j := range tc.Step {
			st := &tc.Step[j]
			st.line = next("[[test.step]]")
			asserts += len(st.Expect) + len(st.Alert)
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
			checkExpects(key+".step.expect", st.Expect, "[[test.step.expect]]")
			checkAlerts(key+".step.alert", st.Alert, "[[test.step.alert]]")
		}
		if asserts == 0 {
			fail(tc.line, key, "no [[test.expect]] or [[test.alert]]: a test must assert something")
		}
		checkExpects(key+".expect", tc.Expect, "[[test.expect]]")
		checkAlerts(key+".alert", tc.Alert, "[[test.alert]]")
	}
	if len(errs) > 0 {
		return nil, errors.New(strings.Join(errs, "\n"))
	}
	return &tf, nil
}

// checkSelect checks the keys that select messages, common to
// expectations and alerts.
func checkSelect(fail func(int, string, string, ...any), line int, key, expr string, fields map[string]string, count *int) {
	if expr != "" {
		if _, err := matcher.Compile(expr); err != nil {
			fail(line, key+".matcher", "%v", err)
		}
	}
	for k := range fields {
		if _, err := msgvar.Parse(k); err != nil {
			fail(line, key+".fields", "%q: %v", k, err)
		}
	}
	if count != nil && *count < 0 {
		fail(line, key+".count", "must be 0 or more")
	}
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
	dests := append(h.Destinations(), engine.Unrouted)
	sort.Strings(dests)
	filters := h.Filters()
	var report strings.Builder
	type failure struct {
		line int
		msg  string
	}
	var failures []failure
	fail := func(line int, msg string) { failures = append(failures, failure{line, msg}) }
	// check runs assertions on what arrived since mark (nil: since the
	// start) and reports their failures in file order; during names the
	// step they belong to.
	check := func(exs []testExpect, als []testAlert, mark *harnessMark, during string) {
		failures = failures[:0]
		defer func() {
			sort.SliceStable(failures, func(i, j int) bool { return failures[i].line < failures[j].line })
			for _, f := range failures {
				fmt.Fprintf(&report, "  %s:%d: %s\n", file, f.line, f.msg)
			}
		}()
		for _, ex := range exs {
			if !slices.Contains(dests, ex.Plugin) {
				fail(ex.line, fmt.Sprintf("%s is not a filter or output of %s (%s)", ex.Plugin, cfgPath, strings.Join(dests, ", ")))
				continue
			}
			got := mark.received(h, ex.Plugin)
			if msg := checkExpect(ex, got, h.EncodeFailed(ex.Plugin), verbose); msg != "" {
				fail(ex.line, msg+during)
			}
		}
		for _, al := range als {
			from := filters
			if al.Filter != "" {
				id := al.Filter
				if !strings.HasPrefix(id, "filters.") {
					id = "filters." + id
				}
				if !slices.Contains(filters, id) {
					fail(al.line, fmt.Sprintf("%s is not a filter of %s (%s)", al.Filter, cfgPath, strings.Join(filters, ", ")))
					continue
				}
				from = []string{id}
			}
			var raised []*pipeline.Message
			for _, id := range from {
				for _, m := range mark.injected(h, id) {
					if m.Type == alert.Type {
						raised = append(raised, m)
					}
				}
			}
			if msg := checkAlert(al, raised, verbose); msg != "" {
				fail(al.line, msg+during)
			}
		}
	}
	for _, st := range tc.Step {
		mark := newHarnessMark(h, dests, filters)
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
		check(st.Expect, st.Alert, mark, fmt.Sprintf("\n      (during the step at line %d)", st.line))
	}
	check(tc.Expect, tc.Alert, nil, "")
	if report.Len() > 0 && logs.Len() > 0 {
		report.WriteString("  tern logged:\n")
		for _, l := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
			report.WriteString("    " + l + "\n")
		}
	}
	return report.String(), nil
}

// harnessMark is how much each destination had received and each filter
// injected at some point, so a step's assertions see only what came after.
type harnessMark struct {
	got, inj map[string]int
}

func newHarnessMark(h *engine.Harness, dests, filters []string) *harnessMark {
	mk := &harnessMark{got: map[string]int{}, inj: map[string]int{}}
	for _, id := range dests {
		mk.got[id] = len(h.Received(id))
	}
	for _, id := range filters {
		mk.inj[id] = len(h.Injected(id))
	}
	return mk
}

func (mk *harnessMark) received(h *engine.Harness, id string) []engine.Received {
	got := h.Received(id)
	if mk != nil {
		got = got[mk.got[id]:]
	}
	return got
}

func (mk *harnessMark) injected(h *engine.Harness, id string) []*pipeline.Message {
	got := h.Injected(id)
	if mk != nil {
		got = got[mk.inj[id]:]
	}
	return got
}

// fieldsMatch reports whether m has every field of want (as text), and if
// not, what it has instead of the first that differs.
func fieldsMatch(m *pipeline.Message, want map[string]string, keys []string) (bool, string) {
	for _, k := range keys {
		v, _ := msgvar.Parse(k)
		s, has := v.String(m)
		switch {
		case !has:
			return false, k + " missing"
		case s != want[k]:
			return false, fmt.Sprintf("%s = %q", k, s)
		}
	}
	return true, ""
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// describeWant renders what an assertion selects: "1 message matching X
// with a = "b"".
func describeWant(count *int, noun, expr string, fields map[string]string, keys []string, more []string) string {
	var want strings.Builder
	switch {
	case count == nil:
		want.WriteString("at least one " + noun)
	case *count == 1:
		want.WriteString("1 " + noun)
	default:
		fmt.Fprintf(&want, "%d %ss", *count, noun)
	}
	if expr != "" {
		fmt.Fprintf(&want, " matching %s", expr)
	}
	conds := append([]string(nil), more...)
	for _, k := range keys {
		conds = append(conds, fmt.Sprintf("%s = %q", k, fields[k]))
	}
	if len(conds) > 0 {
		want.WriteString(" with " + strings.Join(conds, ", "))
	}
	return want.String()
}

// countWrong reports whether n selected items fail count (default: at
// least one).
func countWrong(count *int, n int) bool {
	if count != nil {
		return n != *count
	}
	return n == 0
}

// checkExpect returns what is wrong with got for ex, or "".
func checkExpect(ex testExpect, got, encFailed []engine.Received, verbose bool) string {
	var m *matcher.Matcher
	if ex.Matcher != "" {
		m = matcher.MustCompile(ex.Matcher)
	}
	keys := sortedKeys(ex.Fields)
	var sel []engine.Received
	var near []string // why the closest messages did not match
	for _, r := range got {
		if m != nil && !m.Match(r.Msg) {
			continue
		}
		if ok, why := fieldsMatch(r.Msg, ex.Fields, keys); !ok {
			if len(near) < 3 {
				near = append(near, why)
			}
			continue
		}
		sel = append(sel, r)
	}
	want := describeWant(ex.Count, "message", ex.Matcher, ex.Fields, keys, nil)
	bad := ""
	if countWrong(ex.Count, len(sel)) {
		bad = fmt.Sprintf("%s: want %s, got %d (of %d received)", ex.Plugin, want, len(sel), len(got))
		if len(near) > 0 {
			bad += "\n      not matched: " + strings.Join(near, "; ")
		}
	} else {
		for _, c := range ex.Contains {
			found := false
			for _, r := range sel {
				if bytes.Contains(r.Encoded, []byte(c)) {
					found = true
					break
				}
			}
			if !found {
				bad = fmt.Sprintf("%s: no record it encoded for %s contains %q", ex.Plugin, want, c)
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
	for i, r := range encFailed {
		if i == 3 && !verbose {
			fmt.Fprintf(&b, "\n      … and %d more the encoder refused", len(encFailed)-i)
			break
		}
		fmt.Fprintf(&b, "\n      the encoder refused (a dead letter instead): %v", r.EncErr)
	}
	return b.String()
}

// alertKeys are the keys of a raised alert an assertion can name, in the
// order reports show them.
var alertKeys = []string{"title", "key_name", "severity", "description", "completion", "sources", "targets", "update"}

// alertValues renders the keys of a that al asserts (all when al is nil),
// as they read in a tests file.
func alertValues(a *alert.Alert, al *testAlert) map[string]string {
	nodes := func(ns []alert.Node) string {
		var vs []string
		for _, n := range ns {
			for _, v := range n.Values {
				vs = append(vs, strconv.Quote(v))
			}
		}
		return "[" + strings.Join(vs, ", ") + "]"
	}
	all := al == nil
	out := map[string]string{}
	if all || al.Title != nil {
		out["title"] = strconv.Quote(a.Title)
	}
	if all || al.KeyName != nil {
		out["key_name"] = strconv.Quote(a.KeyName)
	}
	if all || al.Severity != nil {
		out["severity"] = strconv.Quote(a.Severity)
	}
	if all || al.Description != nil {
		out["description"] = strconv.Quote(a.Description)
	}
	if all || al.Completion != nil {
		out["completion"] = strconv.Quote(a.Completion)
	}
	if all || al.Sources != nil {
		out["sources"] = nodes(a.Sources)
	}
	if all || al.Targets != nil {
		out["targets"] = nodes(a.Targets)
	}
	if all || al.Update != nil {
		out["update"] = strconv.FormatBool(a.Update)
	}
	return out
}

// wantValues renders what al asserts, as alertValues renders an alert.
func wantValues(al *testAlert) map[string]string {
	list := func(vs []string) string {
		q := make([]string, len(vs))
		for i, v := range vs {
			q[i] = strconv.Quote(v)
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	out := map[string]string{}
	for k, p := range map[string]*string{"title": al.Title, "key_name": al.KeyName, "severity": al.Severity, "description": al.Description, "completion": al.Completion} {
		if p != nil {
			out[k] = strconv.Quote(*p)
		}
	}
	if al.Sources != nil {
		out["sources"] = list(*al.Sources)
	}
	if al.Targets != nil {
		out["targets"] = list(*al.Targets)
	}
	if al.Update != nil {
		out["update"] = strconv.FormatBool(*al.Update)
	}
	return out
}

// checkAlert returns what is wrong with the alerts raised for al, or "".
func checkAlert(al testAlert, raised []*pipeline.Message, verbose bool) string {
	var m *matcher.Matcher
	if al.Matcher != "" {
		m = matcher.MustCompile(al.Matcher)
	}
	keys := sortedKeys(al.Fields)
	want := wantValues(&al)
	var conds []string
	for _, k := range alertKeys {
		if v, ok := want[k]; ok {
			conds = append(conds, k+" = "+v)
		}
	}
	n := 0
	var lines []string // each raised alert, its differences marked
	for _, msg := range raised {
		a, err := alert.Parse(msg)
		if err != nil {
			lines = append(lines, fmt.Sprintf("unreadable alert from %s: %v", msg.Logger, err))
			continue
		}
		got := alertValues(a, &al)
		ok := true
		var diffs []string
		for _, k := range alertKeys {
			w, asserted := want[k]
			if asserted && got[k] != w {
				ok = false
				diffs = append(diffs, fmt.Sprintf("%s = %s, want %s", k, got[k], w))
			}
		}
		if m != nil && !m.Match(msg) {
			ok = false
			diffs = append(diffs, "matcher does not accept it")
		}
		if fok, why := fieldsMatch(msg, al.Fields, keys); !fok {
			ok = false
			diffs = append(diffs, why)
		}
		if ok {
			n++
		}
		var show []string
		for k, v := range alertValues(a, nil) {
			if v != `""` && v != "[]" {
				show = append(show, k+" = "+v)
			}
		}
		sort.Slice(show, func(i, j int) bool {
			return slices.Index(alertKeys, strings.SplitN(show[i], " ", 2)[0]) < slices.Index(alertKeys, strings.SplitN(show[j], " ", 2)[0])
		})
		line := fmt.Sprintf("from %s: %s", msg.Logger, strings.Join(show, ", "))
		if len(diffs) > 0 {
			line += "\n        differs: " + strings.Join(diffs, "; ")
		}
		lines = append(lines, line)
	}
	if !countWrong(al.Count, n) {
		return ""
	}
	who := "every filter"
	if al.Filter != "" {
		who = al.Filter
	}
	var b strings.Builder
	fmt.Fprintf(&b, "alerts of %s: want %s, got %d (of %d raised)", who,
		describeWant(al.Count, "alert", al.Matcher, al.Fields, keys, conds), n, len(raised))
	for i, l := range lines {
		if i == 5 && !verbose {
			fmt.Fprintf(&b, "\n      … and %d more (-v shows all)", len(lines)-i)
			break
		}
		b.WriteString("\n      raised " + l)
	}
	return b.String()
}
