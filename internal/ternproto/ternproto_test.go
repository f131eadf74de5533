package ternproto

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
	"github.com/ternlog/tern/pipeline/framing"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func msg(payload string) *pipeline.Message {
	m := pipeline.NewMessage()
	m.Type = "t"
	m.Payload = payload
	m.AddString("k", "v")
	return m
}

func batch(seq uint64, payloads ...string) []byte {
	var w BatchWriter
	w.Begin(nil, seq)
	for _, p := range payloads {
		w.Add(msg(p))
	}
	return w.Finish()
}

func TestBatchRoundTrip(t *testing.T) {
	frame := batch(42, "a", "bb", "")
	require.Equal(t, byte(KindBatch), frame[1])
	var got []string
	seq, err := ParseBatch(frame[framing.FrameHeaderLen:], func(p []byte, bad bool) {
		require.False(t, bad)
		m := pipeline.NewMessage()
		require.NoError(t, codec.DecodeMsgpackBytes(p, m, nil))
		got = append(got, m.Payload)
	})
	require.NoError(t, err)
	assert.Equal(t, uint64(42), seq)
	assert.Equal(t, []string{"a", "bb", ""}, got)
}

func TestBatchBadTail(t *testing.T) {
	frame := batch(7, "ok")
	frame = append(frame, 0x1E, 'X', 0, 0, 0, 1, 'z') // an inner frame of the wrong kind
	var recs [][]byte
	var bads int
	_, err := ParseBatch(frame[framing.FrameHeaderLen:], func(p []byte, bad bool) {
		recs = append(recs, p)
		if bad {
			bads++
		}
	})
	require.NoError(t, err)
	assert.Len(t, recs, 2)
	assert.Equal(t, 1, bads)
	assert.Equal(t, []byte{0x1E, 'X', 0, 0, 0, 1, 'z'}, recs[1])

	_, err = ParseBatch([]byte{1, 2}, func([]byte, bool) {})
	assert.Error(t, err)
}

func TestAckHelloRoundTrip(t *testing.T) {
	for _, a := range []Ack{{Seq: 1}, {Seq: 1 << 60, Status: StatusRetry, Reason: "stopped"}} {
		f := AppendAck(nil, a)
		got, err := ParseAck(f[framing.FrameHeaderLen:])
		require.NoError(t, err)
		assert.Equal(t, a, got)
	}
	_, err := ParseAck(append(make([]byte, 8), 9))
	assert.Error(t, err, "unknown status")
	h := Hello{Version: 1, MaxFrame: 1 << 20, Name: "edge"}
	f := AppendHello(nil, h)
	got, err := ParseHello(f[framing.FrameHeaderLen:])
	require.NoError(t, err)
	assert.Equal(t, h, got)
}

// serve runs Serve on a loopback listener and returns its address.
func serve(t *testing.T, out pipeline.Emitter, opt ServeOptions) (addr string, stop func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { _ = Serve(ctx, c, out, pipelinetest.Settings(t, "inputs.test"), opt) })
		}
	})
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			ln.Close()
			wg.Wait()
		})
	}
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}

