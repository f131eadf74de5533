package client

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ternlog/tern/internal/ternproto"
	"github.com/ternlog/tern/internal/testutil/benchutil"
	"github.com/ternlog/tern/internal/testutil/nettest"
	"github.com/ternlog/tern/internal/testutil/testpki"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// router stands in for a tern: ternproto.Serve on a loopback listener. It
// records the payload of every message it takes and counts duplicates.
type router struct {
	*nettest.Router
	t    testing.TB
	opt  ternproto.ServeOptions
	tls  *tls.Config
	hold atomic.Bool // do not acknowledge
	nack atomic.Int32

	mu    sync.Mutex
	seen  map[string]int
	order []string
	pids  map[string]int32 // by payload
}

func (r *router) Emit(_ context.Context, recs []pipeline.Record, ack pipeline.AckFunc) error {
	if r.nack.Load() > 0 {
		r.nack.Add(-1)
		ack(pipeline.ErrStopped)
		return nil
	}
	r.mu.Lock()
	for _, rec := range recs {
		m := pipeline.NewMessage()
		if err := codec.DecodeMsgpackBytes(rec.Data, m, nil); err != nil {
			r.t.Errorf("undecodable record: %v", err)
			continue
		}
		if r.seen == nil {
			r.seen = map[string]int{}
		}
		if r.pids == nil {
			r.pids = map[string]int32{}
		}
		r.pids[m.Payload] = m.Pid
		if r.seen[m.Payload] == 0 {
			r.order = append(r.order, m.Payload)
		}
		r.seen[m.Payload]++
	}
	r.mu.Unlock()
	if !r.hold.Load() {
		ack(nil)
	}
	return nil
}

func (r *router) unique() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

func (r *router) duplicates() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := 0
	for _, n := range r.seen {
		d += n - 1
	}
	return d
}

func startRouter(t testing.TB, r *router, addr string) *router {
	t.Helper()
	if r == nil {
		r = &router{}
	}
	r.t = t
	r.Router = nettest.StartRouter(t, addr, r, r.opt, r.tls)
	return r
}

