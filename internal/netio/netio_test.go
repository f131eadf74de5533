package netio

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ternlog/tern/internal/testutil/testpki"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/framing"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func listen(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return ln
}

// serve runs Serve in the background and returns a stop function.
func serve(t *testing.T, ln net.Listener, opts ServeOpts, set pipeline.Settings, h func(context.Context, net.Conn)) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, opts, set, h) }()
	stop := func() {
		cancel()
		assert.NoError(t, <-done)
	}
	return stop
}

func TestServeCapsConnections(t *testing.T) {
	set := pipelinetest.Settings(t, "inputs.x")
	tel := set.Telemetry.(*pipelinetest.Telemetry)
	ln := listen(t)
	var mu sync.Mutex
	open := 0
	// MinIdle: none of them waited long enough to make room.
	stop := serve(t, ln, ServeOpts{MaxConnections: 2, MinIdle: time.Hour}, set, func(ctx context.Context, c net.Conn) {
		mu.Lock()
		open++
		mu.Unlock()
		_, _ = io.Copy(io.Discard, c)
	})
	defer stop()

	var conns []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		conns = append(conns, c)
	}
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return open == 2 }, 10*time.Second, 10*time.Millisecond)
	extra, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	_ = extra.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = extra.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "a connection over the cap is closed at once")
	extra.Close()
	require.Eventually(t, func() bool { return tel.Count("connections_refused_total") == 1 }, 10*time.Second, 10*time.Millisecond)

	// A freed slot is usable again.
	conns[0].Close()
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			return false
		}
		conns = append(conns, c)
		mu.Lock()
		defer mu.Unlock()
		return open == 3
	}, 10*time.Second, 50*time.Millisecond)
	for _, c := range conns {
		c.Close()
	}
}

// logged returns settings whose log the test can read.
func logged(t *testing.T) (pipeline.Settings, *pipelinetest.SyncBuffer) {
	set := pipelinetest.Settings(t, "inputs.x")
	logs := &pipelinetest.SyncBuffer{}
	set.Logger = slog.New(slog.NewTextHandler(logs, nil))
	return set, logs
}

// dialServed dials ln and waits until the handler holds the connection.
func dialServed(t *testing.T, addr string, served chan net.Conn) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	select {
	case <-served:
	case <-time.After(10 * time.Second):
		t.Fatal("the connection was not served")
	}
	return c
}

func closedByServer(t *testing.T, c net.Conn) bool {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := c.Read(make([]byte, 1))
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
}

// Idle connections holding every slot no longer lock new clients out: the
// one that waited longest for data makes room, counted and logged.
func TestServeEvictsTheLongestIdle(t *testing.T) {
	set, logs := logged(t)
	tel := set.Telemetry.(*pipelinetest.Telemetry)
	ln := listen(t)
	served := make(chan net.Conn, 10)
	stop := serve(t, ln, ServeOpts{MaxConnections: 2, MinIdle: 100 * time.Millisecond}, set, func(ctx context.Context, c net.Conn) {
		served <- c
		_, _ = io.Copy(io.Discard, c)
	})
	defer stop()
	addr := ln.Addr().String()
	oldest := dialServed(t, addr, served)
	defer oldest.Close()
	younger := dialServed(t, addr, served)
	defer younger.Close()
	time.Sleep(50 * time.Millisecond)
	_, err := younger.Write([]byte("x")) // younger waits less for data than oldest
	require.NoError(t, err)
	time.Sleep(150 * time.Millisecond)

	newcomer := dialServed(t, addr, served)
	defer newcomer.Close()
	assert.True(t, closedByServer(t, oldest), "the longest-idle connection is closed")
	_ = younger.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	_, err = younger.Read(make([]byte, 1))
	assert.True(t, IsTimeout(err), "the other stays open: %v", err)
	assert.Equal(t, 1.0, tel.Count("connections_evicted_total"))
	assert.Zero(t, tel.Count("connections_refused_total"))
	assert.Contains(t, logs.String(), "evicted the longest-idle connection")
	assert.Contains(t, logs.String(), "remote="+oldest.LocalAddr().String())
}

