package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ternlog/tern/client"
	"github.com/ternlog/tern/internal/testutil/testscale"
	"github.com/ternlog/tern/pipeline"
)

func centralConfig(addr, sink string) string {
	return fmt.Sprintf(`
[inputs.edges]
type = "tcp"
address = %q
framing = "native"
decoder = "msgpack"

[outputs.sink]
type = "sink"
name = %q
message_matcher = "TRUE"
`, addr, sink)
}

func edgeConfig(addr, central string) string {
	return fmt.Sprintf(`
[inputs.apps]
type = "tcp"
address = %q
framing = "native"
decoder = "msgpack"

[outputs.central]
type = "tern"
message_matcher = "TRUE"
address = %q
dial_timeout = "500ms"
ack_timeout = "5s"
[outputs.central.retries]
delay = "20ms"
max_delay = "200ms"
max_jitter = "20ms"
`, addr, central)
}

// An application sends through an edge tern that forwards to a central
// tern. The central tern restarts; then, while it is down, the edge tern
// stops too (its queue cannot drain: what it held is not acknowledged to
// the application) and both come back. Every event reaches the central
// sink (missing = 0); duplicates are counted.
func TestIntegrationEdgeToCentral(t *testing.T) {
	if testing.Short() {
		t.Skip("integration test")
	}
	n := testscale.N(300_000, 30_000)
	centralAddr, edgeAddr := freeAddr(t), freeAddr(t)
	s := getSink(t.Name())
	central := startEngine(t, centralConfig(centralAddr, t.Name()), 2*time.Second)
	edge := startEngine(t, edgeConfig(edgeAddr, centralAddr), 500*time.Millisecond)

	c, err := client.Dial(edgeAddr, client.WithLazyConnect(), client.WithBackoff(10*time.Millisecond, 200*time.Millisecond),
		client.WithBatch(32<<10, 512, 2*time.Millisecond), client.WithAckTimeout(10*time.Second))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	send := func(from, to int) {
		for i := from; i < to; i++ {
			m := pipeline.NewMessage()
			m.Type = "e2e"
			m.Payload = string(event(i))
			require.NoError(t, c.Send(ctx, m))
		}
	}

	send(0, n/4)
	central.stop() // graceful: it acknowledges what it delivered, the rest goes again
	central = startEngine(t, centralConfig(centralAddr, t.Name()), 2*time.Second)
	send(n/4, n/2)
	waitUntil(t, 60*time.Second, "half the events at the center", func() bool { return s.got.unique() >= n/3 })

	central.stop()
	send(n/2, 3*n/4) // held by the edge, which cannot forward them
	edge.stop()      // gives up after 500ms: the application is not acknowledged
	central = startEngine(t, centralConfig(centralAddr, t.Name()), 2*time.Second)
	edge = startEngine(t, edgeConfig(edgeAddr, centralAddr), 500*time.Millisecond)
	send(3*n/4, n)
	require.NoError(t, c.Flush(ctx))
	require.NoError(t, c.Close(ctx))
	waitUntil(t, 60*time.Second, "every event at the center", func() bool { return s.got.unique() >= n })
	edge.stop()
	central.stop()

	missing, dups, spurious := s.got.report(n)
	st := c.Stats()
	t.Logf("edge -> central: %d events, central restarted twice, edge once; missing %d, duplicates %d, spurious %d; client resent %d batches after %d connection errors",
		n, missing, dups, spurious, st.Resent, st.Errors)
	assert.Zero(t, missing, "missing")
	assert.Zero(t, spurious)
	assert.Equal(t, int64(n), st.Acked)
}
