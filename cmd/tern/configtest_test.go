package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The shipped tests of the default config pass (make test runs them too,
// through this test).
func TestTestPluginsToml(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"test", "-v", "-config", "../../plugins.toml", "../../plugins_test.toml"}, nil, &out, &errb)
	require.Equal(t, 0, code, "%s\n%s", out.String(), errb.String())
	assert.Contains(t, out.String(), "ok   ten failed SSH passwords")
	assert.Regexp(t, `(?m)^[1-9][0-9]* tests, 0 failed$`, out.String())
}

// A failed expectation exits 1 and shows the test, its line, what was
// wanted and what was received.
func TestTestReportsFailures(t *testing.T) {
	tests := filepath.Join(t.TempDir(), "t.toml")
	require.NoError(t, os.WriteFile(tests, []byte(`start = "2026-11-20T09:00:00Z"

[[test]]
name = "a message"
  [[test.step]]
  messages = ['{"type":"app.login","hostname":"web-2"}']
  [[test.expect]]
  plugin = "outputs.messages"
  count = 2
  [[test.expect]]
  plugin = "outputs.messages"
  fields = { "Hostname" = "web-9" }
  [[test.expect]]
  plugin = "outputs.nope"
`), 0o644))
	var out, errb bytes.Buffer
	code := run([]string{"test", "-config", "../../plugins.toml", tests}, nil, &out, &errb)
	assert.Equal(t, 1, code, errb.String())
	got := out.String()
	assert.Contains(t, got, "FAIL a message ("+tests+":3)")
	assert.Contains(t, got, tests+":7: outputs.messages: want 2 messages, got 1 (of 1 received)")
	assert.Contains(t, got, `received: {"uuid":`)
	assert.Contains(t, got, `"hostname":"web-2"`)
	assert.Contains(t, got, tests+`:10: outputs.messages: want at least one message with Hostname = "web-9", got 0 (of 1 received)`)
	assert.Contains(t, got, `not matched: Hostname = "web-2"`)
	assert.Contains(t, got, tests+":13: outputs.nope is not a filter or output of ../../plugins.toml (")
	assert.Contains(t, got, "1 tests, 1 failed")
}

// A wrong tests file exits 2, each mistake at its line and key.
func TestTestBadFile(t *testing.T) {
	tests := filepath.Join(t.TempDir(), "t.toml")
	require.NoError(t, os.WriteFile(tests, []byte(`[[test]]
name = "x"
  [[test.step]]
  input = "auth_log"
  advance = "1s"
  [[test.expect]]
  plugin = "outputs.messages"
  matcher = "Type =="
  cuont = 1
  [[test.alert]]
  severity = "urgent"
  count = -1
`), 0o644))
	var out, errb bytes.Buffer
	code := run([]string{"test", "-config", "../../plugins.toml", tests}, nil, &out, &errb)
	assert.Equal(t, 2, code)
	got := errb.String()
	assert.Contains(t, got, tests+":9: test.expect.cuont: unknown key")
	assert.Contains(t, got, tests+":3: test[0].step: input and records go together")
	assert.Contains(t, got, tests+":3: test[0].step: one of input with records, messages, or advance")
	assert.Contains(t, got, tests+":6: test[0].expect.matcher: ")
	assert.Contains(t, got, tests+`:10: test[0].alert.severity: low, medium or high, not "urgent"`)
	assert.Contains(t, got, tests+":10: test[0].alert.count: must be 0 or more")

	code = run([]string{"test", "-config", "../../plugins.toml"}, nil, &out, &errb)
	assert.Equal(t, 2, code, "no tests file")
}

