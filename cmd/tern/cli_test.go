package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ternlog/tern/pipeline/pipelinetest"
)

// cliCases drive tern's verbs through run. Each writes
// testdata/cli/<name>.stdout and, when it says anything, <name>.stderr
// (go test ./cmd/tern -run TestCLI -update rewrites them). Add a row per
// case; stdin names a file, which may be another case's output.
var cliCases = []struct {
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

func TestCLI(t *testing.T) {
	for _, c := range cliCases {
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
