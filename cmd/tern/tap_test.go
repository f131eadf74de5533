package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ternlog/tern/internal/testutil/testpki"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/engine"
)

// liveRouter runs the config src (in its own directory, with files beside
// it) until the test ends. "@LINES@" in src becomes a free port for a tcp
// input; the returned address is that port's, and the engine's metrics
// address is e.AdminAddr once it listens.
func liveRouter(t *testing.T, src string, files map[string]string) (e *engine.Engine, lines string, stop func()) {
	t.Helper()
	dir := t.TempDir()
	lines = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	src = strings.ReplaceAll(src, "@LINES@", lines)
	for name, body := range files {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
	path := filepath.Join(dir, "plugins.toml")
	require.NoError(t, os.WriteFile(path, []byte(src), 0o644))
	reg := registry()
	plan, err := config.Load(path, reg, config.Options{})
	require.NoError(t, err)
	e, err = engine.New(plan, reg, engine.Options{})
	require.NoError(t, err)
	require.NoError(t, e.Check())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if e.AdminAddr() != nil {
			if c, err := net.Dial("tcp", lines); err == nil {
				c.Close()
				break
			}
		}
		require.True(t, time.Now().Before(deadline), "the router never listened")
	}
	return e, lines, stop
}

// send writes lines to the router's tcp input.
func send(t *testing.T, addr string, lines ...string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	w := bufio.NewWriter(c)
	for _, l := range lines {
		_, _ = w.WriteString(l + "\n")
	}
	require.NoError(t, w.Flush())
}

// waitTaps waits until n taps are open.
func waitTaps(t *testing.T, e *engine.Engine, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); e.Stats().Taps < n; time.Sleep(5 * time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "the tap never subscribed")
	}
}

const tapRouter = `
[tern]
data_dir = "data"
metrics_address = "127.0.0.1:0"
shutdown_timeout = "5s"
progress_interval = "0s"
%s
[inputs.lines]
type = "tcp"
address = "@LINES@"
decoder = "raw"

[decoders.raw]
type = "payload"
message_type = "line"

[outputs.out]
type = "file"
message_matcher = "TRUE"
encoder = "payload"
path = "out.txt"
`

// tapRun runs `tern tap args…` in the background and returns its exit code,
// stdout and stderr once it ends.
func tapRun(args ...string) func() (int, string, string) {
	var out, errOut bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- run(append([]string{"tap"}, args...), nil, &out, &errOut) }()
	return func() (int, string, string) {
		select {
		case code := <-done:
			return code, out.String(), errOut.String()
		case <-time.After(20 * time.Second):
			return -1, out.String(), errOut.String()
		}
	}
}

func TestTapVerb(t *testing.T) {
	e, lines, _ := liveRouter(t, fmt.Sprintf(tapRouter, ""), nil)
	wait := tapRun("-addr", e.AdminAddr().String(), "-match", "Payload =~ /^keep/", "-n", "2")
	waitTaps(t, e, 1)
	send(t, lines, "drop me", "keep 1", "also drop", "keep <2> & \"3\"", "keep 3")
	code, stdout, stderr := wait()
	require.Equal(t, 0, code, stderr)
	got := strings.Split(strings.TrimSpace(stdout), "\n")
	require.Len(t, got, 2, stdout)
	for i, want := range []string{"keep 1", "keep <2> & \"3\""} {
		m := pipeline.NewMessage()
		require.NoError(t, codec.DecodeJSON([]byte(got[i]), m, nil), got[i])
		assert.Equal(t, want, m.Payload)
		assert.Equal(t, "line", m.Type)
		assert.Equal(t, got[i], string(codec.AppendJSON(nil, m)), "canonical JSON, as the router encodes it")
	}
	assert.Contains(t, stderr, "tap: connected to "+e.AdminAddr().String()+": every message the router routes matching Payload =~ /^keep/, at most 1000/s")
	assert.Regexp(t, `tap: 2 messages of [23] matched; 0 skipped over -rate, 0 dropped`, stderr)
}

func TestTapVerbPlugin(t *testing.T) {
	e, lines, _ := liveRouter(t, fmt.Sprintf(tapRouter, "")+`
[outputs.only_b]
type = "file"
message_matcher = "Payload == 'b'"
encoder = "payload"
path = "b.txt"
`, nil)
	wait := tapRun("-addr", "http://"+e.AdminAddr().String(), "-plugin", "only_b", "-n", "1")
	waitTaps(t, e, 1)
	send(t, lines, "a", "b", "c")
	code, stdout, stderr := wait()
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, `"payload":"b"`)
	assert.Equal(t, 1, strings.Count(stdout, "\n"))
	assert.Contains(t, stderr, "what outputs.only_b receives")
}

