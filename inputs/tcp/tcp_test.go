package tcp_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ternlog/tern/inputs/tcp"
	"github.com/ternlog/tern/internal/ternproto"
	"github.com/ternlog/tern/internal/testutil/nettest"
	"github.com/ternlog/tern/internal/testutil/testpki"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type rig struct {
	addr string
	em   *pipelinetest.Emitter
	tel  *pipelinetest.Telemetry
}

func start(t *testing.T, mod func(*tcp.Config)) rig {
	t.Helper()
	cfg := tcp.DefaultConfig()
	cfg.Address = "127.0.0.1:0"
	if mod != nil {
		mod(&cfg)
	}
	require.NoError(t, cfg.Validate())
	set := pipelinetest.Settings(t, "inputs.tcp")
	in, err := tcp.New(set, cfg)
	require.NoError(t, err)
	em := &pipelinetest.Emitter{}
	addr := nettest.RunInput(t, in, em, in.Addr)
	return rig{addr: addr, em: em, tel: set.Telemetry.(*pipelinetest.Telemetry)}
}

func send(t *testing.T, addr string, data string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	_, err = io.WriteString(c, data)
	require.NoError(t, err)
	require.NoError(t, c.Close())
}

func TestFramings(t *testing.T) {
	cases := []struct {
		framing, in string
		want        []string
	}{
		{"newline", "a\nb\r\n\nc", []string{"a", "b", "", "c"}},
		{"octet_counting", "1 a3 b\nc", []string{"a", "b\nc"}},
		{"auto", "3 x\ny", []string{"x\ny"}},
		{"auto", "<13>x\n<14>y\n", []string{"<13>x", "<14>y"}},
	}
	for _, c := range cases {
		t.Run(c.framing, func(t *testing.T) {
			r := start(t, func(cfg *tcp.Config) { cfg.Framing = c.framing })
			send(t, r.addr, c.in)
			require.True(t, r.em.WaitFor(len(c.want), 10*time.Second), "got %q", r.em.Lines())
			assert.Equal(t, c.want, r.em.Lines())
			assert.True(t, strings.HasPrefix(r.em.Records[0].Source, "tcp://127.0.0.1:"))
		})
	}
}

// nul_trailer: NUL ends a record too, for senders that use it.
func TestNULTrailer(t *testing.T) {
	r := start(t, func(cfg *tcp.Config) { cfg.Framing, cfg.NULTrailer = "auto", true })
	send(t, r.addr, "<13>a\x00<14>b\n<15>c\x00")
	require.True(t, r.em.WaitFor(3, 10*time.Second), "got %q", r.em.Lines())
	assert.Equal(t, []string{"<13>a", "<14>b", "<15>c"}, r.em.Lines())

	cfg := tcp.DefaultConfig()
	cfg.Address, cfg.NULTrailer = "127.0.0.1:0", true
	assert.ErrorContains(t, cfg.Validate(), "nul_trailer: only with framing auto or non_transparent")
}

// R23: bytes that are not UTF-8, NUL, CR, U+2028 and Latin-1 pass through
// untouched: nothing dropped, nothing truncated. A NUL splits no record in
// any framing unless nul_trailer says so.
func TestInvalidUTF8PassesThrough(t *testing.T) {
	lines := []string{"\xff\xfe\xfd", "nul\x00inside", "cr\rinside", "ls\u2028sep", "caf\xe9", "\xed\xa0\x80 lone surrogate", "\xc0\xaf overlong"}
	for _, framing := range []string{"newline", "octet_counting", "auto", "non_transparent"} {
		t.Run(framing, func(t *testing.T) {
			r := start(t, func(cfg *tcp.Config) { cfg.Framing = framing })
			var b strings.Builder
			for _, l := range lines {
				if framing != "octet_counting" {
					b.WriteString(l + "\n")
				} else {
					fmt.Fprintf(&b, "%d %s", len(l), l)
				}
			}
			send(t, r.addr, b.String())
			require.True(t, r.em.WaitFor(len(lines), 10*time.Second))
			assert.Equal(t, lines, r.em.Lines())
		})
	}
}

