package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ternlog/tern/pipeline/pipelinetest"
)

// cliCase runs one verb with stdin and compares stdout with a golden file.
type cliCase struct {
	name   string
	args   []string
	stdin  string // literal input, or "@path" relative to testdata/
	golden string // testdata/<golden>; empty: stdout is not checked
	code   int
	stderr string // substring expected on stderr
}

var cliCases = []cliCase{
	{name: "version", args: []string{"version"}, code: 0},
	{name: "unknown verb", args: []string{"frobnicate"}, code: 2, stderr: "unknown verb"},
	{name: "check three mistakes", args: []string{"check", "-config", "testdata/check/three_mistakes.toml"}, code: 1,
		stderr: "testdata/check/three_mistakes.toml:6: inputs.lines.adress: unknown key"},
	{name: "decode payload", args: []string{"decode", "-d", "payload", "-o", "message_type=line", "-seed", "1", "-now", "2026-11-22T00:00:00Z"},
		stdin: "hello\nworld\n", golden: "decode/payload.jsonl"},
	{name: "decode unknown type", args: []string{"decode", "-d", "nope"}, code: 2, stderr: "unknown decoder type"},
	{name: "decode bad option", args: []string{"decode", "-d", "payload", "-o", "nope=1"}, code: 2, stderr: "unknown option"},
	{name: "encode payload", args: []string{"encode", "-e", "payload"}, stdin: "@messages.jsonl", golden: "encode/payload.txt"},
	{name: "encode bad json", args: []string{"encode", "-e", "payload"}, stdin: "{\"severity\":\"x\"}\n", code: 1, stderr: "message 1:"},
	{name: "match", args: []string{"match", "Type == 'auth' && Severity <= 4"}, stdin: "@messages.jsonl", golden: "match/auth.jsonl"},
	{name: "match syntax error", args: []string{"match", "Type == "}, code: 2, stderr: "position"},
}

func TestCLI(t *testing.T) {
	for _, c := range cliCases {
		t.Run(c.name, func(t *testing.T) {
			in := c.stdin
			if strings.HasPrefix(in, "@") {
				b, err := os.ReadFile(filepath.Join("testdata", in[1:]))
				require.NoError(t, err)
				in = string(b)
			}
			var out, errOut bytes.Buffer
			code := run(c.args, strings.NewReader(in), &out, &errOut)
			assert.Equal(t, c.code, code, "stderr: %s", errOut.String())
			if c.stderr != "" {
				assert.Contains(t, errOut.String(), c.stderr)
			}
			if c.golden != "" {
				pipelinetest.Golden(t, filepath.Join("testdata", c.golden), out.Bytes())
			}
		})
	}
}

// `tern check` on a config with three mistakes prints three file:line errors.
func TestCheckReportsEveryMistake(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"check", "-config", "testdata/check/three_mistakes.toml"}, nil, &out, &errOut)
	assert.Equal(t, 1, code)
	lines := strings.Split(strings.TrimSpace(errOut.String()), "\n")
	require.Len(t, lines, 4, errOut.String())
	assert.Contains(t, lines[0], "three_mistakes.toml:6: inputs.lines.adress: unknown key")
	assert.Contains(t, lines[1], "three_mistakes.toml:11: outputs.out.message_matcher:")
	assert.Contains(t, lines[2], "three_mistakes.toml:12: outputs.out.encoder: no [encoders.cef9] section")
	assert.Equal(t, "3 error(s)", lines[3])
}

// The shipped configs must always pass `tern check`.
func TestShippedConfigsCheck(t *testing.T) {
	paths := []string{"../../plugins.toml"}
	more, _ := filepath.Glob("../../bench/*.toml")
	paths = append(paths, more...)
	more, _ = filepath.Glob("../../examples/*.toml")
	paths = append(paths, more...)
	t.Setenv("TERN_BENCH_OUT", filepath.Join(t.TempDir(), "bench.out"))
	for _, p := range paths {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		var out, errOut bytes.Buffer
		code := run([]string{"check", "-config", p}, nil, &out, &errOut)
		assert.Equal(t, 0, code, "%s: %s", p, errOut.String())
	}
}

