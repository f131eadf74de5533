package lua

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ternlog/tern/internal/alert"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
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
		{`alert{ref = {1}}`, "invalid ref value '1'"},
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
alert.update(b, {severity = "high"})
local c = alert{ref = {a.id, b}}`, "")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 {
		t.Fatalf("want 5 messages, got %d:\n%s", len(lines), out)
	}
	ids := make([]string, len(lines))
	for i, l := range lines {
		m := pipeline.NewMessage()
		if err := codec.DecodeJSON([]byte(l), m, nil); err != nil {
			t.Fatal(err)
		}
		ids[i], _ = m.FieldString("alert.id")
		if !alert.ValidID(ids[i]) {
			t.Fatalf("message %d: alert.id %q", i+1, ids[i])
		}
	}
	a, b := ids[0], ids[1]
	if a == b || ids[2] != a || ids[3] != b || ids[4] == a || ids[4] == b {
		t.Fatalf("ids: %v", ids)
	}
	r := strings.NewReplacer("$A", a, "$B", b)
	want0 := r.Replace(`"severity":4,"payload":"alert: id = $A time = Sun Nov 22 00:00:00 2026 start time = Fri Nov 20 08:00:29 2026 end time = Fri Nov 20 08:00:30 2026 severity = medium confidence = 7 completion = failed description = packet received method = { \tdescription = guessing \tref = { cve:2014-0160 } } sources = { \taddress: 192.168.20.99, evil.host.fqdn } targets = { \taddress: 10.0.0.1 \tservice: tcp/22, 22 }","env_version":"","pid":0,"hostname":"test-host","fields":[{"name":"alert.id","type":"string","value":["$A"]},{"name":"alert.start_time","type":"integer","value":[1795161629339123456],"representation":"ns"},{"name":"alert.end_time","type":"integer","value":[1795161630500000000],"representation":"ns"},{"name":"alert.description","type":"string","value":["packet received"]},{"name":"alert.severity","type":"string","value":["medium"]},{"name":"alert.confidence","type":"double","value":[7.0]},{"name":"alert.completion","type":"string","value":["failed"]},{"name":"alert.method.description","type":"string","value":["guessing"]},{"name":"alert.method.ref","type":"string","value":["cve:2014-0160"]},{"name":"alert.source","type":"string","value":["192.168.20.99","evil.host.fqdn"],"representation":"address"},{"name":"alert.target","type":"string","value":["10.0.0.1"],"representation":"address"},{"name":"alert.target","type":"string","value":["tcp/22","22"],"representation":"service"}]}`)
	if !strings.HasSuffix(lines[0], want0) || !strings.Contains(lines[0], `"type":"tern.alert","logger":"test"`) {
		t.Errorf("first alert:\n%s\nwant suffix\n%s", lines[0], want0)
	}
	for i, want := range []string{
		`"severity":5,"payload":"alert: id = $B time = Sun Nov 22 00:00:00 2026 description = second refs = { $A }"`,
		// An update's text shows what changed; its fields are the whole
		// alert after the change, and alert.updated names the change.
		`"severity":4,"payload":"alert: update id = $A time = Sun Nov 22 00:00:00 2026 completion = successful","env_version":"","pid":0,"hostname":"test-host","fields":[{"name":"alert.id","type":"string","value":["$A"]},{"name":"alert.update","type":"bool","value":[true]},{"name":"alert.updated","type":"string","value":["completion"]},{"name":"alert.start_time","type":"integer","value":[1795161629339123456],"representation":"ns"},{"name":"alert.end_time","type":"integer","value":[1795161630500000000],"representation":"ns"},{"name":"alert.description","type":"string","value":["packet received"]},{"name":"alert.severity","type":"string","value":["medium"]},{"name":"alert.confidence","type":"double","value":[7.0]},{"name":"alert.completion","type":"string","value":["successful"]},`,
		`"severity":2,"payload":"alert: update id = $B time = Sun Nov 22 00:00:00 2026 severity = high","env_version":"","pid":0,"hostname":"test-host","fields":[{"name":"alert.id","type":"string","value":["$B"]},{"name":"alert.update","type":"bool","value":[true]},{"name":"alert.updated","type":"string","value":["severity"]},{"name":"alert.description","type":"string","value":["second"]},{"name":"alert.severity","type":"string","value":["high"]},{"name":"alert.ref","type":"string","value":["$A"]}]}`,
		`refs = { $A, $B }"`,
	} {
		if want = r.Replace(want); !strings.Contains(lines[i+1], want) {
			t.Errorf("message %d:\n%s\nwant\n%s", i+2, lines[i+1], want)
		}
	}
}

