package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
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
		// The clock starts when tern says it runs: on a loaded machine the
		// process can take longer than stopAfter just to start.
		started := make(chan struct{})
		cmd.Stderr = &lineWatcher{w: os.Stderr, line: "tern started", seen: started}
		require.NoError(t, cmd.Start())
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			require.NoError(t, err)
			return true
		case <-started:
		}
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

// TestE2EReloadOnSIGHUP: SIGHUP reads the config again. A config with an
// error is logged and ignored (the pipeline keeps running); a good one
// replaces the pipeline after a drain, so lines written all along, across
// both reloads, are each delivered once: before the reload to the old
// output's file, after it to the new one's, and the tail position carries
// over.
func TestE2EReloadOnSIGHUP(t *testing.T) {
	bin := buildTern(t)
	dir := t.TempDir()
	in := filepath.Join(dir, "in.log")
	require.NoError(t, os.WriteFile(in, nil, 0o644))
	cfg := filepath.Join(dir, "tern.toml")
	config := func(out, extra string) {
		require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`
[tern]
data_dir = %q
metrics_address = ""
shutdown_timeout = "20s"
[inputs.file]
type = "tail"
paths = [%q]
decoder = "payload"
checkpoint_interval = "50ms"
[outputs.out]
type = "file"
message_matcher = "TRUE"
encoder = "payload"
path = %q
%s`, filepath.Join(dir, "data"), in, filepath.Join(dir, out), extra)), 0o644))
	}
	config("before.log", "")
	logPath := filepath.Join(dir, "tern.stderr")
	logf, err := os.Create(logPath)
	require.NoError(t, err)
	defer logf.Close()
	cmd := exec.Command(bin, "run", "-config", cfg)
	cmd.Stderr = logf
	require.NoError(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-done
		}
	}()
	logged := func(s string) func() bool {
		return func() bool {
			b, _ := os.ReadFile(logPath)
			return strings.Contains(string(b), s)
		}
	}

	// A writer appends lines all along, at about 20,000 a second.
	const lines = 40_000
	wrote := make(chan error, 1)
	go func() {
		f, err := os.OpenFile(in, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			wrote <- err
			return
		}
		defer f.Close()
		for i := 0; i < lines; i += 100 {
			var b strings.Builder
			for j := i; j < i+100; j++ {
				fmt.Fprintf(&b, "seq=%d %s\n", j, strings.Repeat("y", 60))
			}
			if _, err := f.WriteString(b.String()); err != nil {
				wrote <- err
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
		wrote <- nil
	}()

	time.Sleep(300 * time.Millisecond)
	config("after.log", "unknown_key = 1\n")
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, logged("reload: the config has errors"), 10*time.Second, 10*time.Millisecond)
	assert.Contains(t, func() string { b, _ := os.ReadFile(logPath); return string(b) }(), "unknown_key", "the error names the key")

	time.Sleep(300 * time.Millisecond)
	config("after.log", "")
	require.NoError(t, cmd.Process.Signal(syscall.SIGHUP))
	require.Eventually(t, logged("reload: running the new config"), 30*time.Second, 10*time.Millisecond)
	require.NoError(t, <-wrote)

	count := func() (seen map[int]int, total int) {
		seen = map[int]int{}
		for _, name := range []string{"before.log", "after.log"} {
			b, _ := os.ReadFile(filepath.Join(dir, name))
			for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
				if l == "" {
					continue
				}
				seqText, _, _ := strings.Cut(strings.TrimPrefix(l, "seq="), " ")
				n, err := strconv.Atoi(seqText)
				require.NoError(t, err, "corrupt line %q", l)
				seen[n]++
				total++
			}
		}
		return seen, total
	}
	require.Eventually(t, func() bool { seen, _ := count(); return len(seen) == lines }, 60*time.Second, 20*time.Millisecond)
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-done:
		require.NoError(t, err, "SIGTERM after reloads must exit 0")
	case <-time.After(30 * time.Second):
		t.Fatal("tern did not stop after SIGTERM")
	}
	seen, total := count()
	before, _ := os.ReadFile(filepath.Join(dir, "before.log"))
	after, _ := os.ReadFile(filepath.Join(dir, "after.log"))
	t.Logf("%d lines: %d in the old output's file, %d in the new one's, duplicates %d",
		lines, strings.Count(string(before), "\n"), strings.Count(string(after), "\n"), total-len(seen))
	assert.Len(t, seen, lines, "missing")
	assert.Equal(t, lines, total, "duplicates: the drain checkpoints what it delivered")
	assert.Positive(t, strings.Count(string(before), "\n"), "the bad config did not stop the pipeline")
	assert.Positive(t, strings.Count(string(after), "\n"), "the new config took over")
}

// lineWatcher passes a process's output through and closes seen the first
// time the output contains line.
type lineWatcher struct {
	w    io.Writer
	line string
	seen chan struct{}
	buf  []byte
	once sync.Once
}

func (l *lineWatcher) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	if bytes.Contains(l.buf, []byte(l.line)) {
		l.once.Do(func() { close(l.seen) })
		l.buf = l.buf[:0]
	} else if len(l.buf) > 4096 {
		l.buf = append(l.buf[:0], l.buf[len(l.buf)-len(l.line):]...)
	}
	return l.w.Write(p)
}
