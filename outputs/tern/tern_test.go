package tern

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"sync"
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
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/framing"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newOutput(t testing.TB, cfg Config) *Output {
	t.Helper()
	o, err := New(pipelinetest.Settings(t, "outputs.tern"), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = o.Close(context.Background()) })
	return o
}

func testConfig(addr string) Config {
	c := DefaultConfig()
	c.Address = addr
	c.DialTimeout = config.Duration(time.Second)
	c.AckTimeout = config.Duration(5 * time.Second)
	return c
}

// batch encodes messages as the msgpack encoder does (framed) and, every
// other one, bare.
func batch(payloads ...string) []pipeline.Encoded {
	out := make([]pipeline.Encoded, len(payloads))
	for i, p := range payloads {
		m := pipeline.NewMessage()
		m.Type = "t"
		m.Payload = p
		var data []byte
		if i%2 == 0 {
			data = framing.AppendMessageFrame(nil, m)
		} else {
			data = codec.AppendMsgpack(nil, m)
		}
		out[i] = pipeline.Encoded{Msg: m, Data: data}
	}
	return out
}

func payloads(t testing.TB, em *pipelinetest.Emitter) []string {
	t.Helper()
	var out []string
	for _, l := range em.Lines() {
		m := pipeline.NewMessage()
		require.NoError(t, codec.DecodeMsgpackBytes([]byte(l), m, nil))
		out = append(out, m.Payload)
	}
	return out
}

