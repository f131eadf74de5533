package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/engine"
)

// nativeRouter runs a tern with a native tcp input writing every message,
// as canonical JSON, to out.jsonl and dead letters to dead.jsonl. It
// returns the address and a stop function that drains the engine.
func nativeRouter(t *testing.T) (addr, dir string, stop func()) {
	t.Helper()
	dir = t.TempDir()
	addr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	path := filepath.Join(dir, "plugins.toml")
	require.NoError(t, os.WriteFile(path, []byte(fmt.Sprintf(`
[tern]
data_dir = "data"
metrics_address = ""
shutdown_timeout = "10s"

[inputs.native]
type = "tcp"
address = %q
framing = "native"
decoder = "msgpack"

[outputs.out]
type = "file"
message_matcher = "Type != 'tern.deadletter'"
encoder = "json"
path = "out.jsonl"

[outputs.dead]
type = "file"
message_matcher = "Type == 'tern.deadletter'"
encoder = "json"
path = "dead.jsonl"
`, addr)), 0o644))
	reg := registry()
	plan, err := config.Load(path, reg, config.Options{})
	require.NoError(t, err)
	e, err := engine.New(plan, reg, engine.Options{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	stopped := false
	stop = func() {
		if !stopped {
			stopped = true
			cancel()
			require.NoError(t, <-done)
		}
	}
	t.Cleanup(stop)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		require.True(t, time.Now().Before(deadline), "the router never listened: %v", err)
	}
	return addr, dir, stop
}

func lines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func TestInject(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	addr, dir, stop := nativeRouter(t)
	defer stop()
	var out, errOut bytes.Buffer
	code := run([]string{"inject", "-addr", addr, "-type", "login", "-payload", "failed", "-severity", "4", "-f", "user=alice", "-timeout", "2s"},
		nil, &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	assert.Regexp(t, `^acknowledged [0-9a-f-]{36}\n$`, out.String())
	uuid := strings.Fields(out.String())[1]

	out.Reset()
	code = run([]string{"inject", "-addr", addr, "-json", "-"},
		strings.NewReader(`{"type":"json","payload":"from stdin","fields":[{"name":"n","value":[7]}]}`), &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	stop()

	got := lines(t, filepath.Join(dir, "out.jsonl"))
	require.Len(t, got, 2, "acknowledged means written")
	m := pipeline.NewMessage()
	require.NoError(t, codec.DecodeJSON([]byte(got[0]), m, nil))
	assert.Equal(t, uuid, m.UUIDString())
	assert.Equal(t, "login", m.Type)
	assert.Equal(t, int32(4), m.Severity)
	user, _ := m.FieldString("user")
	assert.Equal(t, "alice", user)
	require.NoError(t, codec.DecodeJSON([]byte(got[1]), m, nil))
	n, _ := m.FieldInt("n")
	assert.Equal(t, int64(7), n)

	// Nobody listens now: inject fails and says why.
	errOut.Reset()
	code = run([]string{"inject", "-addr", addr, "-payload", "x", "-timeout", "500ms"}, nil, &out, &errOut)
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut.String(), "connection refused")
	assert.Equal(t, 2, run([]string{"inject", "-json", "{nope"}, nil, &out, &errOut))
}

// flood sends good messages with corrupt and oversized frames mixed in:
// every good one is acknowledged and written, every corrupt one becomes a
// dead letter, every oversized frame is refused.
func TestFlood(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	addr, dir, stop := nativeRouter(t)
	defer stop()
	var out, errOut bytes.Buffer
	code := run([]string{"flood", "-addr", addr, "-count", "3000", "-size", "100", "-size-dist", "uniform", "-size-max", "400",
		"-corrupt", "2", "-oversize", "1", "-q", "-seed", "7"}, nil, &out, &errOut)
	require.Equal(t, 0, code, errOut.String())
	stop()
	report := out.String()
	t.Log(report)
	var sent, acked, ofSent, corrupt, corruptAck, over, refused int
	_, err := fmt.Sscanf(report[strings.Index(report, "sent "):], "sent %d messages", &sent)
	require.NoError(t, err)
	_, err = fmt.Sscanf(report[strings.Index(report, "acknowledged "):], "acknowledged %d of %d", &acked, &ofSent)
	require.NoError(t, err)
	i := strings.Index(report, "corrupt frames ")
	require.GreaterOrEqual(t, i, 0, report)
	_, err = fmt.Sscanf(report[i:], "corrupt frames %d (acknowledged %d), oversized frames %d (refused %d)", &corrupt, &corruptAck, &over, &refused)
	require.NoError(t, err)
	assert.Equal(t, sent, acked)
	assert.Equal(t, sent+corrupt+over, 3000)
	assert.Positive(t, corrupt)
	assert.Positive(t, over)
	assert.Equal(t, corrupt, corruptAck)
	assert.Equal(t, over, refused)
	assert.Len(t, lines(t, filepath.Join(dir, "out.jsonl")), sent)
	assert.Len(t, lines(t, filepath.Join(dir, "dead.jsonl")), corrupt)
	assert.Equal(t, 2, run([]string{"flood", "-size-dist", "zipf"}, nil, &out, &errOut))
}
