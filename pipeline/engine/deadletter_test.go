package engine_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fifoFallback makes the unrouted dead-letter file a named pipe nobody
// reads yet: opening and writing it block, as a stalled disk would.
func fifoFallback(t *testing.T, dataDir string) string {
	t.Helper()
	p := filepath.Join(dataDir, "deadletter", "unrouted.jsonl")
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o750))
	require.NoError(t, syscall.Mkfifo(p, 0o640))
	return p
}

// Writing a dead letter to the fallback file happens off the routing path:
// while the file blocks, the input goes on routing other records. The
// batch that raised the dead letter is acknowledged only once it is
// written.
func TestFallbackFileDoesNotBlockRouting(t *testing.T) {
	r := runEngine(t, registry(), twoOutputsNamed, "3s")
	fifo := fifoFallback(t, r.dir)
	in := getFeed(r.names("in"))
	badAck := in.send("bad record")
	goodAck := in.send("auth:login")
	require.NoError(t, waitAck(t, goodAck), "a later batch is routed while the dead letter waits for the file")
	assert.Equal(t, []string{"login"}, getSink(r.names("a")).lines())
	noAck(t, badAck, 100*time.Millisecond)

	f, err := os.OpenFile(fifo, os.O_RDONLY, 0)
	require.NoError(t, err)
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	require.NoError(t, err)
	assert.Contains(t, line, `"payload":"bad record"`)
	require.NoError(t, waitAck(t, badAck), "acknowledged once written")
}

// The writer's queue is bounded: dead letters from a source that cannot be
// told are dropped when it is full, and counted; the routing path never
// waits for them.
func TestFallbackQueueFullIsCounted(t *testing.T) {
	r := runEngine(t, registry(), twoOutputsNamed, "300ms")
	fifo := fifoFallback(t, r.dir)
	in := getFeed(r.names("in"))
	big := "bad" + strings.Repeat("x", 256<<10)
	const n = 40 // 10 MiB of dead letters
	for range n {
		in.sendUntold(big)
	}
	ack := in.send("auth:after")
	require.NoError(t, waitAck(t, ack))
	dropped := r.metric(t, "tern_dropped_total", map[string]string{"plugin": "engine", "reason": "deadletter_queue_full"})
	assert.Greater(t, dropped, 0.0)
	assert.Less(t, dropped, float64(n))

	// Unblock the file so shutdown can write what is queued.
	rd, err := os.OpenFile(fifo, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	require.NoError(t, err)
	defer rd.Close()
	done := make(chan int)
	go func() {
		c := 0
		sc := bufio.NewScanner(rd)
		sc.Buffer(nil, 1<<20)
		for {
			for sc.Scan() {
				c++
			}
			if sc.Err() == nil || c >= n {
				break
			}
			sc = bufio.NewScanner(rd)
			sc.Buffer(nil, 1<<20)
			time.Sleep(time.Millisecond)
		}
		done <- c
	}()
	r.stop()
	written := <-done
	assert.Equal(t, float64(n), dropped+float64(written), "every dead letter is written or counted")
}
