package lua

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runAlerts runs body inside process_message and returns the injected
// messages' JSON, or the error.
func runAlerts(t *testing.T, body string, defs string) (string, error) {
	t.Helper()
	f, _ := newFilter(t, "function process_message()\n"+body+"\nreturn 0 end", func(c *Config) {
		if defs != "" {
			c.AlertDefinitions = defs
		}
	})
	rec := &recorder{}
	err := f.Process(context.Background(), testMessage(), rec)
	return string(rec.jsonl()), err
}

func TestHakaValidation(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`alert{colour = "red"}`, "unexpected field 'colour'"},
		{`alert{severity = "critical"}`, "invalid severity value 'critical'"},
		{`alert{severity = 3}`, "invalid severity value '3'"},
		{`alert{confidence = "sure"}`, "invalid confidence value 'sure'"},
		{`alert{completion = "done"}`, "invalid completion value 'done'"},
		{`alert{method = "x"}`, "invalid method value 'x'"},
		{`alert{method = {description = "d", why = 1}}`, "unexpected field 'why'"},
		{`alert{sources = "10.0.0.1"}`, "invalid sources value '10.0.0.1'"},
		{`alert{targets = {{type = "host", values = {"x"}}}}`, "invalid targets value"},
		{`alert{ref = {"nope"}}`, "invalid ref value 'nope'"},
		{`alert{start_time = "yesterday"}`, "invalid start_time value 'yesterday'"},
		{`alert.update({}, {})`, "alert handle expected"},
		{`local a = alert{} a:update{severity = "extreme"}`, "invalid severity value 'extreme'"},
	} {
		out, err := runAlerts(t, tc.body, "")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: want %q, got %v", tc.body, tc.want, err)
		}
		if out != "" {
			t.Errorf("%s: a failing call emits nothing, got %s", tc.body, out)
		}
	}
}

func TestHakaAlert(t *testing.T) {
	out, err := runAlerts(t, `
local a = haka.alert{
  start_time = "1795161629339123456", end_time = 1795161630.5,
  description = "packet received", severity = "medium", confidence = 7, completion = "failed",
  method = {description = "guessing", ref = "cve:2014-0160"},
  sources = alert.address("192.168.20.99", "evil.host.fqdn"),
  targets = {alert.address("10.0.0.1"), alert.service("tcp/22", 22)},
}
local b = alert{ref = a, description = "second"}
a:update{completion = "successful"}
alert.update(b, {severity = "high"})`, "")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 {
		t.Fatalf("want 4 messages, got %d:\n%s", len(lines), out)
	}
	want0 := `"severity":4,"payload":"alert: id = 1 time = Sun Nov 22 00:00:00 2026 start time = Fri Nov 20 08:00:29 2026 end time = Fri Nov 20 08:00:30 2026 severity = medium confidence = 7 completion = failed description = packet received method = { \tdescription = guessing \tref = { cve:2014-0160 } } sources = { \taddress: 192.168.20.99, evil.host.fqdn } targets = { \taddress: 10.0.0.1 \tservice: tcp/22, 22 }","env_version":"","pid":0,"hostname":"test-host","fields":[{"name":"alert.id","type":"integer","value":[1]},{"name":"alert.start_time","type":"integer","value":[1795161629339123456],"representation":"ns"},{"name":"alert.end_time","type":"integer","value":[1795161630500000000],"representation":"ns"},{"name":"alert.description","type":"string","value":["packet received"]},{"name":"alert.severity","type":"string","value":["medium"]},{"name":"alert.confidence","type":"double","value":[7.0]},{"name":"alert.completion","type":"string","value":["failed"]},{"name":"alert.method.description","type":"string","value":["guessing"]},{"name":"alert.method.ref","type":"string","value":["cve:2014-0160"]},{"name":"alert.source","type":"string","value":["192.168.20.99","evil.host.fqdn"],"representation":"address"},{"name":"alert.target","type":"string","value":["10.0.0.1"],"representation":"address"},{"name":"alert.target","type":"string","value":["tcp/22","22"],"representation":"service"}]}`
	if !strings.HasSuffix(lines[0], want0) || !strings.Contains(lines[0], `"type":"tern.alert","logger":"test"`) {
		t.Errorf("first alert:\n%s\nwant suffix\n%s", lines[0], want0)
	}
	for i, want := range []string{
		`"payload":"alert: id = 2 time = Sun Nov 22 00:00:00 2026 description = second refs = { 1 }"`,
		`"payload":"alert: update id = 1 time = Sun Nov 22 00:00:00 2026 completion = successful","env_version":"","pid":0,"hostname":"test-host","fields":[{"name":"alert.id","type":"integer","value":[1]},{"name":"alert.update","type":"bool","value":[true]},{"name":"alert.completion","type":"string","value":["successful"]}]`,
		`"severity":2,"payload":"alert: update id = 2 time = Sun Nov 22 00:00:00 2026 severity = high"`,
	} {
		if !strings.Contains(lines[i+1], want) {
			t.Errorf("message %d:\n%s\nwant\n%s", i+2, lines[i+1], want)
		}
	}
}

