package syslog_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ternlog/tern/internal/testutil/nettest"
	"github.com/ternlog/tern/internal/testutil/testpki"
	"github.com/ternlog/tern/outputs/syslog"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/framing"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newOutput(t *testing.T, mod func(*syslog.Config)) (*syslog.Output, *pipelinetest.Telemetry) {
	t.Helper()
	o, tel := pipelinetest.Build(t, "outputs.syslog", syslog.DefaultConfig, mod, syslog.New)
	t.Cleanup(func() { assert.NoError(t, o.Close(context.Background())) })
	return o, tel
}

func batch(recs ...string) []pipeline.Encoded {
	out := make([]pipeline.Encoded, len(recs))
	for i, r := range recs {
		out[i] = pipeline.Encoded{Msg: pipeline.NewMessage(), Data: []byte(r)}
	}
	return out
}

func rfc5424(app string, i int, msg string) string {
	return fmt.Sprintf("<165>1 2026-11-22T10:00:00.000Z tern-host %s %d ID%d - %s", app, 1000+i, i, msg)
}

// The output against a real rsyslogd: octet-counted and newline-framed TCP
// and UDP; every message arrives once, whole, with its header fields.
func TestIntoRsyslog(t *testing.T) {
	dir := t.TempDir()
	udpPort := nettest.FreeUDPPort(t)
	rs := nettest.StartRsyslog(t, dir, nettest.ReceiverConf(dir, udpPort), true)

	cases := []struct {
		name    string
		network string
		framing string
		port    int
	}{
		{"tcp-octet", "tcp", syslog.FramingOctet, rs.TCPPort},
		{"tcp-newline", "tcp", syslog.FramingNewline, rs.TCPPort},
		{"udp", "udp", syslog.FramingOctet, udpPort},
	}
	const per = 50
	sent := 0
	for _, c := range cases {
		o, _ := newOutput(t, func(cfg *syslog.Config) {
			cfg.Address = fmt.Sprintf("127.0.0.1:%d", c.port)
			cfg.Network, cfg.Framing = c.network, c.framing
		})
		var recs []string
		for i := range per {
			msg := fmt.Sprintf("message %d", i)
			if i == 7 {
				msg = "two\nlines and a \x00 NUL" // must stay one message
			}
			recs = append(recs, rfc5424(c.name, i, msg))
		}
		// Two batches, so a second Write reuses the connection.
		require.NoError(t, o.Write(context.Background(), batch(recs[:per/2]...)))
		require.NoError(t, o.Write(context.Background(), batch(recs[per/2:]...)))
		sent += per
	}
	msgs := rs.Messages(t, sent, 30*time.Second)
	require.Len(t, msgs, sent, "every message exactly once, none split")
	byApp := map[string]int{}
	for _, m := range msgs {
		app := m["app-name"].(string)
		byApp[app]++
		assert.Equal(t, "tern-host", m["hostname"])
		assert.Equal(t, "5", m["syslogseverity"])
		assert.Equal(t, "20", m["syslogfacility"])
		if m["msgid"] == "ID7" {
			assert.Contains(t, m["msg"], "two")
			assert.Contains(t, m["msg"], "lines and a")
		} else {
			assert.Regexp(t, `^message \d+$`, m["msg"])
		}
	}
	for _, c := range cases {
		assert.Equal(t, per, byApp[c.name], c.name)
	}
}

// server is a TCP receiver for tests that reads octet-counted frames.
type server struct {
	ln     net.Listener
	mu     sync.Mutex
	frames []string
	conns  int
	wg     sync.WaitGroup
	// closeAfter closes each connection after this many frames (0: never).
	closeAfter int
}

func newServer(t *testing.T, cfg *tls.Config) *server {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	if cfg != nil {
		ln = tls.NewListener(ln, cfg)
	}
	s := &server{ln: ln}
	s.wg.Go(s.accept)
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *server) accept() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns++
		s.mu.Unlock()
		s.wg.Go(func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			r := framing.NewSyslogReader(c, 1<<20, framing.FramingOctetCounting)
			n := 0
			for {
				f, err := r.Next()
				if err != nil {
					return
				}
				s.mu.Lock()
				s.frames = append(s.frames, string(f))
				s.mu.Unlock()
				n++
				if s.closeAfter > 0 && n == s.closeAfter {
					return
				}
			}
		})
	}
}

func (s *server) got() ([]string, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.frames...), s.conns
}

func (s *server) addr() string { return s.ln.Addr().String() }