func dial(t testing.TB, addr string, opts ...Option) *Client {
	t.Helper()
	c, err := Dial(addr, append([]Option{WithBackoff(10*time.Millisecond, 100*time.Millisecond), WithDialTimeout(time.Second)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	return c
}

func message(payload string) *pipeline.Message {
	m := pipeline.NewMessage()
	m.Type = "test"
	m.Payload = payload
	m.AddString("k", "v")
	return m
}

func send(t testing.TB, c *Client, from, to int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := from; i < to; i++ {
		require.NoError(t, c.Send(ctx, message(fmt.Sprintf("m%06d", i))))
	}
}

func flush(t testing.TB, c *Client) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return c.Flush(ctx)
}

func TestSendFlush(t *testing.T) {
	r := startRouter(t, nil, "")
	c := dial(t, r.Addr, WithBatch(4<<10, 100, time.Millisecond))
	send(t, c, 0, 1000)
	require.NoError(t, flush(t, c))
	assert.Equal(t, 1000, r.unique())
	assert.Equal(t, 0, r.duplicates())
	st := c.Stats()
	assert.Equal(t, Stats{Sent: 1000, Acked: 1000}, st)
	assert.Equal(t, "m000000", r.order[0])
	assert.Equal(t, "m000999", r.order[999], "one connection keeps the order")
}

// The router goes away mid-stream (a crash: unacknowledged batches are
// lost there) and comes back on the same address: the client reconnects,
// sends again what was not acknowledged, and nothing is missing.
func TestRouterRestart(t *testing.T) {
	r := startRouter(t, nil, "")
	c := dial(t, r.Addr, WithBatch(2<<10, 50, time.Millisecond))
	send(t, c, 0, 500)
	r.hold.Store(true) // batches taken from here on are never acked by this router
	send(t, c, 500, 700)
	time.Sleep(50 * time.Millisecond)
	r.Stop()
	r2 := startRouter(t, &router{seen: r.seen, order: r.order}, r.Addr)
	send(t, c, 700, 1000)
	require.NoError(t, flush(t, c))
	assert.Equal(t, 1000, r2.unique(), "missing = 0")
	st := c.Stats()
	assert.Equal(t, int64(1000), st.Acked)
	assert.Positive(t, st.Resent)
	assert.Positive(t, st.Errors)
	t.Logf("duplicates %d, batches resent %d", r2.duplicates(), st.Resent)
}

// A router answering "retry" (it was stopping) makes the client send the
// batch again.
func TestRetryStatus(t *testing.T) {
	r := startRouter(t, nil, "")
	r.nack.Store(2)
	var errs atomic.Int32
	c := dial(t, r.Addr, WithErrorHandler(func(error) { errs.Add(1) }))
	send(t, c, 0, 10)
	require.NoError(t, flush(t, c))
	assert.Equal(t, 10, r.unique())
	assert.Positive(t, errs.Load())
}

// Flush and Close report what is not acknowledged, with the cause.
func TestFlushReportsUnacked(t *testing.T) {
	r := startRouter(t, nil, "")
	r.hold.Store(true)
	c := dial(t, r.Addr)
	send(t, c, 0, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := c.Flush(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Contains(t, err.Error(), "3 messages not acknowledged")
	err = c.Close(ctx)
	require.Error(t, err)
	assert.ErrorIs(t, c.Send(context.Background(), message("late")), ErrClosed)
	assert.ErrorIs(t, c.Close(context.Background()), ErrClosed)
}

// The buffer is bounded in bytes: Send blocks when it is full.
func TestBufferFullBlocks(t *testing.T) {
	r := startRouter(t, nil, "")
	r.hold.Store(true)
	c := dial(t, r.Addr, WithBatch(1<<10, 10, time.Millisecond), WithBuffer(4<<10))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var err error
	n := 0
	for ; n < 1000 && err == nil; n++ {
		err = c.Send(ctx, message(strings.Repeat("x", 100)))
	}
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, n, 60)
}

func TestTooLarge(t *testing.T) {
	r := startRouter(t, &router{opt: ternproto.ServeOptions{MaxFrame: 8 << 10}}, "")
	c := dial(t, r.Addr)
	err := c.Send(context.Background(), message(strings.Repeat("x", 10<<10)))
	assert.ErrorIs(t, err, ErrTooLarge, "the router's limit, learnt at connect")
	c2 := dial(t, r.Addr, WithMaxMessage(100))
	assert.ErrorIs(t, c2.Send(context.Background(), message(strings.Repeat("x", 200))), ErrTooLarge)
}

// Batches sealed before the router's limit was known, bigger than it,
// are split when sent; later ones are sealed within it.
func TestResplit(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	c, err := Dial(addr, WithLazyConnect(), WithBatch(64<<10, 1000, time.Hour), WithBackoff(10*time.Millisecond, 20*time.Millisecond))
	require.NoError(t, err)
	defer c.Close(context.Background())
	send(t, c, 0, 200)
	c.mu.Lock()
	c.seal()
	require.Len(t, c.queue, 1, "one big batch")
	c.mu.Unlock()
	r := startRouter(t, &router{opt: ternproto.ServeOptions{MaxFrame: 2 << 10}}, addr)
	require.NoError(t, flush(t, c))
	send(t, c, 200, 400)
	require.NoError(t, flush(t, c))
	assert.Equal(t, 400, r.unique())
	assert.NotContains(t, fmt.Sprint(c.Err()), "larger than the limit", "no batch was refused")
}

func TestDialFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	_, err = Dial(addr, WithDialTimeout(time.Second))
	assert.Error(t, err)
	_, err = Dial(addr, WithBatch(10, 1, 0))
	assert.Error(t, err, "bad options")
}

// The error handler is called one error at a time and never after Close
// returns: the app may read what it wrote without locking (the race
// detector checks the plain slice below).
func TestErrorHandlerDoneByClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	var seen []error
	c, err := Dial(addr, WithLazyConnect(), WithBackoff(time.Millisecond, 2*time.Millisecond),
		WithErrorHandler(func(err error) { seen = append(seen, err) }))
	require.NoError(t, err)
	require.Eventually(t, func() bool { return c.Stats().Errors >= 3 }, 5*time.Second, time.Millisecond)
	require.NoError(t, c.Close(context.Background()))
	require.NotEmpty(t, seen)
	assert.LessOrEqual(t, int64(len(seen)), c.Stats().Errors)
	assert.Contains(t, seen[0].Error(), "connecting to "+addr)
}

// With a spool, what a client could not deliver before it stopped is sent
// by the next client on the same spool; a corrupt file is set aside.
func TestSpool(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close() // nobody listens yet
	var seen []error
	var mu sync.Mutex
	c, err := Dial(addr, WithLazyConnect(), WithSpool(dir, true), WithBatch(1<<10, 20, time.Millisecond),
		WithBackoff(10*time.Millisecond, 50*time.Millisecond),
		WithErrorHandler(func(e error) { mu.Lock(); seen = append(seen, e); mu.Unlock() }))
	require.NoError(t, err)
	send(t, c, 0, 100)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	err = c.Close(ctx)
	cancel()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "100 messages not acknowledged")
	assert.Contains(t, err.Error(), "connection refused")
	files, _ := filepath.Glob(filepath.Join(dir, "*.batch"))
	require.NotEmpty(t, files)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "00000000000000099999.batch"), []byte("junk"), 0o600))

	r := startRouter(t, nil, addr)
	c2 := dial(t, addr, WithSpool(dir, false))
	require.NoError(t, flush(t, c2))
	assert.Equal(t, 100, r.unique())
	files, _ = filepath.Glob(filepath.Join(dir, "*.batch"))
	assert.Empty(t, files, "acknowledged batches leave the spool")
	bad, _ := filepath.Glob(filepath.Join(dir, "*.bad"))
	assert.Len(t, bad, 1)
	assert.Error(t, c2.Err(), "the corrupt file is reported")
	mu.Lock()
	assert.NotEmpty(t, seen)
	mu.Unlock()
}