// R20, scaled: a 100 MiB line on one connection is dropped after the cap
// and counted, that connection resyncs at the next newline, and ten other
// connections keep flowing while the flood is under way.
func TestHugeLineIsDroppedWhileOthersFlow(t *testing.T) {
	r := start(t, nil)
	const others = 10

	attacker, err := net.Dial("tcp", r.addr)
	require.NoError(t, err)
	defer attacker.Close()
	flooding := make(chan struct{})
	attackDone := make(chan error, 1)
	go func() {
		chunk := bytes.Repeat([]byte("A"), 1<<20)
		for i := range 100 {
			if i == 1 {
				close(flooding)
			}
			if _, err := attacker.Write(chunk); err != nil {
				attackDone <- err
				return
			}
		}
		_, err := io.WriteString(attacker, "\nafter the flood\n")
		attackDone <- err
	}()
	<-flooding

	// The other connections send 100-line bursts until the flood is over.
	var wg sync.WaitGroup
	var mu sync.Mutex
	sent, duringFlood := 0, 0
	stop := make(chan struct{})
	for i := range others {
		wg.Go(func() {
			c, err := net.Dial("tcp", r.addr)
			if !assert.NoError(t, err) {
				return
			}
			defer c.Close()
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				var b bytes.Buffer
				for k := range 100 {
					fmt.Fprintf(&b, "conn %d burst %d line %d\n", i, j, k)
				}
				if _, err := c.Write(b.Bytes()); !assert.NoError(t, err) {
					return
				}
				mu.Lock()
				sent += 100
				mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	require.NoError(t, <-attackDone)
	duringFlood = len(r.em.Lines())
	close(stop)
	wg.Wait()
	require.True(t, r.em.WaitFor(sent+1, 60*time.Second), "lost records: sent %d, got %d", sent, len(r.em.Lines()))
	t.Logf("%d records from %d other connections, %d of them while 100 MiB were flooding in", sent, others, duringFlood)
	assert.Greater(t, duringFlood, 0, "other connections must flow during the flood")
	got := r.em.Lines()
	assert.Len(t, got, sent+1)
	assert.Contains(t, got, "after the flood", "the attacker's connection resyncs at the next newline")
	for _, l := range got {
		assert.Less(t, len(l), 100, "no part of the huge line may be emitted")
	}
	assert.Equal(t, 1, r.tel.Dropped("oversize"))
}

func TestOctetOversizeClosesTheConnection(t *testing.T) {
	r := start(t, func(cfg *tcp.Config) { cfg.Framing = "octet_counting"; cfg.MaxFrameBytes = 1 << 20 })
	c, err := net.Dial("tcp", r.addr)
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "2 ok2147483648 ")
	require.NoError(t, err)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = c.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF, "the declared length is refused at once and the connection closed")
	require.True(t, r.em.WaitFor(1, 10*time.Second))
	assert.Equal(t, []string{"ok"}, r.em.Lines())
	assert.Equal(t, 1, r.tel.Dropped("oversize"))
	assert.Equal(t, 1, r.tel.Errored("framing"))
}

// R21, scaled: the connection cap is enforced by accepting and closing, and
// the idle timeout evicts connections that send nothing, freeing slots.
func TestMaxConnectionsAndIdleTimeout(t *testing.T) {
	r := start(t, func(cfg *tcp.Config) {
		cfg.MaxConnections = 2
		cfg.IdleTimeout = config.Duration(500 * time.Millisecond)
	})
	var idle []net.Conn
	for range 2 {
		c, err := net.Dial("tcp", r.addr)
		require.NoError(t, err)
		idle = append(idle, c)
		defer c.Close()
	}
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", r.addr)
		if err != nil {
			return false
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
		return err == io.EOF && r.tel.Count("connections_refused_total") >= 1
	}, 10*time.Second, 20*time.Millisecond)

	// The idle connections are closed by the server...
	for _, c := range idle {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err := c.Read(make([]byte, 1))
		assert.ErrorIs(t, err, io.EOF)
	}
	// ...and a legitimate client gets through.
	require.Eventually(t, func() bool {
		before := len(r.em.Lines())
		send(t, r.addr, "legit\n")
		return r.em.WaitFor(before+1, time.Second)
	}, 10*time.Second, 50*time.Millisecond)
}

