package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ternlog/tern/pipeline/pipelinetest"
)

// tern runs the CLI and returns its exit code, stdout and stderr.
func tern(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// Every verb answers -h, --help and `tern help VERB` with the same help on
// stdout and exit code 0: Usage, a one-paragraph Description, its Flags
// when it has any, and Examples.
func TestEveryVerbHasHelp(t *testing.T) {
	require.NotEmpty(t, verbs)
	for _, v := range verbs {
		t.Run(v.name, func(t *testing.T) {
			code, help, errOut := tern(v.name, "-h")
			require.Equal(t, 0, code, errOut)
			assert.Empty(t, errOut)
			assert.True(t, strings.HasPrefix(help, "Usage:\n  tern "+v.usage+"\n\nDescription:\n"), help)
			desc := section(help, "Description")
			assert.NotEmpty(t, desc, "no description")
			assert.NotContains(t, strings.TrimSpace(desc), "\n\n", "the description is one paragraph")
			assert.NotEmpty(t, v.summary)
			assert.Equal(t, strings.ToLower(v.summary[:1]), v.summary[:1], "summaries start lower-case")
			assert.False(t, strings.HasSuffix(v.summary, "."), "summaries have no final period")
			switch v.name {
			case "match", "plugins", "config", "version", "help":
				assert.NotContains(t, help, "\nFlags:\n", "a verb without flags has no Flags section")
			default:
				assert.NotEmpty(t, section(help, "Flags"), "no Flags section")
			}
			for _, args := range [][]string{{v.name, "--help"}, {v.name, "-help"}, {"help", v.name}} {
				code, again, errOut := tern(args...)
				assert.Equal(t, 0, code, "%v: %s", args, errOut)
				assert.Equal(t, help, again, "%v", args)
			}
		})
	}
}

// section returns the lines under "Title:" up to the next blank line.
func section(help, title string) string {
	_, rest, ok := strings.Cut("\n"+help, "\n"+title+":\n")
	if !ok {
		return ""
	}
	body, _, _ := strings.Cut(rest, "\n\n")
	return body
}

// tern -h, --help and help list every verb with its summary, grouped.
func TestTopHelpListsVerbs(t *testing.T) {
	code, help, errOut := tern("-h")
	require.Equal(t, 0, code, errOut)
	for _, v := range verbs {
		assert.Regexp(t, regexp.MustCompile(`(?m)^  `+v.name+` +`+regexp.QuoteMeta(v.summary)+`$`), help)
		assert.Contains(t, groups, v.group, v.name)
	}
	for _, args := range [][]string{{"--help"}, {"-help"}, {"help"}} {
		code, again, _ := tern(args...)
		assert.Equal(t, 0, code, "%v", args)
		assert.Equal(t, help, again, "%v", args)
	}
}

// Mistakes on the command line exit 2 with one short line and a hint, on
// stderr only.
func TestUsageMistakes(t *testing.T) {
	cases := []struct {
		args []string
		want []string
	}{
		{[]string{"chek"}, []string{`tern: unknown verb "chek"; did you mean "check"?`, "run 'tern help' for the list of verbs"}},
		{[]string{"dcode"}, []string{`did you mean "decode"?`}},
		{[]string{"frobnicate"}, []string{`tern: unknown verb "frobnicate"` + "\n"}},
		{[]string{"help", "chekc"}, []string{`unknown verb "chekc"; did you mean "check"?`}},
		{[]string{"-nope"}, []string{"tern run: flag provided but not defined: -nope", "run 'tern run -h' for usage"}},
		{[]string{"check", "extra"}, []string{`tern check: unexpected argument "extra"`}},
		{[]string{"version", "extra"}, []string{`tern version: unexpected argument "extra"`}},
		{[]string{"alerts"}, []string{"tern alerts: missing subcommand (list)"}},
		{[]string{"alerts", "lst"}, []string{`tern alerts: unknown subcommand "lst" (known: list)`}},
		{[]string{"plugins", "widgets"}, []string{`tern plugins: unknown kind "widgets"`}},
		{[]string{"config"}, []string{"tern config: want TYPE or KIND TYPE"}},
		{[]string{"config", "jsn"}, []string{`tern config: unknown plugin type "jsn"; did you mean "json"?`}},
		{[]string{"config", "filter", "json"}, []string{`tern config: unknown filter type "json" (known: counter, dedupe, lua, threshold)`}},
		{[]string{"config", "lua"}, []string{"tern config: lua is a decoder and a filter type; run 'tern config decoder lua' or 'tern config filter lua'"}},
		{[]string{"decode"}, []string{"tern decode: missing decoder type (known: cef, json,"}},
		{[]string{"decode", "-d", "jsn"}, []string{`tern decode: unknown decoder type "jsn"; did you mean "json"?`, "run 'tern decode -h' for usage"}},
		{[]string{"encode", "-e", "nothing"}, []string{`tern encode: unknown encoder type "nothing" (known: cef, eve,`}},
		{[]string{"match"}, []string{"tern match: want one EXPR"}},
	}
	// Every verb rejects a flag it does not have.
	for _, v := range verbs {
		cases = append(cases, struct {
			args []string
			want []string
		}{[]string{v.name, "-no-such-flag"}, []string{"tern " + v.name + ": ", "run 'tern " + v.name + " -h' for usage"}})
	}
	for _, c := range cases {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, out, errOut := tern(c.args...)
			assert.Equal(t, 2, code, errOut)
			assert.Empty(t, out)
			for _, w := range c.want {
				assert.Contains(t, errOut, w)
			}
			assert.LessOrEqual(t, strings.Count(errOut, "\n"), 2, "short: %s", errOut)
			for _, line := range strings.Split(strings.TrimSpace(errOut), "\n") {
				assert.False(t, strings.HasSuffix(line, "."), "no final period: %q", line)
			}
		})
	}
}

func TestEditDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		d    int
	}{{"check", "check", 0}, {"chek", "check", 1}, {"chekc", "check", 1}, {"dcode", "decode", 1}, {"", "abc", 3}, {"flood", "float", 2}, {"run", "tap", 3}} {
		assert.Equal(t, c.d, editDistance(c.a, c.b), "%s %s", c.a, c.b)
	}
	assert.Equal(t, "", didYouMean("frobnicate", verbNames()))
}

// tern version, --version and -version print the version, the Go version
// and the platform, and the VCS revision (or say it is unknown).
func TestVersion(t *testing.T) {
	defer func(v string) { version = v }(version)
	version = "1.2.3-test"
	code, out, errOut := tern("version")
	require.Equal(t, 0, code, errOut)
	assert.Regexp(t, `^tern 1\.2\.3-test \(go1\.\S+ \w+/\w+, revision (unknown|[0-9a-f]{12}.*)\)\n$`, out)
	for _, args := range [][]string{{"--version"}, {"-version"}} {
		code, again, _ := tern(args...)
		assert.Equal(t, 0, code)
		assert.Equal(t, out, again)
	}
}

// decode -h and encode -h list the types of the registry, with summaries.
func TestCodecHelpListsTypes(t *testing.T) {
	reg := registry()
	_, help, _ := tern("decode", "-h")
	types := section(help, "Decoder types")
	for _, f := range reg.Decoders {
		assert.Regexp(t, `(?m)^  `+f.Type+` +`+regexp.QuoteMeta(f.Summary)+`$`, types)
	}
	assert.Equal(t, len(reg.Decoders), strings.Count(types, "\n")+1)
	_, help, _ = tern("encode", "-h")
	types = section(help, "Encoder types")
	for _, f := range reg.Encoders {
		assert.Regexp(t, `(?m)^  `+f.Type+` +`+regexp.QuoteMeta(f.Summary)+`$`, types)
	}
	assert.Equal(t, len(reg.Encoders), strings.Count(types, "\n")+1)
}