// An update replaces each top-level key it carries whole: a method with
// only ref loses its description (formats.md §3.6), and a context entry
// (an http object) is replaced, not merged.
func TestUpdateReplacesTopLevelKeys(t *testing.T) {
	out, err := runAlerts(t, `
local a = alert{description = "d", method = {description = "guessing", ref = {"cwe:1"}},
  http = {hostname = "a.example", url = "/x"}, context = {flow_id = 7}}
a:update{method = {ref = {"cwe:2"}}, http = {hostname = "b.example"}}`, "")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	upd := lines[1]
	for _, want := range []string{
		`{"name":"alert.updated","type":"string","value":["method","context.http"]}`,
		`{"name":"alert.method.ref","type":"string","value":["cwe:2"]}`,
		`{"name":"alert.context.flow_id","type":"integer","value":[7]},{"name":"alert.context.http.hostname","type":"string","value":["b.example"]}]`,
		`method = { \tref = { cwe:2 } }"`,
	} {
		if !strings.Contains(upd, want) {
			t.Errorf("want %s in\n%s", want, upd)
		}
	}
	for _, gone := range []string{"alert.method.description", "alert.context.http.url", "description = d"} {
		if strings.Contains(upd, gone) {
			t.Errorf("%s survived the update:\n%s", gone, upd)
		}
	}
}