// goldenCases drive tern's verbs through run. Each writes
// testdata/cli/<name>.stdout and, when it says anything, <name>.stderr
// (go test ./cmd/tern -run TestCLI -update rewrites them). Add a row per
// case; stdin names a file, which may be another case's output.
var goldenCases = []struct {
	name  string
	args  []string
	stdin string
	code  int
}{
	{"decode-cef", []string{"decode", "-d", "cef", "-seed", "1", "-now", "2026-11-22T00:00:00Z"}, "in/app-cef.log", 0},
	{"decode-cef-typed", []string{"decode", "-d", "cef", "-o", "typed=true", "-seed", "1", "-now", "2026-11-22T00:00:00Z"}, "in/app-cef.log", 0},
	{"decode-syslog", []string{"decode", "-d", "syslog", "-seed", "1", "-now", "2026-11-22T00:00:00Z"}, "in/app-cef.log", 0},
	{"decode-syslog-auth", []string{"decode", "-d", "syslog", "-o", "require_pri=false", "-seed", "1", "-now", "2026-11-22T00:00:00Z"}, "in/auth.log", 0},
	{"decode-syslog-no-pri", []string{"decode", "-d", "syslog", "-seed", "1", "-now", "2026-11-22T00:00:00Z"}, "in/auth.log", 1},
	{"decode-syslog-octet", []string{"decode", "-d", "syslog", "-framing", "octet-counting", "-seed", "1", "-now", "2026-11-22T00:00:00Z"}, "in/octet.txt", 0},
	{"decode-syslog-auto", []string{"decode", "-d", "syslog", "-framing", "auto", "-seed", "1", "-now", "2026-11-22T00:00:00Z"}, "in/octet.txt", 0},
	{"decode-syslog-auto-lines", []string{"decode", "-d", "syslog", "-framing", "auto", "-seed", "1", "-now", "2026-11-22T00:00:00Z"}, "in/app-cef.log", 0},
	{"decode-syslog-octet-broken", []string{"decode", "-d", "syslog", "-framing", "octet-counting", "-seed", "1", "-now", "2026-11-22T00:00:00Z"}, "in/octet-broken.txt", 1},
	{"decode-bad-framing", []string{"decode", "-d", "syslog", "-framing", "lines"}, "in/octet.txt", 2},
	{"encode-cef", []string{"encode", "-e", "cef"}, "decode-cef.stdout", 0},
	{"encode-cef-syslog", []string{"encode", "-e", "cef", "-o", "syslog=true", "-o", "syslog_format=rfc3164", "-o", "syslog_hostname=router"}, "decode-cef.stdout", 0},
	{"encode-cef-from-syslog", []string{"encode", "-e", "cef"}, "decode-syslog-auth.stdout", 0},
	{"encode-syslog", []string{"encode", "-e", "syslog"}, "decode-syslog-octet.stdout", 0},
	{"encode-syslog-transparent", []string{"encode", "-e", "syslog", "-o", "escape_newlines=false"}, "decode-syslog-octet.stdout", 0},
	{"encode-syslog-3164", []string{"encode", "-e", "syslog", "-o", "format=rfc3164"}, "decode-syslog-octet.stdout", 0},
	{"encode-syslog-bad-option", []string{"encode", "-e", "syslog", "-o", "format=rfc5425"}, "decode-syslog-octet.stdout", 2},
}

func TestCLIGolden(t *testing.T) {
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			in, err := os.ReadFile(filepath.Join("testdata", "cli", c.stdin))
			if err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			if code := run(c.args, bytes.NewReader(in), &stdout, &stderr); code != c.code {
				t.Errorf("tern %s: exit %d, want %d\n%s", strings.Join(c.args, " "), code, c.code, stderr.String())
			}
			base := filepath.Join("testdata", "cli", c.name)
			pipelinetest.Golden(t, base+".stdout", stdout.Bytes())
			if _, err := os.Stat(base + ".stderr"); err == nil || stderr.Len() > 0 {
				pipelinetest.Golden(t, base+".stderr", stderr.Bytes())
			}
		})
	}
}

// tern encode gives a message what a router would before encoding it: a
// message without a timestamp is stamped now, not written as 1970, and an
// empty payload where the record's text comes from it is warned about.
func TestEncodeEngineDefaults(t *testing.T) {
	var out, errOut bytes.Buffer
	before := time.Now().UTC()
	code := run([]string{"encode", "-e", "syslog"}, strings.NewReader(`{"type":"t","hostname":"h1","payload":""}`+"\n"), &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	assert.Contains(t, errOut.String(), "message 1: warning: empty payload")
	assert.NotContains(t, out.String(), "1970-")
	// <PRI>1 TIMESTAMP HOST …: the timestamp is the encoding time.
	fields := strings.Fields(out.String())
	require.GreaterOrEqual(t, len(fields), 3, out.String())
	ts, err := time.Parse(time.RFC3339Nano, fields[1])
	require.NoError(t, err, out.String())
	assert.WithinDuration(t, before, ts, time.Minute)

	out.Reset()
	errOut.Reset()
	code = run([]string{"encode", "-e", "syslog"}, strings.NewReader(`{"timestamp":"2026-11-22T00:00:00Z","hostname":"h1","payload":"hi"}`+"\n"), &out, &errOut)
	require.Equal(t, 0, code)
	assert.Empty(t, errOut.String())
	assert.Contains(t, out.String(), "2026-11-22T00:00:00Z h1")
}