// Warnings a peer can repeat at will share one limiter per input: five
// connections sending over-long lines, or breaking the native protocol,
// log once, and every event is counted.
func TestWarningsRateLimitedAcrossConnections(t *testing.T) {
	for _, c := range []struct {
		framing, line string
		counted       func(*pipelinetest.Telemetry) int
	}{
		{"newline", "records over the size cap dropped", func(tel *pipelinetest.Telemetry) int { return tel.Dropped("oversize") }},
		{tcp.FramingNative, "native connection closed", func(tel *pipelinetest.Telemetry) int { return tel.Errored("protocol") }},
	} {
		framing := c.framing
		t.Run(framing, func(t *testing.T) {
			cfg := tcp.DefaultConfig()
			cfg.Address, cfg.Framing, cfg.MaxFrameBytes = "127.0.0.1:0", framing, 64
			set := pipelinetest.Settings(t, "inputs.tcp")
			logs := &pipelinetest.SyncBuffer{}
			set.Logger = slog.New(slog.NewTextHandler(logs, nil))
			in, err := tcp.New(set, cfg)
			require.NoError(t, err)
			addr := nettest.RunInput(t, in, &pipelinetest.Emitter{}, in.Addr)
			tel := set.Telemetry.(*pipelinetest.Telemetry)
			var wg sync.WaitGroup
			for range 5 {
				wg.Go(func() {
					c, err := net.Dial("tcp", addr)
					if !assert.NoError(t, err) {
						return
					}
					defer c.Close()
					_, _ = c.Write([]byte(strings.Repeat("x", 100) + "\n"))
					if framing == tcp.FramingNative {
						_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
						_, _ = io.Copy(io.Discard, c) // the server closes it
					}
				})
			}
			wg.Wait()
			// Each event is counted before its warning is logged, so wait
			// for both: the fifth count can land before the first line.
			require.Eventually(t, func() bool {
				return c.counted(tel) == 5 && strings.Contains(logs.String(), c.line)
			}, 10*time.Second, 10*time.Millisecond)
			assert.Equal(t, 1, strings.Count(logs.String(), c.line), logs.String())
		})
	}
}

// Idle connections holding every slot do not lock new clients out until
// the idle timeout: the longest-idle one makes room, counted and logged.
func TestIdleConnectionsMakeRoom(t *testing.T) {
	cfg := tcp.DefaultConfig()
	cfg.Address, cfg.MaxConnections = "127.0.0.1:0", 3
	set := pipelinetest.Settings(t, "inputs.tcp")
	logs := &pipelinetest.SyncBuffer{}
	set.Logger = slog.New(slog.NewTextHandler(logs, nil))
	in, err := tcp.New(set, cfg)
	require.NoError(t, err)
	em := &pipelinetest.Emitter{}
	addr := nettest.RunInput(t, in, em, in.Addr)
	tel := set.Telemetry.(*pipelinetest.Telemetry)

	var idle []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer c.Close()
		idle = append(idle, c)
	}
	// Idle for more than netio.DefaultMinIdle, far less than idle_timeout.
	time.Sleep(1200 * time.Millisecond)
	for i := range 2 {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer c.Close() // held open: the second newcomer finds no free slot
		_, err = fmt.Fprintf(c, "newcomer %d\n", i)
		require.NoError(t, err)
		require.True(t, em.WaitFor(i+1, 10*time.Second), "a new client gets through: %q", em.Lines())
	}
	assert.Equal(t, 2.0, tel.Count("connections_evicted_total"))
	assert.Zero(t, tel.Count("connections_refused_total"))
	assert.Equal(t, 1, strings.Count(logs.String(), "evicted the longest-idle connection"), "logged once a minute")
	closed := 0
	for _, c := range idle {
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, err := c.Read(make([]byte, 1)); err == io.EOF {
			closed++
		}
	}
	assert.Equal(t, 2, closed, "two idle connections made room")
}