// Protocol objects and other context go into alert.context.<name> fields,
// checked against Suricata's schema; nothing is dropped.
func TestAlertContext(t *testing.T) {
	out, err := runAlerts(t, `
alert{
  description = "x",
  http = {hostname = "evil.example", url = "/a?b=c", http_method = "GET", status = 200, http_user_agent = "curl/8",
          request_headers = {{name = "Host", value = "evil.example"}, {name = "X", value = "y"}}},
  tls = {sni = "evil.example", version = "TLS 1.3", ja3 = {hash = "e7d705a3286e19ea42f587b344ee6865"}, chain = {"MIIB"},
         notafter = "2027-01-01T00:00:00"},
  dns = {version = 2, type = "query", rrname = "evil.example", rrtype = "A"},
  flow = {pkts_toserver = 3, bytes_toserver = "9007199254740993", start = "2026-11-22T00:00:00.000000+0000"},
  context = {flow_id = "1234567890123456789", app_proto = "http", action = "blocked", vlan = {10, 20},
             pcre = {match = "abc", offsets = {1, 2.5}}, tags = {"a", "b"}, hits = {{n = 1}, {n = 2}}, ok = true},
}`, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`{"name":"alert.context.action","type":"string","value":["blocked"]}`,
		`{"name":"alert.context.app_proto","type":"string","value":["http"]}`,
		`{"name":"alert.context.flow_id","type":"integer","value":[1234567890123456789]}`,
		`{"name":"alert.context.hits.0.n","type":"integer","value":[1]},{"name":"alert.context.hits.1.n","type":"integer","value":[2]}`,
		`{"name":"alert.context.ok","type":"bool","value":[true]}`,
		`{"name":"alert.context.pcre.match","type":"string","value":["abc"]},{"name":"alert.context.pcre.offsets","type":"double","value":[1.0,2.5]}`,
		`{"name":"alert.context.tags","type":"string","value":["a","b"]}`,
		`{"name":"alert.context.vlan","type":"integer","value":[10,20]}`,
		`{"name":"alert.context.dns.rrname","type":"string","value":["evil.example"]},{"name":"alert.context.dns.rrtype","type":"string","value":["A"]},{"name":"alert.context.dns.type","type":"string","value":["query"]},{"name":"alert.context.dns.version","type":"integer","value":[2]}`,
		`{"name":"alert.context.flow.bytes_toserver","type":"integer","value":[9007199254740993]}`,
		`{"name":"alert.context.http.hostname","type":"string","value":["evil.example"]}`,
		`{"name":"alert.context.http.request_headers.0.name","type":"string","value":["Host"]},{"name":"alert.context.http.request_headers.0.value","type":"string","value":["evil.example"]},{"name":"alert.context.http.request_headers.1.name","type":"string","value":["X"]}`,
		`{"name":"alert.context.http.status","type":"integer","value":[200]}`,
		`{"name":"alert.context.tls.chain","type":"string","value":["MIIB"]},{"name":"alert.context.tls.ja3.hash","type":"string","value":["e7d705a3286e19ea42f587b344ee6865"]}`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("want %s in\n%s", want, out)
		}
	}
	deep := "{x = {x = {x = {x = {x = {x = {x = {x = {x = 1}}}}}}}}}"
	for body, want := range map[string]string{
		`alert{http = {hostname = "h", colour = "red"}}`:                              "context.http.colour: not a key of Suricata's http object",
		`alert{http = {status = "200 OK"}}`:                                           "context.http.status: integer expected",
		`alert{http = "GET /"}`:                                                       "context.http: a table expected",
		`alert{dns = {rrname = "x"}}`:                                                 "context.dns.version: required by Suricata's schema",
		`alert{tls = {notafter = "yesterday"}}`:                                       "context.tls.notafter: date (YYYY-MM-DDThh:mm:ss) expected",
		`alert{tls = {chain = {"a", 1}}}`:                                             "context.tls.chain: a list of string expected",
		`alert{http = {request_headers = {"Host: x"}}}`:                               "context.http.request_headers.0: a table expected",
		`alert{context = {flow_id = 1.5}}`:                                            "context.flow_id: integer expected",
		`alert{context = {action = "dropped"}}`:                                       `context.action: allowed or blocked expected, got "dropped"`,
		`alert{context = {["pcre.match"] = "x"}}`:                                     `context: key "pcre.match": names are letters`,
		`alert{context = {[1] = "x"}}`:                                                "context: key 1: names are strings",
		`alert{context = {f = print}}`:                                                "context.f: string, number, boolean or table expected, got function",
		`alert{context = {l = {1, "a"}}}`:                                             "context.l: a list of values of one type expected",
		`alert{context = {d = ` + deep + `}}`:                                         "nested deeper than 8 levels",
		`local t = {} for i = 1, 65 do t[i] = i end alert{context = {t = t}}`:         "context.t: more than 64 elements",
		`local t = {} for i = 1, 600 do t["k" .. i] = i end alert{context = {t = t}}`: "more than 512",
		`alert{http = {hostname = "a"}, context = {http = {url = "/"}}}`:              "context.http: given twice",
		`alert{context = "x"}`:                                                        "invalid context value 'x'",
	} {
		out, err := runAlerts(t, body, "")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: want %q, got %v", body, want, err)
		}
		if out != "" {
			t.Errorf("%s: a failing call emits nothing, got %s", body, out)
		}
	}
}

