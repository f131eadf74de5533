package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

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
}