func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "tern CA")
	other := testpki.NewCA(t, "other CA")
	srvCert, srvKey := ca.Issue(t, testpki.Opts{}).Write(t, dir, "server")
	r := start(t, func(cfg *tcp.Config) {
		cfg.TLS.CertFile, cfg.TLS.KeyFile = srvCert, srvKey
		cfg.TLS.CAFile = ca.WriteCA(t, dir, "ca")
		cfg.TLS.HandshakeTimeout = config.Duration(time.Second)
	})
	client := func(leaf *testpki.Leaf) *tls.Config {
		c := &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost"}
		if leaf != nil {
			c.Certificates = []tls.Certificate{leaf.TLSCert(t)}
		}
		return c
	}
	valid := ca.Issue(t, testpki.Opts{CN: "client", Client: true})
	wrongCA := other.Issue(t, testpki.Opts{CN: "client", Client: true})
	expired := ca.Issue(t, testpki.Expired(testpki.Opts{CN: "client", Client: true}))
	cases := []struct {
		name string
		cfg  *tls.Config
		ok   bool
	}{
		{"no client cert", client(nil), false},
		{"wrong CA", client(&wrongCA), false},
		{"expired", client(&expired), false},
		{"valid", client(&valid), true},
	}
	failures := 0
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(r.em.Lines())
			conn, err := tls.Dial("tcp", r.addr, c.cfg)
			if err == nil {
				_, err = io.WriteString(conn, c.name+"\n")
				if err == nil {
					// TLS 1.3 reports a refused client certificate on read.
					_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
					_, rerr := conn.Read(make([]byte, 1))
					if !netTimeout(rerr) && rerr != io.EOF {
						err = rerr
					}
				}
				conn.Close()
			}
			if c.ok {
				require.NoError(t, err)
				require.True(t, r.em.WaitFor(before+1, 10*time.Second))
				assert.Equal(t, "valid", r.em.Lines()[before])
				return
			}
			failures++
			assert.Error(t, err)
			time.Sleep(100 * time.Millisecond)
			assert.Len(t, r.em.Lines(), before, "nothing may be accepted from %s", c.name)
			require.Eventually(t, func() bool { return r.tel.Errored("tls_handshake") == failures }, 10*time.Second, 10*time.Millisecond)
		})
	}

	// A peer that never sends a ClientHello is cut off at the handshake timeout.
	silent, err := net.Dial("tcp", r.addr)
	require.NoError(t, err)
	defer silent.Close()
	_ = silent.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err = silent.Read(make([]byte, 1))
	assert.ErrorIs(t, err, io.EOF)
}

// framing = "native": batches of tern's router protocol, over TLS here,
// acknowledged once the engine settled them (with StatusRetry when it
// gave up, so the sender sends them again).
func TestNativeFraming(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "tern CA")
	srvCert, srvKey := ca.Issue(t, testpki.Opts{}).Write(t, dir, "server")
	r := start(t, func(cfg *tcp.Config) {
		cfg.Framing = tcp.FramingNative
		cfg.TLS.CertFile, cfg.TLS.KeyFile = srvCert, srvKey
	})
	r.em.Ack = func(recs []pipeline.Record, ack pipeline.AckFunc) {
		if bytes.Contains(recs[0].Data, []byte("fail")) {
			ack(pipeline.ErrStopped)
			return
		}
		ack(nil)
	}
	c, err := ternproto.Dial(context.Background(), r.addr, ternproto.DialOptions{TLS: &tls.Config{RootCAs: ca.Pool()}})
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, int(tcp.DefaultConfig().MaxFrameBytes), c.MaxBatch())
	var w ternproto.BatchWriter
	for seq, payload := range []string{"one", "fail"} {
		m := pipeline.NewMessage()
		m.Payload = payload
		w.Begin(nil, uint64(seq))
		w.Add(m)
		require.NoError(t, c.Write(w.Finish()))
	}
	require.NoError(t, c.Flush())
	acks := map[uint64]int{}
	for range 2 {
		a, err := c.ReadAck()
		require.NoError(t, err)
		acks[a.Seq] = a.Status
	}
	assert.Equal(t, map[uint64]int{0: ternproto.StatusOK, 1: ternproto.StatusRetry}, acks)
	m := pipeline.NewMessage()
	require.NoError(t, codec.DecodeMsgpackBytes([]byte(r.em.Lines()[0]), m, nil))
	assert.Equal(t, "one", m.Payload)
	assert.True(t, strings.HasPrefix(r.em.Records[0].Source, "tern://127.0.0.1:"))
}

func netTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func TestValidate(t *testing.T) {
	cfg := tcp.DefaultConfig()
	cfg.Framing = "lf"
	cfg.MaxFrameBytes = 0
	cfg.TLS.CAFile = "ca.crt"
	err := cfg.Validate()
	require.Error(t, err)
	for _, want := range []string{"address: required", "framing: must be one of auto, newline, non_transparent, octet_counting, not \"lf\" or native", "max_frame_bytes:", "tls.cert_file:"} {
		assert.Contains(t, err.Error(), want)
	}
}

// TestGolden sends testdata/<case>/send.txt on one connection to an input
// configured by config.toml; expected.txt lists the records.
func TestGolden(t *testing.T) {
	for _, c := range pipelinetest.Cases(t, "") {
		t.Run(c.Name, func(t *testing.T) {
			cfg := pipelinetest.ConfigFor(t, tcp.Factory(), c).(*tcp.Config)
			r := start(t, func(x *tcp.Config) { *x = *cfg; x.Address = "127.0.0.1:0" })
			data, err := os.ReadFile(filepath.Join(c.Dir, "send.txt"))
			require.NoError(t, err)
			send(t, r.addr, string(data))
			nettest.Quiet(func() int { return len(r.em.Lines()) }, 300*time.Millisecond, 10*time.Second)
			pipelinetest.Golden(t, filepath.Join(c.Dir, "expected.txt"), nettest.FormatRecords(r.em.Records))
		})
	}
}

// countEmitter counts records; it stands for an engine that keeps up.
type countEmitter struct {
	mu sync.Mutex
	n  int
	ch chan struct{}
	at int
}

func (c *countEmitter) Emit(_ context.Context, recs []pipeline.Record, ack pipeline.AckFunc) error {
	c.mu.Lock()
	c.n += len(recs)
	if c.ch != nil && c.n >= c.at {
		close(c.ch)
		c.ch = nil
	}
	c.mu.Unlock()
	if ack != nil {
		ack(nil)
	}
	return nil
}

func (c *countEmitter) waitFor(n int) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan struct{})
	if c.n >= n {
		close(ch)
		return ch
	}
	c.ch, c.at = ch, n
	return ch
}

// BenchmarkOneConnection measures the input alone on one loopback
// connection: framing and batching of 150-byte syslog lines, per record.
func BenchmarkOneConnection(b *testing.B) {
	for _, framing := range []string{"newline", "octet_counting"} {
		b.Run(framing, func(b *testing.B) {
			msg := `<165>1 2026-11-22T10:00:00.000Z host.example.com app 4242 ID47 [ex@32473 k="v"] a typical syslog message of about 150 bytes, give or take`
			var chunk []byte
			const perChunk = 1000
			for range perChunk {
				if framing == "newline" {
					chunk = append(append(chunk, msg...), '\n')
				} else {
					chunk = fmt.Appendf(chunk, "%d %s", len(msg), msg)
				}
			}
			cfg := tcp.DefaultConfig()
			cfg.Address, cfg.Framing = "127.0.0.1:0", framing
			set := pipelinetest.Settings(b, "inputs.tcp")
			set.Logger = slog.New(slog.DiscardHandler)
			in, _ := tcp.New(set, cfg)
			em := &countEmitter{}
			addr := nettest.RunInput(b, in, em, in.Addr)
			c, err := net.Dial("tcp", addr)
			require.NoError(b, err)
			defer c.Close()
			b.SetBytes(int64(len(chunk)))
			b.ReportAllocs()
			sent := 0
			t0 := time.Now()
			for b.Loop() {
				if _, err := c.Write(chunk); err != nil {
					b.Fatal(err)
				}
				sent += perChunk
			}
			<-em.waitFor(sent) // until the input has handed on every record
			b.ReportMetric(float64(sent)/time.Since(t0).Seconds(), "records/s")
		})
	}
}