// Timer events fire on the simulated clock at every ticker_interval that
// Advance passes, see the time of the tick, and what they inject is routed.
func TestTestSimulatedClock(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "count.lua"), []byte(`
local n = 0
function process_message() n = n + 1; return 0 end
function timer_event(ns)
  inject_message{Type = "tick", Fields = {seen = n, at = os.date("!%H:%M:%S", math.floor(ns / 1e9))}}
  return 0
end
`), 0o644))
	cfg := filepath.Join(dir, "tern.toml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
[inputs.lines]
type = "stdin"
decoder = "payload"

[filters.count]
type = "lua"
message_matcher = "Type != 'tick'"
filename = "count.lua"
ticker_interval = "10s"

[outputs.ticks]
type = "file"
message_matcher = "Type == 'tick'"
encoder = "json"
path = "ticks.jsonl"
`), 0o644))
	tests := filepath.Join(dir, "t.toml")
	require.NoError(t, os.WriteFile(tests, []byte(`start = "2026-11-20T09:00:00Z"

[[test]]
name = "ticks"
  [[test.step]]
  input = "lines"
  records = ["one", "two"]
  [[test.step]]
  advance = "35s"
  [[test.step]]
  input = "lines"
  records = ["three"]
  [[test.step]]
  advance = "5s"
  [[test.expect]]
  plugin = "outputs.ticks"
  count = 4
  [[test.expect]]
  plugin = "outputs.ticks"
  fields = { "Fields[seen]" = "2", "Fields[at]" = "09:00:30" }
  count = 1
  [[test.expect]]
  plugin = "outputs.ticks"
  fields = { "Fields[seen]" = "3", "Fields[at]" = "09:00:40" }
  count = 1
`), 0o644))
	var out, errb bytes.Buffer
	code := run([]string{"test", "-config", cfg, tests}, nil, &out, &errb)
	require.Equal(t, 0, code, "%s\n%s", out.String(), errb.String())
	_, err := os.Stat(filepath.Join(dir, "ticks.jsonl"))
	assert.True(t, os.IsNotExist(err), "outputs must not write in a test")
	assert.False(t, strings.Contains(out.String(), "FAIL"))
}

// sshFailures returns n sshd "Failed password" lines from ip, 3 s apart
// from 09:00:10, as a TOML array.
func sshFailures(n int, ip string) string {
	var b strings.Builder
	b.WriteString("[\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  \"Nov 20 09:%02d:%02d bastion1 sshd[%d]: Failed password for root from %s port %d ssh2\",\n",
			(10+3*i)/60, (10+3*i)%60, 5000+i, ip, 40000+i)
	}
	b.WriteString("  ]")
	return b.String()
}

// Alert assertions read the alerts a filter raised (wherever they went);
// a step's assertions see only what happened during that step; the report
// shows each raised alert with what differs from the assertion.
func TestTestAlerts(t *testing.T) {
	tests := filepath.Join(t.TempDir(), "t.toml")
	write := func(sev string) {
		require.NoError(t, os.WriteFile(tests, []byte(`start = "2026-11-20T09:00:00Z"

[[test]]
name = "brute force"
  [[test.step]]
  input = "auth_log"
  records = `+sshFailures(11, "203.0.113.77")+`
    [[test.step.alert]]
    filter = "ssh_bruteforce"
    title = "SSH brute force"
    severity = "`+sev+`"
    sources = ["203.0.113.77"]
    update = false
    count = 1
  [[test.step]]
  advance = "2m"
    [[test.step.alert]]
    filter = "filters.ssh_bruteforce"
    update = true
    count = 1
  [[test.alert]]
  key_name = "alert_ssh_bruteforce"
  count = 2
  [[test.alert]]
  filter = "nope"
`), 0o644))
	}
	write("high")
	var out, errb bytes.Buffer
	code := run([]string{"test", "-config", "../../plugins.toml", tests}, nil, &out, &errb)
	assert.Equal(t, 1, code, errb.String())
	got := out.String()
	// Only the unknown filter fails.
	assert.Contains(t, got, tests+":36: nope is not a filter of ../../plugins.toml (filters.")
	assert.Equal(t, 2, strings.Count(got, tests+":"), "the test and one assertion fail:\n%s", got)

	write("medium")
	out.Reset()
	code = run([]string{"test", "-config", "../../plugins.toml", tests}, nil, &out, &errb)
	assert.Equal(t, 1, code, errb.String())
	got = out.String()
	assert.Contains(t, got, tests+`:20: alerts of ssh_bruteforce: want 1 alert with title = "SSH brute force", severity = "medium", sources = ["203.0.113.77"], update = false, got 0 (of 1 raised)`)
	assert.Contains(t, got, `raised from ssh_bruteforce: title = "SSH brute force", key_name = "alert_ssh_bruteforce", severity = "high", description = "10 failed SSH logins`)
	assert.Contains(t, got, `differs: severity = "high", want "medium"`)
	assert.Contains(t, got, "(during the step at line 5)")
	assert.Contains(t, got, "1 tests, 1 failed")
}