// A slow subscriber loses messages, not the router; stderr says how many.
func TestTapVerbReportsDrops(t *testing.T) {
	e, lines, stop := liveRouter(t, fmt.Sprintf(tapRouter, ""), nil)
	wait := tapRun("-addr", e.AdminAddr().String(), "-buffer", "1", "-rate", "100000")
	waitTaps(t, e, 1)
	many := make([]string, 3000)
	for i := range many {
		many[i] = fmt.Sprintf("line %d", i)
	}
	send(t, lines, many...)
	// Every line reaches the output whatever the tap does.
	require.Eventually(t, func() bool { return outputCount(e, "outputs.out") == 3000 }, 10*time.Second, 10*time.Millisecond)
	stop()
	code, stdout, stderr := wait()
	assert.Equal(t, 1, code, "ended by the router")
	m := regexp.MustCompile(`tap: (\d+) messages of 3000 matched; 0 skipped over -rate, (\d+) dropped`).FindStringSubmatch(stderr)
	require.NotNil(t, m, stderr)
	assert.Equal(t, m[1], strconv.Itoa(strings.Count(stdout, "\n")))
	sent, _ := strconv.Atoi(m[1])
	dropped, _ := strconv.Atoi(m[2])
	assert.Equal(t, 3000, sent+dropped)
	assert.Greater(t, dropped, 0)
	assert.Regexp(t, `tap: \d+ messages dropped \(subscriber too slow\)`, stderr)
}

func outputCount(e *engine.Engine, id string) float64 {
	for _, p := range e.Stats().Plugins {
		if p.ID == id {
			return p.Count
		}
	}
	return -1
}

func TestTapVerbErrors(t *testing.T) {
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600))
	e, _, _ := liveRouter(t, fmt.Sprintf(tapRouter, `metrics_token_file = "token"`), map[string]string{"token": "s3cret\n"})
	addr := e.AdminAddr().String()
	code, _, stderr := tapRun("-addr", addr, "-n", "1")()
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "401 Unauthorized")
	assert.Contains(t, stderr, "-token-file or TERN_METRICS_TOKEN")

	code, _, stderr = tapRun("-addr", addr, "-token-file", tokenFile, "-match", "Type ==")()
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "400 Bad Request: match: syntax error")

	code, _, stderr = tapRun("-addr", addr, "-token-file", tokenFile, "-plugin", "nope")()
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, `no filter or output "nope" (there are: outputs.out)`)

	code, _, stderr = tapRun("-rate", "0")()
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "-rate above 0")

	code, _, stderr = tapRun("-addr", "127.0.0.1:1", "-timeout", "2s")()
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "connection refused")
}

// The token and TLS options are those of the other verbs that talk to a
// running tern (-ca, -cert, -key, -tls).
func TestTapVerbTLSAndToken(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "tap-ca")
	cert, key := ca.Issue(t, testpki.Opts{}).Write(t, dir, "server")
	caFile := ca.WriteCA(t, dir, "ca")
	e, lines, stop := liveRouter(t, fmt.Sprintf(tapRouter, fmt.Sprintf(`metrics_tokens = ["${TAP_TEST_TOKEN:-tok}"]
[tern.metrics_tls]
cert_file = %q
key_file = %q
`, cert, key)), nil)
	t.Setenv("TERN_METRICS_TOKEN", "tok")
	wait := tapRun("-addr", e.AdminAddr().String(), "-ca", caFile)
	waitTaps(t, e, 1)
	send(t, lines, "over tls")
	require.Eventually(t, func() bool { return outputCount(e, "outputs.out") == 1 }, 10*time.Second, 10*time.Millisecond)
	stop() // the tap ends with the router
	code, stdout, stderr := wait()
	assert.Equal(t, 1, code, "ended by the router, not by -n")
	assert.Contains(t, stdout, `"payload":"over tls"`)
	assert.Contains(t, stderr, "tap: the router stopped or reloaded")
	assert.Contains(t, stderr, "tap: 1 messages of 1 matched")
}

func TestTapVerbHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	assert.Equal(t, 0, run([]string{"tap", "-h"}, nil, &out, &errOut))
	assert.Contains(t, out.String(), "Usage:\n  tern tap ")
	assert.Empty(t, errOut.String())
	assert.Contains(t, out.String(), "-token-file FILE")
}