// When no connection has been idle long enough, or the ones there are busy
// (a handler that is not reading), a new one is refused: counted every
// time, logged once a minute.
func TestServeRefusesWhenNoneIsIdle(t *testing.T) {
	set, logs := logged(t)
	tel := set.Telemetry.(*pipelinetest.Telemetry)
	ln := listen(t)
	served := make(chan net.Conn, 10)
	release := make(chan struct{})
	stop := serve(t, ln, ServeOpts{MaxConnections: 2, MinIdle: 100 * time.Millisecond}, set, func(ctx context.Context, c net.Conn) {
		served <- c
		if _, err := c.Read(make([]byte, 1)); err != nil {
			return
		}
		// Busy: handing a batch on, say, under backpressure.
		select {
		case <-release:
		case <-ctx.Done():
		}
	})
	defer stop()
	defer close(release)
	addr := ln.Addr().String()
	busy := dialServed(t, addr, served)
	defer busy.Close()
	_, err := busy.Write([]byte("x"))
	require.NoError(t, err)
	fresh := dialServed(t, addr, served) // idle, but not for 100ms yet
	defer fresh.Close()
	for range 3 {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		assert.True(t, closedByServer(t, c), "refused")
		c.Close()
	}
	require.Eventually(t, func() bool { return tel.Count("connections_refused_total") == 3 }, 10*time.Second, 10*time.Millisecond)
	assert.Zero(t, tel.Count("connections_evicted_total"))
	assert.Equal(t, 1, strings.Count(logs.String(), "connection refused: max_connections reached"), logs.String())
	_ = fresh.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err = fresh.Read(make([]byte, 1))
	assert.True(t, IsTimeout(err), "still open: %v", err)
}

func TestServeHandshakeTimeoutEvictsSilentPeers(t *testing.T) {
	set := pipelinetest.Settings(t, "inputs.x")
	ca := testpki.NewCA(t, "ca")
	srv := &tls.Config{Certificates: []tls.Certificate{ca.Issue(t, testpki.Opts{}).TLSCert(t)}}
	ln := listen(t)
	handled := make(chan struct{}, 1)
	stop := serve(t, ln, ServeOpts{MaxConnections: 1, TLS: srv, HandshakeTimeout: time.Second}, set, func(ctx context.Context, c net.Conn) {
		handled <- struct{}{}
	})
	defer stop()

	// The silent peer holds the only slot until the handshake deadline.
	silent, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer silent.Close()
	_ = silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	t0 := time.Now()
	_, err = silent.Read(make([]byte, 1))
	assert.Error(t, err)
	assert.Less(t, time.Since(t0), 8*time.Second)

	// The slot frees just after the close the silent peer saw: retry briefly.
	var good *tls.Conn
	require.Eventually(t, func() bool {
		good, err = tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"})
		return err == nil
	}, 10*time.Second, 20*time.Millisecond)
	defer good.Close()
	select {
	case <-handled:
	case <-time.After(10 * time.Second):
		t.Fatal("a legitimate client was not served after the slot freed")
	}
	tel := set.Telemetry.(*pipelinetest.Telemetry)
	assert.Equal(t, 1, tel.Errored("tls_handshake"))
}

func readAll(r Reader) ([]string, error) {
	var out []string
	for {
		b, err := r.Next()
		if err != nil {
			return out, err
		}
		out = append(out, string(b))
	}
}

func TestAutoFraming(t *testing.T) {
	got, err := readAll(NewReader(FramingAuto, strings.NewReader("5 hello9 two\nlines"), FrameOpts{Max: 100}))
	assert.ErrorIs(t, err, io.EOF)
	assert.Equal(t, []string{"hello", "two\nlines"}, got)

	got, err = readAll(NewReader(FramingAuto, strings.NewReader("<13>a\n<14>b\r\n"), FrameOpts{Max: 100}))
	assert.ErrorIs(t, err, io.EOF)
	assert.Equal(t, []string{"<13>a", "<14>b"}, got)

	got, err = readAll(NewReader(FramingAuto, strings.NewReader(""), FrameOpts{Max: 100}))
	assert.ErrorIs(t, err, io.EOF)
	assert.Empty(t, got)

	assert.NoError(t, CheckFraming("octet_counting"))
	assert.ErrorContains(t, CheckFraming("lf"), "auto, newline, non_transparent, octet_counting")
}

