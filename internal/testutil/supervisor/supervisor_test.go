package supervisor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fake is a stand-in for tern: a script that takes "run -config X",
// listens nowhere, and exits 0 on SIGTERM.
func fake(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fake-tern")
	require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\ntrap 'exit 0' TERM\necho started \"$@\" >&2\nwhile :; do sleep 0.05; done\n"), 0o755))
	return p
}

func TestRunnerLifecycle(t *testing.T) {
	dir := t.TempDir()
	r := NewRunner(fake(t), "cfg.toml", dir)
	require.NoError(t, r.Start())
	assert.Error(t, r.Start(), "already running")
	assert.True(t, r.Running())
	assert.Positive(t, r.Pid())
	r.Kill()
	assert.False(t, r.Running())
	assert.Zero(t, r.Pid())

	require.NoError(t, r.Start())
	// The log is appended across starts: wait for the second start's line,
	// or the SIGTERM can land before this shell installed its trap.
	assert.Eventually(t, func() bool {
		b, _ := os.ReadFile(r.Log)
		_, second, ok := strings.Cut(string(b), "---- start 2 ")
		return ok && strings.Contains(second, "started run -config cfg.toml")
	}, 5*time.Second, 10*time.Millisecond)
	code, took := r.Term(5 * time.Second)
	assert.Equal(t, 0, code)
	assert.Less(t, took, 5*time.Second)
	assert.Equal(t, 2, r.Starts)
	assert.Equal(t, 1, r.Kills)
	assert.Equal(t, 1, r.Terms)
	assert.Contains(t, r.Tail(5), "started")

	require.NoError(t, r.Start())
	assert.Equal(t, -1, r.Wait(50*time.Millisecond), "still running")
	addr, err := FreePort()
	require.NoError(t, err)
	assert.Error(t, r.WaitPort(addr, 100*time.Millisecond))
	r.Kill()
}

func TestSampler(t *testing.T) {
	m, err := ReadMem(os.Getpid())
	require.NoError(t, err)
	assert.Positive(t, m.RSS)
	assert.GreaterOrEqual(t, m.HWM, m.RSS)
	s := Sample(os.Getpid(), 5*time.Millisecond)
	time.Sleep(60 * time.Millisecond)
	hwm, _ := s.Stop()
	assert.Positive(t, hwm)
}