// tern plugins lists every registered type under its kind with its summary;
// tern plugins KIND only that kind.
func TestPlugins(t *testing.T) {
	code, out, errOut := tern("plugins")
	require.Equal(t, 0, code, errOut)
	all := pluginTypes(registry())
	require.Len(t, all, 33)
	for _, p := range all {
		require.NotEmpty(t, p.summary, "%s %s", p.kind, p.typ)
		assert.Regexp(t, `(?m)^  `+p.typ+` +`+regexp.QuoteMeta(p.summary)+`$`, section(out, p.kind), p.kind)
	}
	assert.True(t, strings.HasPrefix(out, "inputs:\n"), out)
	code, out, _ = tern("plugins", "filter")
	require.Equal(t, 0, code)
	assert.Equal(t, "filters:\n", out[:9])
	assert.Equal(t, 5, strings.Count(out, "\n"), out)
	code, out2, _ := tern("plugins", "filters")
	assert.Equal(t, 0, code)
	assert.Equal(t, out, out2)
}

// tern config [KIND] TYPE prints the plugin's embedded sample.toml; a type
// of several kinds needs its kind.
func TestConfigPrintsSample(t *testing.T) {
	all := pluginTypes(registry())
	count := map[string]int{}
	for _, p := range all {
		count[p.typ]++
	}
	for _, p := range all {
		kind := strings.TrimSuffix(p.kind, "s")
		code, out, errOut := tern("config", kind, p.typ)
		require.Equal(t, 0, code, "%s %s: %s", kind, p.typ, errOut)
		assert.Equal(t, p.sample, out, "%s %s", kind, p.typ)
		sample, err := os.ReadFile(filepath.Join("../..", p.kind, p.typ, "sample.toml"))
		require.NoError(t, err)
		assert.Equal(t, string(sample), out)
		code, out, errOut = tern("config", p.typ)
		if count[p.typ] == 1 {
			assert.Equal(t, 0, code, errOut)
			assert.Equal(t, p.sample, out)
		} else {
			assert.Equal(t, 2, code)
			assert.Contains(t, errOut, "'tern config "+kind+" "+p.typ+"'")
		}
	}
	assert.Equal(t, 4, count["syslog"], "syslog is an input, a decoder, an encoder and an output")
}

// writeConfig writes a config into a new directory and returns its path.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "tern.toml")
	require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	return p
}

// tern run refuses a config tern check rejects: same errors, every one of
// them, exit 1, and nothing opened or written (no data directory, no output
// file, no listener).
func TestRunRefusesWhatCheckRejects(t *testing.T) {
	cfg := writeConfig(t, `
[tern]
data_dir = "data"
metrics_address = "127.0.0.1:0"

[inputs.lines]
type = "tcp"
address = "127.0.0.1:0"
decoder = "payload"

[filters.detect]
type = "lua"
message_matcher = "TRUE"
filename = "no_such_script.lua"
alert_definitions = "no_such_dir"

[outputs.out]
type = "file"
message_matcher = "TRUE"
path = "out/all.log"
use_buffering = true
`)
	dir := filepath.Dir(cfg)
	code, _, checkErr := tern("check", "-config", cfg)
	require.Equal(t, 1, code, checkErr)
	code, out, runErr := tern("run", "-config", cfg)
	assert.Equal(t, 1, code, runErr)
	assert.Empty(t, out)
	for _, want := range []string{
		cfg + ":11: filters.detect: load: open " + filepath.Join(dir, "no_such_script.lua") + ": no such file or directory",
		cfg + ":11: filters.detect: load: alert_definitions: stat " + filepath.Join(dir, "no_such_dir") + ": no such file or directory",
	} {
		assert.Contains(t, checkErr, want)
		assert.Contains(t, runErr, want)
	}
	assert.True(t, strings.HasSuffix(checkErr, "\n2 error(s)\n"), checkErr)
	assert.Equal(t, strings.TrimSuffix(checkErr, "\n")+"; not started\n", runErr, "run reports exactly what check does")
	for _, p := range []string{"data", "out"} {
		_, err := os.Stat(filepath.Join(dir, p))
		assert.True(t, os.IsNotExist(err), "%s was created", p)
	}

	// A config that does not parse, or does not exist, is refused too.
	bad := writeConfig(t, "[inputs.x\n")
	code, _, errOut := tern("run", "-config", bad)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, bad+":2: ")
	code, _, errOut = tern("run", "-config", filepath.Join(dir, "nope.toml"))
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "no such file or directory\nnot started\n")
}

