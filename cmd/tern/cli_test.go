package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