// A receiver that closes the connection: the next batch goes to a new one.
func TestReconnects(t *testing.T) {
	srv := newServer(t, nil)
	srv.closeAfter = 2
	o, _ := newOutput(t, func(c *syslog.Config) { c.Address = srv.addr() })
	require.NoError(t, o.Write(context.Background(), batch("a", "b")))
	require.Eventually(t, func() bool { f, _ := srv.got(); return len(f) == 2 }, 10*time.Second, 10*time.Millisecond)
	time.Sleep(100 * time.Millisecond) // the close reaches the output's watcher
	require.NoError(t, o.Write(context.Background(), batch("c", "d")))
	require.Eventually(t, func() bool { f, _ := srv.got(); return len(f) == 4 }, 10*time.Second, 10*time.Millisecond)
	frames, conns := srv.got()
	assert.Equal(t, []string{"a", "b", "c", "d"}, frames)
	assert.Equal(t, 2, conns)
}

func TestReceiverDownThenUp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	o, tel := newOutput(t, func(c *syslog.Config) { c.Address = addr; c.DialTimeout = config.Duration(time.Second) })
	err = o.Write(context.Background(), batch("x"))
	require.Error(t, err, "the engine retries this")
	assert.False(t, pipeline.IsPermanent(err))
	assert.Equal(t, 1, tel.Errored("connect"))

	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skip("port taken meanwhile:", err)
	}
	defer ln2.Close()
	done := make(chan string, 1)
	go func() {
		c, err := ln2.Accept()
		if err != nil {
			done <- ""
			return
		}
		defer c.Close()
		line, _ := bufio.NewReader(c).ReadString('x')
		done <- line
	}()
	require.NoError(t, o.Write(context.Background(), batch("x")))
	assert.Equal(t, "1 x", <-done)
}

// A receiver that accepts and never reads (blackholed): Write fails after
// write_timeout instead of hanging, so the engine's retry keeps control.
func TestBlackholedReceiverTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	held := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			held <- c
		}
	}()
	o, _ := newOutput(t, func(c *syslog.Config) {
		c.Address = ln.Addr().String()
		c.WriteTimeout = config.Duration(300 * time.Millisecond)
	})
	big := strings.Repeat("z", 1<<20)
	var werr error
	t0 := time.Now()
	for i := 0; i < 200 && werr == nil; i++ {
		werr = o.Write(context.Background(), batch(big))
	}
	require.Error(t, werr)
	assert.True(t, errors.Is(werr, context.DeadlineExceeded) || strings.Contains(werr.Error(), "timeout"), "%v", werr)
	assert.Less(t, time.Since(t0), 30*time.Second)
	(<-held).Close()

	// Cancelling the write's context (engine shutdown) interrupts it too.
	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln2.Close()
	go func() {
		c, err := ln2.Accept()
		if err == nil {
			held <- c
		}
	}()
	o2, _ := newOutput(t, func(c *syslog.Config) { c.Address = ln2.Addr().String(); c.WriteTimeout = config.Duration(time.Hour) })
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	werr = nil
	for i := 0; i < 200 && werr == nil; i++ {
		werr = o2.Write(ctx, batch(big))
	}
	require.Error(t, werr)
	(<-held).Close()
}

func TestNewlineFramingEscapes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(io.LimitReader(c, 18))
		got <- string(b)
	}()
	o, _ := newOutput(t, func(c *syslog.Config) { c.Address = ln.Addr().String(); c.Framing = syslog.FramingNewline })
	require.NoError(t, o.Write(context.Background(), batch("a\nb\x00c", "\xff raw")))
	assert.Equal(t, "a#012b#000c\n\xff raw\n", <-got)
}

func TestUDPRefusesOversizeForGood(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	defer pc.Close()
	o, _ := newOutput(t, func(c *syslog.Config) {
		c.Address = pc.LocalAddr().String()
		c.Network = "udp"
		c.MaxDatagramBytes = 10
	})
	err = o.Write(context.Background(), batch("ok", strings.Repeat("x", 11), "ok2"))
	var pe *pipeline.PartialError
	require.ErrorAs(t, err, &pe)
	assert.NoError(t, pe.Errs[0])
	assert.True(t, pipeline.IsPermanent(pe.Errs[1]))
	assert.NoError(t, pe.Errs[2])
	buf := make([]byte, 100)
	_ = pc.SetReadDeadline(time.Now().Add(5 * time.Second))
	for _, want := range []string{"ok", "ok2"} {
		n, _, err := pc.ReadFrom(buf)
		require.NoError(t, err)
		assert.Equal(t, want, string(buf[:n]))
	}
}