func TestEmitFramesCountsOversize(t *testing.T) {
	set := pipelinetest.Settings(t, "inputs.x")
	var em pipelinetest.Emitter
	in := "ok1\n" + strings.Repeat("x", 50) + "\nok2\n"
	err := framing.Emit(context.Background(), NewReader(FramingNewline, strings.NewReader(in), FrameOpts{Max: 10}), pipeline.Record{Source: "s"}, 10, &em, set, nil)
	assert.ErrorIs(t, err, io.EOF)
	assert.Equal(t, []string{"ok1", "ok2"}, em.Lines())
	assert.Equal(t, 1, set.Telemetry.(*pipelinetest.Telemetry).Dropped("oversize"))

	var em2 pipelinetest.Emitter
	set2 := pipelinetest.Settings(t, "inputs.x")
	err = framing.Emit(context.Background(), NewReader(FramingOctet, strings.NewReader("2 ok99 xx"), FrameOpts{Max: 10}), pipeline.Record{}, 10, &em2, set2, nil)
	assert.ErrorIs(t, err, framing.ErrSyslogTooLarge)
	assert.Equal(t, []string{"ok"}, em2.Lines())
	assert.Equal(t, 1, set2.Telemetry.(*pipelinetest.Telemetry).Dropped("oversize"))
}

func TestReadDatagrams(t *testing.T) {
	for _, network := range []string{"127.0.0.1:0", "[::1]:0"} {
		t.Run(network, func(t *testing.T) {
			pc, err := net.ListenPacket("udp", network)
			if err != nil {
				t.Skip("no", network, err)
			}
			set := pipelinetest.Settings(t, "inputs.x")
			var em pipelinetest.Emitter
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() {
				done <- ReadDatagrams(ctx, pc, DatagramOpts{MaxSize: 16, Batch: 4, AddrField: "remote_addr"}, &em, set)
			}()
			c, err := net.Dial("udp", pc.LocalAddr().String())
			require.NoError(t, err)
			defer c.Close()
			for _, m := range []string{"one", strings.Repeat("y", 17), "two\x00\xff", strings.Repeat("z", 16)} {
				_, err := c.Write([]byte(m))
				require.NoError(t, err)
			}
			require.True(t, em.WaitFor(3, 10*time.Second))
			cancel()
			require.NoError(t, <-done)
			assert.Equal(t, []string{"one", "two\x00\xff", strings.Repeat("z", 16)}, em.Lines())
			assert.Equal(t, 1, set.Telemetry.(*pipelinetest.Telemetry).Dropped("oversize"))
			local := c.LocalAddr().(*net.UDPAddr)
			r := em.Records[0]
			assert.Equal(t, "udp://"+local.AddrPort().String(), r.Source)
			require.Len(t, r.Fields, 1)
			assert.Equal(t, "remote_addr", r.Fields[0].Name)
			assert.Equal(t, local.IP.String(), r.Fields[0].Value(0).Str())
		})
	}
}

func TestIdleReaderTimesOut(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	r := &IdleReader{C: a, Idle: 100 * time.Millisecond}
	_, err := r.Read(make([]byte, 1))
	assert.True(t, IsTimeout(err), "%v", err)
	assert.False(t, IsTimeout(errors.New("x")))
}

// Skipping empty records must not break the batch's hold on its records.
func TestEmitFramesSkipEmpty(t *testing.T) {
	set := pipelinetest.Settings(t, "inputs.x")
	var em pipelinetest.Emitter
	r := &chunks{"<34>first record\r\n\n", "<13>unterminated"}
	err := framing.Emit(context.Background(), framing.SkipEmpty(NewReader(FramingNewline, r, FrameOpts{Max: 64})), pipeline.Record{}, 10, &em, set, nil)
	assert.ErrorIs(t, err, io.EOF)
	assert.Equal(t, []string{"<34>first record", "<13>unterminated"}, em.Lines())
}

// chunks returns one chunk per Read.
type chunks []string

func (c *chunks) Read(p []byte) (int, error) {
	if len(*c) == 0 {
		return 0, io.EOF
	}
	n := copy(p, (*c)[0])
	(*c)[0] = (*c)[0][n:]
	if (*c)[0] == "" {
		*c = (*c)[1:]
	}
	return n, nil
}
