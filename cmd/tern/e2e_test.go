package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// buildTern compiles the binary once per test run.
func buildTern(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs the tern binary")
	}
	bin := filepath.Join(t.TempDir(), "tern")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Run())
	return bin
}

// TestE2ESigtermLosesNothingAcked runs the real binary on a file it tails,
// stops it with SIGTERM in the middle of the load several times, and checks
// that the restarted router delivers every line: the tail checkpoint only
// moves after the output acknowledged, and the drain after SIGTERM delivers
// what was in flight.
func TestE2ESigtermLosesNothingAcked(t *testing.T) {
	bin := buildTern(t)
	dir := t.TempDir()
	const lines = 200_000
	in := filepath.Join(dir, "in.log")
	f, err := os.Create(in)
	require.NoError(t, err)
	w := bufio.NewWriter(f)
	for i := 0; i < lines; i++ {
		fmt.Fprintf(w, "seq=%d %s\n", i, strings.Repeat("x", 100))
	}
	require.NoError(t, w.Flush())
	require.NoError(t, f.Close())

	cfg := filepath.Join(dir, "tern.toml")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
[tern]
data_dir = %q
metrics_address = ""
shutdown_timeout = "20s"
[inputs.file]
type = "tail"
paths = [%q]
decoder = "payload"
exit_after_eof = true
checkpoint_interval = "50ms"
[outputs.out]
type = "file"
message_matcher = "TRUE"
encoder = "payload"
path = %q
`, filepath.Join(dir, "data"), in, filepath.Join(dir, "out.log"))), 0o644))

	run := func(stopAfter time.Duration) (exited bool) {
		cmd := exec.Command(bin, "run", "-config", cfg)
		cmd.Stderr = os.Stderr
		require.NoError(t, cmd.Start())
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			require.NoError(t, err)
			return true
		case <-time.After(stopAfter):
		}
		require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
		select {
		case err := <-done:
			require.NoError(t, err, "SIGTERM must exit 0")
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatal("tern did not stop after SIGTERM")
		}
		return false
	}
	stops := 0
	for i := 0; i < 5; i++ {
		if run(time.Duration(30+40*i) * time.Millisecond) {
			break
		}
		stops++
	}
	for !run(60 * time.Second) {
	}

	out, err := os.ReadFile(filepath.Join(dir, "out.log"))
	require.NoError(t, err)
	seen := make([]int, lines)
	dups := 0
	for _, l := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		seqText, _, _ := strings.Cut(strings.TrimPrefix(l, "seq="), " ")
		n, err := strconv.Atoi(seqText)
		require.NoError(t, err, "corrupt line %q", l)
		if seen[n]++; seen[n] > 1 {
			dups++
		}
	}
	missing := 0
	for _, c := range seen {
		if c == 0 {
			missing++
		}
	}
	t.Logf("%d lines, %d SIGTERMs mid-load: missing %d, duplicates %d", lines, stops, missing, dups)
	assert.Zero(t, missing)
	assert.Positive(t, stops, "the run finished before any SIGTERM; the test proved nothing")
}