// TLS with hostname verification on by default, and mutual TLS (R34 subset
// for a client).
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "receiver CA")
	other := testpki.NewCA(t, "other CA")
	caFile := ca.WriteCA(t, dir, "ca")
	serve := func(leaf testpki.Leaf, clientCA *testpki.CA) *server {
		cfg := &tls.Config{Certificates: []tls.Certificate{leaf.TLSCert(t)}}
		if clientCA != nil {
			cfg.ClientCAs = clientCA.Pool()
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		}
		return newServer(t, cfg)
	}
	write := func(addr string, mod func(*config.TLS)) error {
		o, _ := newOutput(t, func(c *syslog.Config) {
			c.Address = addr
			c.TLS.CAFile = caFile
			c.TLS.HandshakeTimeout = config.Duration(5 * time.Second)
			if mod != nil {
				mod(&c.TLS)
			}
		})
		return o.Write(context.Background(), batch("secret"))
	}

	good := serve(ca.Issue(t, testpki.Opts{}), nil)
	require.NoError(t, write(good.addr(), nil))
	require.Eventually(t, func() bool { f, _ := good.got(); return len(f) == 1 }, 10*time.Second, 10*time.Millisecond)

	wrongName := serve(ca.Issue(t, testpki.Opts{DNS: []string{"other.example"}, IPs: []net.IP{net.IPv4(192, 0, 2, 1)}}), nil)
	err := write(wrongName.addr(), nil)
	assert.ErrorContains(t, err, "127.0.0.1", "the certificate must name the host dialled")
	assert.NoError(t, write(wrongName.addr(), func(c *config.TLS) { c.ServerName = "other.example" }))

	untrusted := serve(other.Issue(t, testpki.Opts{}), nil)
	assert.ErrorContains(t, write(untrusted.addr(), nil), "unknown authority")

	expired := serve(ca.Issue(t, testpki.Expired(testpki.Opts{})), nil)
	assert.ErrorContains(t, write(expired.addr(), nil), "expired")

	mutual := serve(ca.Issue(t, testpki.Opts{}), ca)
	assert.Error(t, write(mutual.addr(), nil), "no client certificate")
	cert, key := ca.Issue(t, testpki.Opts{CN: "tern", Client: true}).Write(t, dir, "client")
	require.NoError(t, write(mutual.addr(), func(c *config.TLS) { c.CertFile, c.KeyFile = cert, key }))
	require.Eventually(t, func() bool { f, _ := mutual.got(); return len(f) == 1 }, 10*time.Second, 10*time.Millisecond)
	for _, s := range []*server{untrusted, expired} {
		f, _ := s.got()
		assert.Empty(t, f, "nothing may reach an unverified server")
	}
}

func TestValidate(t *testing.T) {
	cfg := syslog.DefaultConfig()
	cfg.Network = "udp"
	cfg.TLS.Enabled = true
	cfg.Framing = "lf"
	err := cfg.Validate()
	require.Error(t, err)
	for _, want := range []string{"address: required", "tls: only with network", "framing: must be"} {
		assert.Contains(t, err.Error(), want)
	}
}

// TestGolden writes the Go-quoted records of testdata/<case>/records.txt
// in one batch to a TCP listener; expected.txt holds the bytes on the wire,
// Go-quoted.
func TestGolden(t *testing.T) {
	for _, c := range pipelinetest.Cases(t, "") {
		t.Run(c.Name, func(t *testing.T) {
			cfg := pipelinetest.ConfigFor(t, syslog.Factory(), c).(*syslog.Config)
			raw, err := os.ReadFile(filepath.Join(c.Dir, "records.txt"))
			require.NoError(t, err)
			var recs []string
			for _, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
				s, err := strconv.Unquote(l)
				require.NoError(t, err, l)
				recs = append(recs, s)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			defer ln.Close()
			got := make(chan []byte, 1)
			go func() {
				conn, err := ln.Accept()
				if err != nil {
					got <- nil
					return
				}
				b, _ := io.ReadAll(conn)
				conn.Close()
				got <- b
			}()
			o, _ := newOutput(t, func(x *syslog.Config) { *x = *cfg; x.Address = ln.Addr().String() })
			require.NoError(t, o.Write(context.Background(), batch(recs...)))
			require.NoError(t, o.Close(context.Background()))
			pipelinetest.Golden(t, filepath.Join(c.Dir, "expected.txt"), []byte(strconv.Quote(string(<-got))+"\n"))
		})
	}
}
