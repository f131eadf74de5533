package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// lineWaiter hands the first line written to it to a channel.
type lineWaiter struct {
	buf  bytes.Buffer
	line chan string
}

func (w *lineWaiter) Write(p []byte) (int, error) {
	w.buf.Write(p)
	if i := bytes.IndexByte(w.buf.Bytes(), '\n'); i >= 0 && w.line != nil {
		w.line <- w.buf.String()[:i]
		w.line = nil
	}
	return len(p), nil
}

// The first stdout line lists the brokers; they serve the seeded topics;
// the cluster stops when ctx ends.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out := &lineWaiter{line: make(chan string, 1)}
	line := out.line
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"-brokers", "2", "-topics", "logs, alerts", "-partitions", "3"}, out, &bytes.Buffer{})
	}()
	var addrs string
	select {
	case addrs = <-line:
	case <-time.After(10 * time.Second):
		t.Fatal("no address line")
	}
	require.Len(t, strings.Split(addrs, ","), 2)
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(addrs, ",")...), kgo.DefaultProduceTopic("alerts"))
	require.NoError(t, err)
	pctx, pcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer pcancel()
	require.NoError(t, cl.ProduceSync(pctx, &kgo.Record{Value: []byte("x")}).FirstErr())
	cl.Close()
	cancel()
	assert.Equal(t, 0, <-done)
	assert.Equal(t, 2, run(context.Background(), []string{"-brokers", "0"}, &bytes.Buffer{}, &bytes.Buffer{}))
}

// The built command prints its addresses first and exits cleanly on
// SIGTERM.
func TestCommandSignal(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	bin := filepath.Join(t.TempDir(), "kfake")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stderr = os.Stderr
	require.NoError(t, build.Run())
	cmd := exec.Command(bin, "-topics", "logs", "-data-dir", t.TempDir())
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	buf := make([]byte, 256)
	n, err := stdout.Read(buf)
	require.NoError(t, err)
	assert.Regexp(t, `^127\.0\.0\.1:\d+\n`, string(buf[:n]))
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait())
}
