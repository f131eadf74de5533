package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ternlog/tern/decoders"
	cefdec "github.com/ternlog/tern/decoders/cef"
	"github.com/ternlog/tern/encoders"
	"github.com/ternlog/tern/filters"
	"github.com/ternlog/tern/inputs"
	"github.com/ternlog/tern/outputs"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/engine"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startTern runs the example's tern.toml (on a free port, writing under
// dir) in-process until stop.
func startTern(t *testing.T, dir string) (addr string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr = ln.Addr().String()
	ln.Close()
	src, err := os.ReadFile("tern.toml")
	require.NoError(t, err)
	cfg := strings.NewReplacer(`"127.0.0.1:5150"`, fmt.Sprintf("%q", addr), `"127.0.0.1:9516"`, `""`,
		"../../out/", "out/", "../../data/failedlogins", "data").Replace(string(src))
	path := filepath.Join(dir, "tern.toml")
	require.NoError(t, os.WriteFile(path, []byte(cfg), 0o644))
	reg := &pipeline.Registry{Inputs: inputs.Factories(), Decoders: decoders.Factories(), Filters: filters.Factories(),
		Encoders: encoders.Factories(), Outputs: outputs.Factories()}
	plan, err := config.Load(path, reg, config.Options{})
	require.NoError(t, err)
	e, err := engine.New(plan, reg, engine.Options{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	return addr, func() {
		cancel()
		require.NoError(t, <-done)
	}
}

// The app reports failed logins through the client to a real tern, which
// writes them as CEF over syslog and as EVE JSON: the syslog header comes
// from the events' cef_meta fields (AUTHPRIV, "failedlogins", WARNING, and
// ALERT for the lockout), not from the encoder's defaults (LOCAL4, "tern",
// INFO).
func TestFailedLoginsEndToEnd(t *testing.T) {
	dir := t.TempDir()
	ternAddr, stopTern := startTern(t, dir)

	ctx, stopApp := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	appDone := make(chan int, 1)
	var appErr strings.Builder
	go func() {
		appDone <- run(ctx, []string{"-listen", "127.0.0.1:0", "-tern", ternAddr}, pw, &appErr)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	require.NoError(t, err)
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	loginURL := strings.TrimSpace(strings.TrimPrefix(line, "listening on "))

	post := func(user, password string) int {
		req, err := http.NewRequest("POST", loginURL, strings.NewReader(url.Values{"user": {user}, "password": {password}}.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("User-Agent", "brute|force=1.0")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusOK, post("alice", "wonderland"))
	assert.Equal(t, http.StatusUnauthorized, post("alice", "rabbit"))
	for i := 1; i <= lockAfter; i++ {
		want := http.StatusUnauthorized
		if i == lockAfter {
			want = http.StatusForbidden
		}
		assert.Equal(t, want, post("bob", fmt.Sprint("guess", i)))
	}
	assert.Equal(t, http.StatusForbidden, post("bob", "builder"), "locked, even with the right password")
	assert.Equal(t, http.StatusUnauthorized, post("eve|x=1 suser=root", "x"))

	stopApp() // the app closes its client: every event acknowledged
	require.Equal(t, 0, <-appDone, appErr.String())
	stopTern()

	// 1 alice + 5 bob + the lockout + bob locked + eve = 9 events.
	t.Logf("first records:\n%s\n%s", firstLine(t, filepath.Join(dir, "out", "failedlogins.cef")), firstLine(t, filepath.Join(dir, "out", "failedlogins.eve.json")))
	cef := readLines(t, filepath.Join(dir, "out", "failedlogins.cef"))
	require.Len(t, cef, 9)
	host, _ := os.Hostname()
	header := regexp.MustCompile(`^<(\d+)>1 \S+ (\S+) (\S+) - - - (CEF:.*)$`)
	dec, err := cefdec.New(pipelinetest.Settings(t, "decoders.cef"), cefdec.DefaultConfig())
	require.NoError(t, err)
	var locks, fails int
	users := map[string]int{}
	for _, l := range cef {
		m := header.FindStringSubmatch(l)
		require.NotNil(t, m, "not RFC 5424 + CEF: %q", l)
		assert.Equal(t, host, m[2])
		assert.Equal(t, "failedlogins", m[3], "ident from cef_meta.syslog_ident")
		b := pipeline.NewBatch()
		require.NoError(t, dec.Decode(pipeline.Record{Data: []byte(m[4])}, b))
		ev := b.Msgs[0]
		sig, _ := ev.FieldString("deviceEventClassId")
		user, _ := ev.FieldString("suser")
		users[user]++
		switch sig {
		case "AuthFail":
			fails++
			assert.Equal(t, "84", m[1], "AUTHPRIV (10) * 8 + WARNING (4)")
		case "AccountLockout":
			locks++
			assert.Equal(t, "81", m[1], "AUTHPRIV (10) * 8 + ALERT (1)")
		default:
			t.Errorf("signature %q", sig)
		}
		for _, k := range []string{"src", "requestMethod", "request", "requestClientApplication"} {
			v, _ := ev.FieldString(k)
			assert.NotEmpty(t, v, k)
		}
		ua, _ := ev.FieldString("requestClientApplication")
		assert.Equal(t, "brute|force=1.0", ua, "escaped in the record, whole after decoding")
		vendor, _ := ev.FieldString("deviceVendor")
		assert.Equal(t, "tern-example", vendor)
	}
	assert.Equal(t, 8, fails)
	assert.Equal(t, 1, locks)
	assert.Equal(t, map[string]int{"alice": 1, "bob": 7, "eve|x=1 suser=root": 1}, users, "no forged suser")

	eve := readLines(t, filepath.Join(dir, "out", "failedlogins.eve.json"))
	require.Len(t, eve, 9)
	for _, l := range eve {
		var rec map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &rec), l)
		assert.Equal(t, "cef", rec["event_type"])
		obj, ok := rec["cef"].(map[string]any)
		require.True(t, ok, l)
		assert.Contains(t, []any{"AuthFail", "AccountLockout"}, obj["deviceEventClassId"])
		assert.NotEmpty(t, obj["suser"])
	}
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return strings.Split(strings.TrimRight(string(b), "\n"), "\n")
}

func firstLine(t *testing.T, path string) string { return readLines(t, path)[0] }