func TestTLS(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	leaf := ca.Issue(t, testpki.Opts{})
	r := startRouter(t, &router{tls: &tls.Config{Certificates: []tls.Certificate{leaf.TLSCert(t)}}}, "")
	c := dial(t, r.Addr, WithTLS(&tls.Config{RootCAs: ca.Pool()}))
	send(t, c, 0, 5)
	require.NoError(t, flush(t, c))
	assert.Equal(t, 5, r.unique())
	_, err := Dial(r.Addr, WithTLS(&tls.Config{}), WithDialTimeout(time.Second))
	assert.Error(t, err, "unknown CA")
}

// BenchmarkSend sends 300-byte messages to a router that acknowledges at
// once, including the acknowledgement of everything (Flush) at the end.
func BenchmarkSend(b *testing.B) {
	r := startRouter(b, &router{}, "")
	r.hold.Store(false)
	c := dial(b, r.Addr)
	m := message(strings.Repeat("x", 250))
	ctx := context.Background()
	b.ReportAllocs()
	stop := benchutil.CPU(b)
	for b.Loop() {
		if err := c.Send(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
	if err := c.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	stop()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// A router closing an idle connection is no error; the client reconnects
// when it has something to send.
func TestIdleCloseIsNoError(t *testing.T) {
	r := startRouter(t, &router{opt: ternproto.ServeOptions{IdleTimeout: 100 * time.Millisecond}}, "")
	var errs atomic.Int32
	c := dial(t, r.Addr, WithErrorHandler(func(err error) { errs.Add(1); t.Log(err) }))
	send(t, c, 0, 5)
	require.NoError(t, flush(t, c))
	deadline := time.Now().Add(10 * time.Second)
	for r.Open.Load() > 0 && time.Now().Before(deadline) { // the router closes the idle connection
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // and the client sees it
	send(t, c, 5, 10)
	require.NoError(t, flush(t, c))
	assert.Equal(t, 10, r.unique())
	assert.Zero(t, errs.Load())
	assert.Zero(t, c.Stats().Errors)
}