func TestRaise(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"alert_keys.lua": `return {user = {alert_custom = 32768}}`,
		"custom.lua": `return {alert_key = alert_keys.user.alert_custom, i18n_title = "alerts.custom.title",
			i18n_description = "alerts.custom.description", icon = "fas fa-bell", targets = "victim"}`,
		"ssh.lua": `return {alert_key = alert_keys.builtin.alert_ssh_bruteforce, i18n_title = "alerts.ssh_bruteforce.title",
			i18n_description = function(ifid, alert, info) return ifid .. ":" .. info.n .. ":" .. alert.severity end}`,
		"locales/en.lua": `return {alerts = {custom = {title = "Custom", description = "%{who} did %{what} (%{severity})"}}}`,
		"locales/fr.lua": `return {alerts = {custom = {title = "Personnalisée"}}}`,
	}
	for name, src := range files {
		p := filepath.Join(dir, name)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := runAlerts(t, `
alert.raise("alert_custom", {severity = "low", targets = alert.address("10.0.0.9")}, {who = "bob", what = "x", context = {flow_id = 42, proto = "tcp"}})
alert.raise(alert_keys.builtin.alert_ssh_bruteforce, {severity = "high"}, {n = 3})
alert.raise(32768, {description = "given", targets = alert.address("h")})`, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`{"name":"alert.description","type":"string","value":["bob did x (low)"]}`,
		`{"name":"alert.key","type":"integer","value":[32768]},{"name":"alert.key_name","type":"string","value":["alert_custom"]},{"name":"alert.title","type":"string","value":["Custom"]},{"name":"alert.context.flow_id","type":"integer","value":[42]},{"name":"alert.context.proto","type":"string","value":["tcp"]}`,
		`{"name":"alert.description","type":"string","value":["test:3:high"]}`,
		`{"name":"alert.title","type":"string","value":["SSH brute force"]}`,
		`{"name":"alert.description","type":"string","value":["given"]}`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("want %s in\n%s", want, out)
		}
	}
	for body, want := range map[string]string{
		`alert.raise("alert_nope", {})`:      "unknown alert key 'alert_nope'",
		`alert.raise("alert_custom", {})`:    "alert_custom: targets required (victim)",
		`alert.raise("alert_custom", {x=1})`: "unexpected field 'x'",
	} {
		if _, err := runAlerts(t, body, dir); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: want %q, got %v", body, want, err)
		}
	}
	if _, err := runAlerts(t, `alert.raise("alert_custom", {})`, ""); err == nil || !strings.Contains(err.Error(), "no alert_definitions configured") {
		t.Errorf("without definitions: %v", err)
	}
}

// The shipped scripts carry Heka's documentation header: purpose, config
// keys and an example TOML section.
func TestScriptHeaders(t *testing.T) {
	for _, dir := range []string{"scripts"} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.lua"))
		if len(files) == 0 {
			t.Fatalf("no scripts in %s", dir)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			s := string(b)
			head, _, ok := strings.Cut(s, "--]]")
			if !strings.HasPrefix(s, "--[[") || !ok || !strings.Contains(head, "Example") || !strings.Contains(head, `type = "lua"`) {
				t.Errorf("%s: needs a --[[ … --]] header with a description, its config and an Example TOML section", f)
			}
		}
	}
}