// A handle kept in a global survives preserve_data: after a restart its
// update carries the same id and the whole alert, and new alerts get new
// ids.
func TestHandleSurvivesRestart(t *testing.T) {
	src := `
function process_message()
  if not kept then
    kept = {handle = alert{description = "first", severity = "high", http = {hostname = "h"}}}
  else
    kept.handle:update{completion = "successful"}
    alert{description = "second"}
  end
  return 0
end`
	dir := t.TempDir()
	run := func() []*pipeline.Message {
		f, _ := newFilter(t, src, func(c *Config) { c.PreserveData = true })
		f.set.DataDir = dir
		f.ids = alert.NewIDs() // as in production: ids owe nothing to a seed
		rec := &recorder{}
		if err := f.Process(context.Background(), testMessage(), rec); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
		return rec.msgs
	}
	first := run()
	second := run()
	if len(first) != 1 || len(second) != 2 {
		t.Fatalf("messages: %d then %d", len(first), len(second))
	}
	id, _ := first[0].FieldString("alert.id")
	upd, _ := second[0].FieldString("alert.id")
	other, _ := second[1].FieldString("alert.id")
	if upd != id || other == id || !alert.ValidID(other) {
		t.Fatalf("ids: alert %s, its update after the restart %s, a new alert %s", id, upd, other)
	}
	a, err := alert.Parse(second[0])
	if err != nil {
		t.Fatal(err)
	}
	if !a.Update || a.Description != "first" || a.Severity != "high" || a.Completion != "successful" ||
		len(a.Context) != 1 || a.Context[0].Name != "http.hostname" || second[0].Severity != pipeline.SeverityCritical {
		t.Fatalf("update after the restart: %+v", a)
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

// Definitions written as ntopng's are (require "alert_keys", the ntopng
// namespace, i18n() in the description) raise alerts; the script can
// require "alert_keys" too.
func TestRaiseNtopngDefinition(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"alert_keys.lua": `return {user = {alert_login_failed = 32768}}`,
		"login.lua": `local alert_keys = require "alert_keys"
return {alert_key = alert_keys.user.alert_login_failed, i18n_title = "alerts_dashboard.login_failed",
  i18n_description = function(ifid, alert, info)
    return i18n("alert_messages.login_failed", {user = info.user, host = ifid, n = info.n})
  end}`,
		"ssh.lua":        `return {alert_key = require("alert_keys").ntopng.alert_ssh_bruteforce, i18n_title = "alerts.ssh_bruteforce.title"}`,
		"locales/en.lua": `return {alerts_dashboard = {login_failed = "Login failed"}, alert_messages = {login_failed = "%{user} failed %{n} logins on %{host}"}}`,
	}
	for name, src := range files {
		p := filepath.Join(dir, name)
		_ = os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out, err := runAlerts(t, `
local keys = require "alert_keys"
alert.raise(keys.user.alert_login_failed, {}, {user = "bob", n = 3})
alert.raise(keys.ntopng.alert_ssh_bruteforce, {description = i18n("alerts.ssh_bruteforce.title")})`, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`{"name":"alert.description","type":"string","value":["bob failed 3 logins on test"]}`,
		`{"name":"alert.title","type":"string","value":["Login failed"]}`,
		`{"name":"alert.description","type":"string","value":["SSH brute force"]},{"name":"alert.key","type":"integer","value":[1]}`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("want %s in\n%s", want, out)
		}
	}
}

// BenchmarkRaiseAndUpdate raises an alert with an http object and updates
// it: the cost of a detection's alert path (handle state included).
func BenchmarkRaiseAndUpdate(b *testing.B) {
	f, _ := newFilter(b, `
function process_message()
  local a = alert{description = "d", severity = "high", sources = alert.address("10.0.0.1"),
    http = {hostname = "evil.example", url = "/x", http_method = "GET", status = 200}}
  a:update{completion = "successful"}
  return 0
end`, nil)
	m := testMessage()
	rec := &recorder{}
	b.ReportAllocs()
	for b.Loop() {
		rec.msgs = rec.msgs[:0]
		if err := f.Process(context.Background(), m, rec); err != nil {
			b.Fatal(err)
		}
	}
}