func dial(t *testing.T, addr string) *Conn {
	t.Helper()
	c, err := Dial(context.Background(), addr, DialOptions{Name: "test"})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestServeAcks(t *testing.T) {
	var mu sync.Mutex
	var held []pipeline.AckFunc
	em := &pipelinetest.Emitter{Ack: func(recs []pipeline.Record, ack pipeline.AckFunc) {
		mu.Lock()
		defer mu.Unlock()
		held = append(held, ack)
	}}
	addr, _ := serve(t, em, ServeOptions{Name: "recv", Source: "tern://x"})
	c := dial(t, addr)
	assert.Equal(t, "recv", c.Peer().Name)
	require.NoError(t, c.Write(batch(1, "a", "b")))
	require.NoError(t, c.Write(batch(2, "c")))
	require.NoError(t, c.Write(batch(3))) // a ping is acknowledged at once
	require.NoError(t, c.Flush())

	a, err := c.ReadAck()
	require.NoError(t, err)
	assert.Equal(t, Ack{Seq: 3}, a)
	require.True(t, em.WaitFor(3, 5*time.Second))
	// The engine settles batch 2 first and gives up on batch 1.
	mu.Lock()
	held[1](nil)
	held[0](pipeline.ErrStopped)
	mu.Unlock()
	a, err = c.ReadAck()
	require.NoError(t, err)
	assert.Equal(t, Ack{Seq: 2}, a)
	a, err = c.ReadAck()
	require.NoError(t, err)
	assert.Equal(t, uint64(1), a.Seq)
	assert.Equal(t, StatusRetry, a.Status)
	assert.Contains(t, a.Reason, "stopped")

	m := pipeline.NewMessage()
	require.NoError(t, codec.DecodeMsgpackBytes([]byte(em.Lines()[2]), m, nil))
	assert.Equal(t, "c", m.Payload)
	assert.Equal(t, "tern://x", em.Records[0].Source)
}

func TestServeRefusesOversizeAndVersion(t *testing.T) {
	em := &pipelinetest.Emitter{}
	addr, _ := serve(t, em, ServeOptions{MaxFrame: 2 << 10})
	c := dial(t, addr)
	assert.Equal(t, 2<<10, c.MaxBatch())
	require.NoError(t, c.Write(batch(1, string(bytes.Repeat([]byte("x"), 4<<10)))))
	require.NoError(t, c.Flush())
	_, err := c.ReadAck()
	require.True(t, IsPeerError(err), "%v", err)
	assert.Contains(t, err.Error(), "larger than the limit")

	raw, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer raw.Close()
	_, err = raw.Write(AppendHello(nil, Hello{Version: 9}))
	require.NoError(t, err)
	fr := framing.NewFrameReader(raw, 0)
	kind, p, err := fr.Next()
	require.NoError(t, err)
	assert.Equal(t, byte(KindError), kind)
	assert.Contains(t, string(p), "version 9")
}

// A batch that is not all messages is still taken: the bad part becomes a
// record of its own, for the decoder to dead-letter.
func TestServeBadBatchIsEmitted(t *testing.T) {
	em := &pipelinetest.Emitter{}
	addr, _ := serve(t, em, ServeOptions{})
	c := dial(t, addr)
	f := batch(5, "fine")
	f = append(f, "garbage"...)
	f[5] += byte(len("garbage")) // fix the outer length
	require.NoError(t, c.Write(f))
	require.NoError(t, c.Flush())
	a, err := c.ReadAck()
	require.NoError(t, err)
	assert.Equal(t, Ack{Seq: 5}, a)
	assert.Equal(t, "garbage", em.Lines()[1])
}

// On shutdown the receiver stops reading but still sends the acks of what
// it took.
func TestServeDrainsAcksOnStop(t *testing.T) {
	release := make(chan struct{})
	em := &pipelinetest.Emitter{Ack: func(_ []pipeline.Record, ack pipeline.AckFunc) {
		go func() { <-release; ack(nil) }()
	}}
	addr, stop := serve(t, em, ServeOptions{DrainTimeout: 5 * time.Second})
	c := dial(t, addr)
	require.NoError(t, c.Write(batch(1, "a")))
	require.NoError(t, c.Flush())
	require.True(t, em.WaitFor(1, 5*time.Second))
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	time.Sleep(50 * time.Millisecond)
	close(release)
	a, err := c.ReadAck()
	require.NoError(t, err)
	assert.Equal(t, Ack{Seq: 1}, a)
	<-stopped
	_, err = c.ReadAck()
	assert.Error(t, err, "connection closed after the drain")
}

func TestDialErrors(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	done := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(done)
	wg.Go(func() {
		c, err := ln.Accept()
		if err == nil {
			defer c.Close()
			<-done // never answers the hello
		}
	})
	_, err = Dial(context.Background(), ln.Addr().String(), DialOptions{Timeout: 200 * time.Millisecond})
	require.Error(t, err)
	assert.True(t, errors.Is(err, context.DeadlineExceeded), "%v", err)
}

// A connection with nothing in flight is closed after the idle timeout,
// counted from the last acknowledgement; one with a batch in flight is not.
func TestServeIdleTimeout(t *testing.T) {
	release := make(chan struct{})
	em := &pipelinetest.Emitter{Ack: func(recs []pipeline.Record, ack pipeline.AckFunc) {
		if bytes.Contains(recs[0].Data, []byte("slow")) {
			go func() { <-release; ack(nil) }()
			return
		}
		ack(nil)
	}}
	addr, _ := serve(t, em, ServeOptions{IdleTimeout: 200 * time.Millisecond})
	c := dial(t, addr)
	require.NoError(t, c.Write(batch(1, "slow")))
	require.NoError(t, c.Flush())
	time.Sleep(500 * time.Millisecond) // longer than the idle timeout, but busy
	close(release)
	a, err := c.ReadAck()
	require.NoError(t, err)
	assert.Equal(t, uint64(1), a.Seq)
	t0 := time.Now()
	_, err = c.ReadAck()
	require.Error(t, err, "closed once idle")
	assert.Less(t, time.Since(t0), 5*time.Second)
}

// Stopping works whatever the reader is doing, idle timeout or not.
func TestServeStopsWithIdleTimeout(t *testing.T) {
	em := &pipelinetest.Emitter{}
	addr, stop := serve(t, em, ServeOptions{IdleTimeout: time.Hour})
	c := dial(t, addr)
	require.NoError(t, c.Write(batch(1, "a")))
	require.NoError(t, c.Flush())
	_, err := c.ReadAck()
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not stop")
	}
}