// A tail pattern that matches no file is a warning in check and in run,
// not an error.
func TestTailGlobWarning(t *testing.T) {
	cfg := writeConfig(t, `
[tern]
data_dir = "data"
metrics_address = ""

[inputs.logs]
type = "tail"
paths = ["logs/*.log"]
decoder = "payload"
exit_after_eof = true

[outputs.out]
type = "null"
message_matcher = "TRUE"
`)
	pattern := filepath.Join(filepath.Dir(cfg), "logs", "*.log")
	code, out, errOut := tern("check", "-config", cfg)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, out, ": ok (1 inputs, 0 filters, 1 outputs)")
	assert.Equal(t, fmt.Sprintf("%s:6: warning: inputs.logs.paths: no file matches %q yet\n", cfg, pattern), errOut)

	// run logs it and goes on (the input ends at once: exit_after_eof).
	code, _, errOut = tern("run", "-config", cfg)
	require.Equal(t, 0, code, errOut)
	assert.Contains(t, errOut, fmt.Sprintf(`level=WARN msg="no file matches \"%s\" yet" config=%s:6 key=inputs.logs.paths`, pattern, cfg))

	// With a file there, no warning.
	require.NoError(t, os.MkdirAll(filepath.Join(filepath.Dir(cfg), "logs"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(filepath.Dir(cfg), "logs", "a.log"), []byte("x\n"), 0o644))
	code, _, errOut = tern("check", "-config", cfg)
	require.Equal(t, 0, code)
	assert.Empty(t, errOut)
}