// Write returns only once the receiver acknowledged the batch.
func TestWriteWaitsForTheAck(t *testing.T) {
	release := make(chan struct{})
	em := &pipelinetest.Emitter{Ack: func(_ []pipeline.Record, ack pipeline.AckFunc) {
		go func() { <-release; ack(nil) }()
	}}
	r := nettest.StartRouter(t, "", em, ternproto.ServeOptions{}, nil)
	o := newOutput(t, testConfig(r.Addr))
	done := make(chan error, 1)
	go func() { done <- o.Write(context.Background(), batch("a", "b", "c")) }()
	require.True(t, em.WaitFor(3, 5*time.Second))
	select {
	case err := <-done:
		t.Fatalf("Write returned %v before the ack", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	require.NoError(t, <-done)
	assert.Equal(t, []string{"a", "b", "c"}, payloads(t, em))
}

// A receiver that could not take a batch (StatusRetry), that is down, or
// that goes away while Write waits: Write fails, and a later Write
// reconnects.
func TestWriteFailsAndRecovers(t *testing.T) {
	var mu sync.Mutex
	refuse := true
	em := &pipelinetest.Emitter{Ack: func(_ []pipeline.Record, ack pipeline.AckFunc) {
		mu.Lock()
		defer mu.Unlock()
		if refuse {
			ack(pipeline.ErrStopped)
			return
		}
		ack(nil)
	}}
	r := nettest.StartRouter(t, "", em, ternproto.ServeOptions{}, nil)
	o := newOutput(t, testConfig(r.Addr))
	err := o.Write(context.Background(), batch("x"))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "stopped before delivery")
	assert.False(t, pipeline.IsPermanent(err))

	mu.Lock()
	refuse = false
	mu.Unlock()
	require.NoError(t, o.Write(context.Background(), batch("y")))

	r.Stop()
	require.Error(t, o.Write(context.Background(), batch("z")))
	require.Error(t, o.Write(context.Background(), batch("z")), "nobody listens")
	r2 := nettest.StartRouter(t, r.Addr, em, ternproto.ServeOptions{}, nil)
	require.NoError(t, o.Write(context.Background(), batch("z")))
	got := payloads(t, em)
	assert.Equal(t, "z", got[len(got)-1])
	_ = r2
}

// A receiver that never answers: Write gives up at ack_timeout, or when
// its context ends.
func TestAckTimeout(t *testing.T) {
	em := &pipelinetest.Emitter{Ack: func([]pipeline.Record, pipeline.AckFunc) {}} // never acknowledged
	r := nettest.StartRouter(t, "", em, ternproto.ServeOptions{DrainTimeout: time.Millisecond}, nil)
	cfg := testConfig(r.Addr)
	cfg.AckTimeout = config.Duration(200 * time.Millisecond)
	o := newOutput(t, cfg)
	t0 := time.Now()
	require.Error(t, o.Write(context.Background(), batch("a")))
	assert.Less(t, time.Since(t0), 5*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	require.Error(t, o.Write(ctx, batch("b")))
}

// Batches are split to fit the receiver's frame limit; a message that can
// never fit is refused for good, the rest delivered.
func TestSplitAndTooLarge(t *testing.T) {
	em := &pipelinetest.Emitter{}
	r := nettest.StartRouter(t, "", em, ternproto.ServeOptions{MaxFrame: 4 << 10}, nil)
	o := newOutput(t, testConfig(r.Addr))
	var ps []string
	for i := range 40 {
		ps = append(ps, fmt.Sprintf("%03d-%s", i, strings.Repeat("x", 300)))
	}
	ps[7] = strings.Repeat("y", 5<<10)
	err := o.Write(context.Background(), batch(ps...))
	var pe *pipeline.PartialError
	require.ErrorAs(t, err, &pe)
	for i, e := range pe.Errs {
		if i == 7 {
			assert.True(t, pipeline.IsPermanent(e))
		} else {
			assert.NoError(t, e)
		}
	}
	assert.Len(t, em.Lines(), 39)
	assert.Greater(t, em.Batches, 3, "several frames")
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "tern CA")
	leaf := ca.Issue(t, testpki.Opts{})
	em := &pipelinetest.Emitter{}
	r := nettest.StartRouter(t, "", em, ternproto.ServeOptions{}, &tls.Config{Certificates: []tls.Certificate{leaf.TLSCert(t)}})
	cfg := testConfig(r.Addr)
	cfg.TLS.CAFile = ca.WriteCA(t, dir, "ca")
	o := newOutput(t, cfg)
	require.NoError(t, o.Check())
	require.NoError(t, o.Write(context.Background(), batch("secret")))
	assert.Equal(t, []string{"secret"}, payloads(t, em))

	cfg.TLS.CAFile, cfg.TLS.Enabled = "", true // system roots: the test CA is unknown
	o = newOutput(t, cfg)
	assert.Error(t, o.Write(context.Background(), batch("x")))
}

func TestValidate(t *testing.T) {
	err := Config{}.Validate()
	require.Error(t, err)
	for _, want := range []string{"address: required", "dial_timeout:", "ack_timeout:"} {
		assert.Contains(t, err.Error(), want)
	}
}

// BenchmarkWrite forwards batches of 1024 messages of about 300 bytes to a
// receiver that acknowledges at once.
func BenchmarkWrite(b *testing.B) {
	r := nettest.StartRouter(b, "", ackAll{}, ternproto.ServeOptions{}, nil)
	o := newOutput(b, testConfig(r.Addr))
	ps := make([]string, 1024)
	for i := range ps {
		ps[i] = strings.Repeat("x", 260)
	}
	bt := batch(ps...)
	for i := range bt {
		bt[i].Data = framing.AppendMessageFrame(nil, bt[i].Msg)
	}
	b.ReportAllocs()
	stop := benchutil.CPU(b)
	for b.Loop() {
		if err := o.Write(context.Background(), bt); err != nil {
			b.Fatal(err)
		}
	}
	stop()
	b.ReportMetric(float64(b.N)*1024/b.Elapsed().Seconds(), "msgs/s")
}

// ackAll acknowledges every batch at once and keeps nothing.
type ackAll struct{}

func (ackAll) Emit(_ context.Context, _ []pipeline.Record, ack pipeline.AckFunc) error {
	ack(nil)
	return nil
}

// A receiver that closed the connection while it was idle costs no failed
// Write: the batch goes once more on a new connection.
func TestIdleCloseRetriedAtOnce(t *testing.T) {
	em := &pipelinetest.Emitter{}
	r := nettest.StartRouter(t, "", em, ternproto.ServeOptions{IdleTimeout: 100 * time.Millisecond}, nil)
	o := newOutput(t, testConfig(r.Addr))
	require.NoError(t, o.Write(context.Background(), batch("a")))
	time.Sleep(400 * time.Millisecond)
	require.NoError(t, o.Write(context.Background(), batch("b")))
	assert.Equal(t, []string{"a", "b"}, payloads(t, em))
}
