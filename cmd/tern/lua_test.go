package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.uber.org/goleak"

	"github.com/ternlog/tern/internal/alert"

	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/engine"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// A filter stuck in `while true do end` is cut off at every message (here
// by the 50 ms deadline alone: instruction_limit = 0) while the router goes
// on delivering the same messages to an output at full speed.
func TestLoopingFilterDoesNotStopRouting(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := t.TempDir()
	port := freePort(t)
	if err := os.WriteFile(filepath.Join(dir, "loop.lua"), []byte("function process_message() while true do end end\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf(`
[tern]
data_dir = "data"
shutdown_timeout = "60s"
metrics_address = ""

[inputs.lines]
type = "tcp"
address = "127.0.0.1:%d"
decoder = "raw"

[decoders.raw]
type = "payload"
message_type = "line"

[filters.loop]
type = "lua"
message_matcher = "Type == 'line'"
filename = "loop.lua"
instruction_limit = 0
deadline = "50ms"
max_failures = 0

[outputs.out]
type = "file"
message_matcher = "Type == 'line'"
encoder = "payload"
path = "out.txt"
`, port)
	path := filepath.Join(dir, "plugins.toml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	reg := registry()
	plan, err := config.Load(path, reg, config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	metrics := prometheus.NewRegistry()
	e, err := engine.New(plan, reg, engine.Options{Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	var conn net.Conn
	for deadline := time.Now().Add(10 * time.Second); ; {
		conn, err = net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	const n = 40
	var lines bytes.Buffer
	for i := range n {
		fmt.Fprintf(&lines, "line %d\n", i)
	}
	start := time.Now()
	if _, err := conn.Write(lines.Bytes()); err != nil {
		t.Fatal(err)
	}
	conn.Close()

	out := filepath.Join(dir, "out.txt")
	var delivered time.Duration
	for {
		b, _ := os.ReadFile(out)
		if bytes.Count(b, []byte("\n")) >= n {
			delivered = time.Since(start)
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("the output got %d of %d lines", bytes.Count(b, []byte("\n")), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cutWhenDelivered := counter(t, metrics, "tern_lua_failures_total")
	for counter(t, metrics, "tern_lua_failures_total") < n {
		if time.Since(start) > 60*time.Second {
			t.Fatalf("the filter was cut off %v times, want %d", counter(t, metrics, "tern_lua_failures_total"), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	filterTime := time.Since(start)
	t.Logf("output had all %d lines after %s, when the filter had been cut off %v times; %d cut-offs took %s (%s each)",
		n, delivered, cutWhenDelivered, n, filterTime, filterTime/n)
	if cutWhenDelivered >= n {
		t.Errorf("the output waited for the looping filter")
	}
	// Each call is cut at its 50 ms deadline; the bound is loose because
	// the machine is shared.
	if each := filterTime / n; each > 500*time.Millisecond {
		t.Errorf("a cut-off took %s on average", each)
	}
}

func TestAlertsList(t *testing.T) {
	dir := t.TempDir()
	defs, err := filepath.Abs("../../filters/lua/alerts")
	if err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`
[inputs.in]
type = "stdin"
decoder = "payload"

[filters.ssh]
type = "lua"
message_matcher = "TRUE"
filename = "x.lua"
alert_definitions = %q
locale = "fr"
`, defs)
	path := filepath.Join(dir, "plugins.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"alerts", "list", "-config", path}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	want := []string{
		"KEY  KEY STRING                NAME                                ICON                NAMESPACE  SOURCES  TARGETS",
		"1    alert_ssh_bruteforce      Force brute SSH                     fas fa-user-secret  builtin    yes      yes",
		"2    alert_auth_failure_burst  Rafale d'échecs d'authentification  fas fa-sign-in-alt  builtin    yes      no",
	}
	if got := strings.TrimSpace(stdout.String()); got != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
	stdout.Reset()
	if code := run([]string{"alerts", "list", "-dir", defs, "-json"}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	var rows []alertRow
	if err := json.Unmarshal(stdout.Bytes(), &rows); err != nil || len(rows) != 2 || rows[0].Name != "SSH brute force" || !rows[1].Sources || rows[1].Targets {
		t.Fatalf("%v %+v", err, rows)
	}
	// A broken directory fails with the error naming both files.
	bad := t.TempDir()
	for name, src := range map[string]string{
		"a.lua": `return {alert_key = 1, i18n_title = "a"}`,
		"b.lua": `return {alert_key = 1, i18n_title = "b"}`,
	} {
		if err := os.WriteFile(filepath.Join(bad, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stderr.Reset()
	if code := run([]string{"alerts", "list", "-dir", bad}, nil, &stdout, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "b.lua: alert_key 1 (alert_ssh_bruteforce) is already defined by "+filepath.Join(bad, "a.lua")) {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if code := run([]string{"alerts"}, nil, &stdout, &stderr); code != 2 {
		t.Fatal("usage error expected")
	}
}

// tern check runs each alert definition's description function once, so a
// call to an undefined function (i18m for ntopng's i18n) fails the check
// with the definition's file and line, not the first raise in production.
func TestCheckRunsAlertDescriptions(t *testing.T) {
	dir := t.TempDir()
	defs := filepath.Join(dir, "alerts")
	files := map[string]string{
		"x.lua":                 "function process_message() return 0 end\n",
		"alerts/alert_keys.lua": `return {user = {alert_typo = 32768}}`,
		"alerts/alert_typo.lua": "local alert_keys = require \"alert_keys\"\nreturn {\n  alert_key = alert_keys.user.alert_typo,\n  i18n_title = \"Typo\",\n" +
			"  i18n_description = function(ifid, alert, info)\n    return i18m(\"alert_messages.typo\", {who = info.user})\n  end,\n}\n",
		"plugins.toml": "[inputs.in]\ntype = \"stdin\"\ndecoder = \"payload\"\n\n[filters.typo]\ntype = \"lua\"\nmessage_matcher = \"TRUE\"\nfilename = \"x.lua\"\nalert_definitions = \"alerts\"\n",
	}
	for name, src := range files {
		_ = os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var stdout, stderr bytes.Buffer
	code := run([]string{"check", "-config", filepath.Join(dir, "plugins.toml")}, nil, &stdout, &stderr)
	if want := "plugins.toml:5: filters.typo: load: alert_definitions: " + filepath.Join(defs, "alert_typo.lua") + ":6: i18n_description: undefined global 'i18m'"; code != 1 || !strings.Contains(stderr.String(), want) {
		t.Fatalf("exit %d, want %q in:\n%s", code, want, stderr.String())
	}
	// Spelt right, the definition passes.
	fixed := strings.Replace(files["alerts/alert_typo.lua"], "i18m(", "i18n(", 1)
	if err := os.WriteFile(filepath.Join(defs, "alert_typo.lua"), []byte(fixed), 0o644); err != nil {
		t.Fatal(err)
	}
	stderr.Reset()
	if code := run([]string{"check", "-config", filepath.Join(dir, "plugins.toml")}, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
}

// The shipped detections fire on the bundled samples, through the engine:
// auth.log through a BSD syslog fixture and scripts/sshd.lua into
// ssh_bruteforce.lua, app-cef.log through a CEF fixture into
// auth_failure_burst.lua, alerts written by a file output.
func TestDetectionsOnSamples(t *testing.T) {
	samples, _ := filepath.Abs("../../testdata/samples")
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	root, _ := filepath.Abs("../..")
	dir := t.TempDir()
	authPort, cefPort := freePort(t), freePort(t)
	src := fmt.Sprintf(`
[tern]
data_dir = "data"
shutdown_timeout = "60s"
metrics_address = ""

[inputs.auth]
type = "tcp"
address = "127.0.0.1:%[1]d"
decoder = ["bsd", "sshd"]

[inputs.app]
type = "tcp"
address = "127.0.0.1:%[2]d"
decoder = "cef"

[decoders.bsd]
type = "lua"
filename = "%[3]s/cmd/tern/testdata/lua/bsd.lua"

[decoders.sshd]
type = "lua"
filename = "%[3]s/decoders/lua/scripts/sshd.lua"

[decoders.cef]
type = "lua"
filename = "%[3]s/cmd/tern/testdata/lua/cef.lua"

[filters.ssh_bruteforce]
type = "lua"
message_matcher = "Fields[sshd.event] == 'failed_password' || Fields[sshd.event] == 'accepted'"
filename = "%[3]s/filters/lua/scripts/ssh_bruteforce.lua"
alert_definitions = "%[3]s/filters/lua/alerts"
ticker_interval = "1h"

[filters.auth_failure_burst]
type = "lua"
message_matcher = "Fields[deviceEventClassId] == 'AuthFail'"
filename = "%[3]s/filters/lua/scripts/auth_failure_burst.lua"
alert_definitions = "%[3]s/filters/lua/alerts"
ticker_interval = "1h"

[outputs.alerts]
type = "file"
message_matcher = "Type == 'tern.alert'"
encoder = "payload"
path = "alerts.txt"

[outputs.alerts_eve]
type = "file"
message_matcher = "Type == 'tern.alert'"
encoder = "eve"
path = "alerts.eve.json"

[outputs.alerts_cef]
type = "file"
message_matcher = "Type == 'tern.alert'"
encoder = "cef"
path = "alerts.cef"
`, authPort, cefPort, root)
	path := filepath.Join(dir, "plugins.toml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	reg := registry()
	plan, err := config.Load(path, reg, config.Options{})
	if err != nil {
		t.Fatal(err)
	}
	metrics := prometheus.NewRegistry()
	e, err := engine.New(plan, reg, engine.Options{Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	send := func(port int, file string) int {
		data, err := os.ReadFile(filepath.Join(samples, file))
		if err != nil {
			t.Fatal(err)
		}
		var conn net.Conn
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if conn, err = net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil || time.Now().After(deadline) {
				break
			}
		}
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := conn.Write(data); err != nil {
			t.Fatal(err)
		}
		return bytes.Count(data, []byte("\n"))
	}
	sent := send(authPort, "auth.log") + send(cefPort, "app-cef.log")
	// Wait until every record was decoded and routed, then stop: the last
	// timer_event closes the bursts (their updates).
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		if counter(t, metrics, "tern_input_records_total") >= float64(sent) {
			break
		}
		if time.Since(start) > 60*time.Second {
			t.Fatalf("records in: %v of %d", counter(t, metrics, "tern_input_records_total"), sent)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(filepath.Join(dir, "alerts.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var alerts, updates []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.HasPrefix(l, "alert: update") {
			updates = append(updates, l)
		} else {
			alerts = append(alerts, l)
		}
	}
	wantAlerts := []string{
		"address: 198.51.100.23", // root brute force (ssh)
		"address: 203.0.113.77",  // username spraying (ssh)
		"address: 192.0.2.44",    // AuthFail burst (CEF)
	}
	if len(alerts) != len(wantAlerts) || len(updates) != len(wantAlerts) {
		t.Fatalf("want %d alerts and as many updates, got\n%s", len(wantAlerts), out)
	}
	for _, w := range wantAlerts {
		if !strings.Contains(string(out), "sources = { \t"+w) {
			t.Errorf("no alert with %s in\n%s", w, out)
		}
	}
	for _, w := range []string{"60 failed SSH logins from 198.51.100.23", "40 failed SSH logins from 203.0.113.77", "50 authentication failures from 192.0.2.44"} {
		if !strings.Contains(string(out), w) {
			t.Errorf("no update %q in\n%s", w, out)
		}
	}
	t.Logf("%d records in, alerts:\n%s", sent, out)
	checkAlertIdentity(t, dir, alerts, updates)
}

// checkAlertIdentity checks the demo's alerts in their three forms: each
// alert has its own id, the same in the Haka text, EVE and CEF; updates
// keep the alert's id, signature and severity and say they are updates;
// every EVE record passes Suricata's schema.
func checkAlertIdentity(t *testing.T, dir string, alerts, updates []string) {
	t.Helper()
	idOf := regexp.MustCompile(`^alert: (?:update )?id = (\S+) `)
	ids := map[string]bool{}
	for _, a := range alerts {
		id := idOf.FindStringSubmatch(a)
		if id == nil || ids[id[1]] || !alert.ValidID(id[1]) {
			t.Fatalf("alert ids are unique: %q", a)
		}
		ids[id[1]] = true
	}
	for _, u := range updates {
		if id := idOf.FindStringSubmatch(u); id == nil || !ids[id[1]] {
			t.Fatalf("an update of no alert: %q", u)
		}
	}
	schema, err := jsonschema.NewCompiler().Compile("../../encoders/eve/testdata/schema.json")
	if err != nil {
		t.Fatal(err)
	}
	eve, err := os.ReadFile(filepath.Join(dir, "alerts.eve.json"))
	if err != nil {
		t.Fatal(err)
	}
	eveIDs := map[string]int{}
	for _, line := range bytes.Split(bytes.TrimSpace(eve), []byte("\n")) {
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(line))
		if err != nil {
			t.Fatal(err)
		}
		if err := schema.Validate(v); err != nil {
			t.Fatalf("%v\n%s", err, line)
		}
		var rec struct {
			Alert struct {
				SignatureID int `json:"signature_id"`
				Metadata    struct {
					ID     []string `json:"haka_alert_id"`
					Update []string `json:"haka_update"`
				} `json:"metadata"`
			} `json:"alert"`
		}
		if err := json.Unmarshal(line, &rec); err != nil || len(rec.Alert.Metadata.ID) != 1 {
			t.Fatalf("%v: %s", err, line)
		}
		id := rec.Alert.Metadata.ID[0]
		eveIDs[id]++
		if !ids[id] || rec.Alert.SignatureID != 1 && rec.Alert.SignatureID != 2 {
			t.Errorf("EVE record: id %s, signature_id %d (the definition's key)", id, rec.Alert.SignatureID)
		}
		if (eveIDs[id] > 1) != (rec.Alert.Metadata.Update != nil) {
			t.Errorf("EVE: only updates, all of them, carry haka_update: %s", line)
		}
	}
	cef, err := os.ReadFile(filepath.Join(dir, "alerts.cef"))
	if err != nil {
		t.Fatal(err)
	}
	cefIDs := map[string]string{} // id -> signature|name|severity of the alert
	extID := regexp.MustCompile(` externalId=(\S+)`)
	for _, line := range strings.Split(strings.TrimSpace(string(cef)), "\n") {
		f := strings.SplitN(line, "|", 8)
		id := extID.FindStringSubmatch(line)
		if len(f) != 8 || id == nil || !ids[id[1]] {
			t.Fatalf("CEF record: %s", line)
		}
		head := strings.Join(f[4:7], "|")
		if prev, ok := cefIDs[id[1]]; ok {
			if head != prev || !strings.Contains(line, " cs2Label=haka_update cs2=") {
				t.Errorf("CEF update of %s: %s, the alert was %s", id[1], head, prev)
			}
		} else {
			cefIDs[id[1]] = head
			if !strings.HasPrefix(head, "alert_") {
				t.Errorf("CEF alert: %s", line)
			}
		}
	}
	if len(eveIDs) != len(ids) || len(cefIDs) != len(ids) {
		t.Errorf("ids: text %v, EVE %v, CEF %v", ids, eveIDs, cefIDs)
	}
}