// A running tern exports every counter at zero for each plugin it applies
// to before any traffic, and tern_build_info: scraped from /metrics of a
// real engine started from a config by tern run's code.
func TestMetricsFromZero(t *testing.T) {
	if testing.Short() {
		t.Skip("starts listeners")
	}
	defer func(v string) { version = v }(version)
	version = "9.9.9-test"
	abs := func(p string) string {
		a, err := filepath.Abs(filepath.Join("../..", p))
		require.NoError(t, err)
		return a
	}
	dir := t.TempDir()
	logFile := filepath.Join(dir, "in.log")
	require.NoError(t, os.WriteFile(logFile, nil, 0o644))
	cfg := writeConfig(t, fmt.Sprintf(`
[tern]
data_dir = %q
metrics_address = "127.0.0.1:0"
progress_interval = "0s"

[inputs.lines]
type = "tcp"
address = "127.0.0.1:0"
decoder = "payload"

[inputs.native]
type = "tcp"
address = "127.0.0.1:0"
framing = "native"
decoder = "msgpack"

[inputs.syslog]
type = "syslog"
udp_address = "127.0.0.1:0"
tcp_address = "127.0.0.1:0"
decoder = ["syslog", "cef"]

[inputs.web]
type = "http"
address = "127.0.0.1:0"
insecure_no_auth = true
decoder = "json"

[inputs.file]
type = "tail"
paths = [%q]
decoder = ["auth_syslog", "sshd"]

[decoders.auth_syslog]
type = "syslog"
format = "rfc3164"
require_pri = false

[decoders.sshd]
type = "lua"
filename = %q

[filters.ssh]
type = "lua"
message_matcher = "Fields[sshd.event] == 'failed_password'"
filename = %q
alert_definitions = %q
failure_policy = "deadletter"

[filters.flood]
type = "threshold"
message_matcher = "Type == 'zeek.conn'"
key = "Fields[id.orig_h]"
threshold = 100

[outputs.eve]
type = "file"
message_matcher = "Type == 'tern.alert'"
encoder = "eve"
path = %q

[outputs.siem]
type = "syslog"
message_matcher = "Type == 'tern.alert'"
address = "127.0.0.1:9"
encoder = "cef"
full_action = "drop_newest"

[outputs.spool]
type = "null"
message_matcher = "TRUE"
use_buffering = true
`, filepath.Join(dir, "data"), logFile, abs("decoders/lua/scripts/sshd.lua"),
		abs("filters/lua/scripts/ssh_bruteforce.lua"), abs("filters/lua/alerts"), filepath.Join(dir, "eve.json")))

	ctx, cancel := context.WithCancel(context.Background())
	var stderr pipelinetest.SyncBuffer
	done := make(chan int, 1)
	go func() { done <- runConfig(ctx, cfg, "", &stderr, nil) }()
	defer func() {
		cancel()
		select {
		case code := <-done:
			assert.Equal(t, 0, code, stderr.String())
		case <-time.After(30 * time.Second):
			t.Error("tern did not stop")
		}
	}()
	addr := regexp.MustCompile(`msg="serving metrics" address=(\S+)`)
	var m []string
	for deadline := time.Now().Add(20 * time.Second); m == nil; time.Sleep(10 * time.Millisecond) {
		if m = addr.FindStringSubmatch(stderr.String()); m == nil && (time.Now().After(deadline) || len(done) > 0) {
			t.Fatalf("tern did not serve metrics:\n%s", stderr.String())
		}
	}
	resp, err := http.Get("http://" + m[1] + "/metrics")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	metrics := string(body)

	assert.Regexp(t, `(?m)^tern_build_info\{goversion="go1\.[^"]+",revision="[0-9a-f]*",version="9\.9\.9-test"\} 1$`, metrics)
	zero := []string{
		// the engine's own, per plugin
		`tern_input_records_total{plugin="inputs.file"}`,
		`tern_input_messages_total{plugin="inputs.web"}`,
		`tern_dropped_total{plugin="inputs.lines",reason="no_match"}`,
		`tern_plugin_errors_total{plugin="inputs.syslog",kind="restart"}`,
		`tern_dead_letters_total{plugin="decoders.sshd",reason="decode_error"}`,
		`tern_dead_letters_total{plugin="decoders.cef",reason="decode_error"}`,
		`tern_dead_letters_total{plugin="decoders.msgpack",reason="decode_error"}`,
		`tern_filter_messages_total{plugin="filters.ssh"}`,
		`tern_dropped_total{plugin="filters.flood",reason="loop"}`,
		`tern_dropped_total{plugin="filters.ssh",reason="no_match"}`,
		`tern_output_messages_total{plugin="outputs.eve"}`,
		`tern_dead_letters_total{plugin="outputs.siem",reason="output_rejected"}`,
		`tern_dead_letters_total{plugin="encoders.eve",reason="encode_error"}`,
		`tern_dropped_total{plugin="outputs.siem",reason="queue_full"}`,
		`tern_dropped_total{plugin="outputs.spool",reason="queue_full"}`,
		`tern_dropped_total{plugin="engine",reason="deadletter_lost"}`,
		`tern_dropped_total{plugin="engine",reason="deadletter_queue_full"}`,
		`tern_dropped_total{plugin="filters.ssh",reason="overflow_full"}`,
		`tern_dropped_total{plugin="outputs.eve",reason="overflow_full"}`,
		`tern_dead_letters_total{plugin="filters.ssh",reason="filter_failed"}`,
		// declared by the plugins
		`tern_dropped_total{plugin="inputs.lines",reason="oversize"}`,
		`tern_connections_refused_total{plugin="inputs.lines"}`,
		`tern_connections_evicted_total{plugin="inputs.lines"}`,
		`tern_plugin_errors_total{plugin="inputs.lines",kind="framing"}`,
		`tern_plugin_errors_total{plugin="inputs.native",kind="frame_too_large"}`,
		`tern_plugin_errors_total{plugin="inputs.native",kind="bad_batch"}`,
		`tern_plugin_errors_total{plugin="inputs.syslog",kind="accept"}`,
		`tern_dropped_total{plugin="inputs.syslog",reason="oversize"}`,
		`tern_http_input_rejected_total{plugin="inputs.web",reason="auth",status="401"}`,
		`tern_http_input_rejected_total{plugin="inputs.web",reason="body_too_large",status="413"}`,
		`tern_dropped_total{plugin="inputs.web",reason="oversize"}`,
		`tern_dropped_total{plugin="inputs.file",reason="truncated"}`,
		`tern_plugin_errors_total{plugin="inputs.file",kind="checkpoint"}`,
		`tern_dropped_total{plugin="decoders.sshd",reason="lua_error"}`,
		`tern_lua_failures_total{plugin="decoders.sshd",kind="runtime"}`,
		`tern_lua_failures_total{plugin="filters.ssh",kind="instruction_limit"}`,
		`tern_lua_failures_total{plugin="filters.ssh",kind="return"}`,
		`tern_plugin_errors_total{plugin="filters.ssh",kind="lua_memory_limit"}`,
		`tern_dropped_total{plugin="filters.ssh",reason="deadletter_failed"}`,
		`tern_dropped_total{plugin="filters.flood",reason="threshold_keys"}`,
		`tern_plugin_errors_total{plugin="outputs.eve",kind="fsync"}`,
		`tern_plugin_errors_total{plugin="outputs.siem",kind="connect"}`,
		`tern_dropped_total{plugin="outputs.spool",reason="corrupt_record"}`,
		`tern_buffer_io_errors_total{plugin="outputs.spool",op="write"}`,
		`tern_buffer_quarantined_total{plugin="outputs.spool",what="segment"}`,
		`tern_cef_invalid_keys_total{plugin="encoders.cef",action="rename"}`,
	}
	for _, s := range zero {
		assert.Contains(t, metrics, promLine(s)+" 0\n")
	}
	// The README's Metrics section names every tern metric and every
	// reason and kind this config exports.
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	_, doc, _ := strings.Cut(string(readme), "\n## Metrics\n")
	doc, _, _ = strings.Cut(doc, "\n## ")
	for _, m := range regexp.MustCompile(`(?m)^# TYPE (tern_\w+) `).FindAllStringSubmatch(metrics, -1) {
		assert.Contains(t, doc, "`"+m[1]+"`", "README.md Metrics: metric %s", m[1])
	}
	for _, m := range regexp.MustCompile(`(?:reason|kind|op|what|action)="(\w+)"`).FindAllStringSubmatch(metrics, -1) {
		v := m[1]
		if strings.HasPrefix(v, "lua_") {
			v = "lua_<kind>"
		}
		assert.Contains(t, doc, "`"+v+"`", "README.md Metrics: %s", m[0])
	}

	// What cannot happen is not exported: tls_handshake without TLS, a
	// queue that blocks never sheds.
	assert.NotContains(t, metrics, promLine(`tern_plugin_errors_total{plugin="inputs.lines",kind="tls_handshake"}`))
	assert.NotContains(t, metrics, promLine(`tern_dropped_total{plugin="outputs.eve",reason="queue_full"}`))
}

// promLine writes a series as the Prometheus text format does: labels
// sorted by name.
func promLine(s string) string {
	name, rest, _ := strings.Cut(s, "{")
	labels := strings.Split(strings.TrimSuffix(rest, "}"), ",")
	for i := 1; i < len(labels); i++ {
		for j := i; j > 0 && labels[j] < labels[j-1]; j-- {
			labels[j], labels[j-1] = labels[j-1], labels[j]
		}
	}
	return name + "{" + strings.Join(labels, ",") + "}"
}