// A step's expectations count what arrived during that step only.
func TestTestStepExpect(t *testing.T) {
	tests := filepath.Join(t.TempDir(), "t.toml")
	require.NoError(t, os.WriteFile(tests, []byte(`[[test]]
name = "two steps"
  [[test.step]]
  messages = ['{"type":"app.login"}']
    [[test.step.expect]]
    plugin = "outputs.messages"
    count = 1
  [[test.step]]
  messages = ['{"type":"app.logout"}']
    [[test.step.expect]]
    plugin = "outputs.messages"
    matcher = "Type == 'app.login'"
    count = 0
    [[test.step.expect]]
    plugin = "outputs.messages"
    count = 2
  [[test.expect]]
  plugin = "outputs.messages"
  count = 2
`), 0o644))
	var out, errb bytes.Buffer
	code := run([]string{"test", "-config", "../../plugins.toml", tests}, nil, &out, &errb)
	assert.Equal(t, 1, code, errb.String())
	got := out.String()
	assert.Contains(t, got, tests+":14: outputs.messages: want 2 messages, got 1 (of 1 received)")
	assert.Contains(t, got, "(during the step at line 8)")
	assert.Equal(t, 2, strings.Count(got, tests+":"), "the test and one assertion fail:\n%s", got)
}

// A message an output's encoder refuses is not written but becomes a dead
// letter, as in a running router; with no output for dead letters, a test
// sees it as received by "unrouted".
func TestTestEncodeFailure(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "tern.toml")
	require.NoError(t, os.WriteFile(cfg, []byte(`
[inputs.lines]
type = "stdin"
decoder = "json"

[encoders.cef]
type = "cef"
severity_field = "sev"

[outputs.siem]
type = "file"
message_matcher = "Type == 'ev'"
encoder = "cef"
path = "siem.cef"
`), 0o644))
	tests := filepath.Join(dir, "t.toml")
	require.NoError(t, os.WriteFile(tests, []byte(`[[test]]
name = "bad severity"
  [[test.step]]
  messages = [
    '{"type":"ev","fields":[{"name":"sev","type":"string","value":["7"]}]}',
    '{"type":"ev","fields":[{"name":"sev","type":"string","value":["bogus"]}]}',
  ]
  [[test.expect]]
  plugin = "outputs.siem"
  count = 1
  output_contains = ["|7|"]
  [[test.expect]]
  plugin = "unrouted"
  count = 1
  fields = { "Type" = "tern.deadletter", "Fields[deadletter.reason]" = "encode_error", "Fields[deadletter.plugin]" = "encoders.cef" }
  [[test.expect]]
  plugin = "outputs.siem"
  count = 2
`), 0o644))
	var out, errb bytes.Buffer
	code := run([]string{"test", "-config", cfg, tests}, nil, &out, &errb)
	assert.Equal(t, 1, code, errb.String())
	got := out.String()
	assert.Contains(t, got, tests+":16: outputs.siem: want 2 messages, got 1 (of 1 received)")
	assert.Contains(t, got, `the encoder refused (a dead letter instead): cef: sev "bogus" is not a CEF severity`)
	assert.Equal(t, 2, strings.Count(got, tests+":"), "the test and one assertion fail:\n%s", got)
	_, err := os.Stat(filepath.Join(dir, "siem.cef"))
	assert.True(t, os.IsNotExist(err), "outputs must not write in a test")
}
