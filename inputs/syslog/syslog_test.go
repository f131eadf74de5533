package syslog_test

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ternlog/tern/inputs/syslog"
	"github.com/ternlog/tern/internal/testutil/nettest"
	"github.com/ternlog/tern/internal/testutil/testpki"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type rig struct {
	in  *syslog.Input
	em  *pipelinetest.Emitter
	tel *pipelinetest.Telemetry
}

func start(t *testing.T, mod func(*syslog.Config)) rig {
	t.Helper()
	cfg := syslog.DefaultConfig()
	cfg.UDPAddress = "127.0.0.1:0"
	cfg.TCPAddress = "127.0.0.1:0"
	if mod != nil {
		mod(&cfg)
	}
	require.NoError(t, cfg.Validate())
	set := pipelinetest.Settings(t, "inputs.syslog")
	in, err := syslog.New(set, cfg)
	require.NoError(t, err)
	em := &pipelinetest.Emitter{}
	wait := func() net.Addr {
		for _, a := range []struct {
			want bool
			got  net.Addr
		}{{cfg.UDPAddress != "", in.UDPAddr()}, {cfg.TCPAddress != "", in.TCPAddr()}, {cfg.TLSAddress != "", in.TLSAddr()}} {
			if a.want && a.got == nil {
				return nil
			}
		}
		return &net.TCPAddr{}
	}
	nettest.RunInput(t, in, em, wait)
	return rig{in: in, em: em, tel: set.Telemetry.(*pipelinetest.Telemetry)}
}

func field(r pipeline.Record, name string) string {
	for _, f := range r.Fields {
		if f.Name == name {
			return f.Value(0).Str()
		}
	}
	return ""
}

func TestUDPAndTCP(t *testing.T) {
	r := start(t, nil)
	u, err := net.Dial("udp", r.in.UDPAddr().String())
	require.NoError(t, err)
	defer u.Close()
	_, err = u.Write([]byte("<13>1 2026-01-02T03:04:05Z h app - - - via udp \xff"))
	require.NoError(t, err)
	require.True(t, r.em.WaitFor(1, 10*time.Second))

	octet := "<14>1 - h app - - - octet\ncounted"
	for _, payload := range []string{fmt.Sprintf("%d %s", len(octet), octet), "<15>lf framed 3164\n<15>second\n"} {
		c, err := net.Dial("tcp", r.in.TCPAddr().String())
		require.NoError(t, err)
		_, err = io.WriteString(c, payload)
		require.NoError(t, err)
		c.Close()
	}
	require.True(t, r.em.WaitFor(4, 10*time.Second), "got %q", r.em.Lines())
	lines := r.em.Lines()
	assert.Equal(t, "<13>1 2026-01-02T03:04:05Z h app - - - via udp \xff", lines[0])
	assert.ElementsMatch(t, []string{octet, "<15>lf framed 3164", "<15>second"}, lines[1:])
	for _, rec := range r.em.Records {
		assert.Equal(t, "127.0.0.1", field(rec, "remote_addr"), "the sender's address is a field")
	}
	assert.True(t, strings.HasPrefix(r.em.Records[0].Source, "udp://127.0.0.1:"))
	assert.True(t, strings.HasPrefix(r.em.Records[1].Source, "tcp://127.0.0.1:"))
}

func TestRemoteAddrFieldOff(t *testing.T) {
	r := start(t, func(c *syslog.Config) { c.RemoteAddrField = "" })
	c, err := net.Dial("tcp", r.in.TCPAddr().String())
	require.NoError(t, err)
	_, _ = io.WriteString(c, "<13>x\n")
	c.Close()
	require.True(t, r.em.WaitFor(1, 10*time.Second))
	assert.Empty(t, r.em.Records[0].Fields)
}

// RFC 5425 with mutual TLS: only senders with a certificate from the
// configured CA get in (R34 subset).
func TestTLSListener(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "syslog CA")
	other := testpki.NewCA(t, "other CA")
	r := start(t, func(c *syslog.Config) {
		c.UDPAddress, c.TCPAddress, c.TLSAddress = "", "", "127.0.0.1:0"
		c.TLS.CertFile, c.TLS.KeyFile = ca.Issue(t, testpki.Opts{}).Write(t, dir, "server")
		c.TLS.CAFile = ca.WriteCA(t, dir, "ca")
		c.TLS.HandshakeTimeout = config.Duration(2 * time.Second)
	})
	addr := r.in.TLSAddr().String()
	leaf := func(ca *testpki.CA, o testpki.Opts) []tls.Certificate {
		return []tls.Certificate{ca.Issue(t, o).TLSCert(t)}
	}
	cases := []struct {
		name  string
		certs []tls.Certificate
		ok    bool
	}{
		{"no client cert", nil, false},
		{"wrong CA", leaf(other, testpki.Opts{CN: "s", Client: true}), false},
		{"expired", leaf(ca, testpki.Expired(testpki.Opts{CN: "s", Client: true})), false},
		{"valid", leaf(ca, testpki.Opts{CN: "s", Client: true}), true},
	}
	for i, c := range cases {
		msg := "<13>1 - h app - - - " + c.name
		c0, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool(), ServerName: "localhost", Certificates: c.certs})
		if err == nil {
			_, err = fmt.Fprintf(c0, "%d %s", len(msg), msg)
			if err == nil {
				_ = c0.SetReadDeadline(time.Now().Add(time.Second))
				if _, rerr := c0.Read(make([]byte, 1)); rerr != nil && !isTimeout(rerr) && rerr != io.EOF {
					err = rerr
				}
			}
			c0.Close()
		}
		if c.ok {
			require.NoError(t, err, c.name)
			require.True(t, r.em.WaitFor(1, 10*time.Second))
			assert.Equal(t, []string{msg}, r.em.Lines())
		} else {
			assert.Error(t, err, c.name)
			require.Eventually(t, func() bool { return r.tel.Errored("tls_handshake") == i+1 }, 10*time.Second, 10*time.Millisecond, c.name)
		}
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// rsyslog as a sender: messages given to a real rsyslogd are forwarded
// with omfwd, octet-counted over TCP and as datagrams over UDP, into the
// syslog input.
func TestRsyslogSendsIntoTheInput(t *testing.T) {
	r := start(t, nil)
	dir := t.TempDir()
	tcpPort := r.in.TCPAddr().(*net.TCPAddr).Port
	udpPort := r.in.UDPAddr().(*net.UDPAddr).Port
	conf := fmt.Sprintf(`module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="0" listenPortFileName="%s")
*.* action(type="omfwd" target="127.0.0.1" port="%d" protocol="tcp" template="RSYSLOG_SyslogProtocol23Format" TCP_Framing="octet-counted")
*.* action(type="omfwd" target="127.0.0.1" port="%d" protocol="udp" template="RSYSLOG_SyslogProtocol23Format")
`, filepath.Join(dir, "tcp.port"), tcpPort, udpPort)
	rs := nettest.StartRsyslog(t, dir, conf, true)

	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", rs.TCPPort))
	require.NoError(t, err)
	const n = 20
	for i := range n {
		_, err := fmt.Fprintf(c, "<13>1 2026-01-02T03:04:05.123Z myhost fwdtest 42 ID%d - forward me %d\n", i, i)
		require.NoError(t, err)
	}
	c.Close()
	require.True(t, r.em.WaitFor(2*n, 30*time.Second), "got %d records: %q", len(r.em.Lines()), r.em.Lines())
	var viaTCP, viaUDP int
	for _, rec := range r.em.Records {
		s := string(rec.Data)
		assert.True(t, strings.HasPrefix(s, "<13>1 "), "an RFC 5424 message: %q", s)
		assert.Contains(t, s, "fwdtest")
		assert.Contains(t, s, "forward me")
		// RSYSLOG_SyslogProtocol23Format ends with LF, which octet counting
		// carries as part of the frame: the decoder drops it, not the input.
		assert.NotContains(t, strings.TrimSuffix(s, "\n"), "\n", "one message per frame")
		switch {
		case strings.HasPrefix(rec.Source, "tcp://"):
			viaTCP++
		case strings.HasPrefix(rec.Source, "udp://"):
			viaUDP++
		}
	}
	assert.Equal(t, n, viaTCP)
	assert.Equal(t, n, viaUDP)
	assert.Zero(t, r.tel.Errored("framing"))
}

func TestValidate(t *testing.T) {
	cfg := syslog.DefaultConfig()
	err := cfg.Validate()
	assert.ErrorContains(t, err, "udp_address: set at least one")
	cfg.TLSAddress = "127.0.0.1:6514"
	cfg.Framing = "nul"
	err = cfg.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "tls_address: needs the tls table")
	assert.Contains(t, err.Error(), "framing: must be one of")
}

// TestGolden sends testdata/<case>/send.txt on one TCP connection to an
// input configured by config.toml; expected.txt lists the records.
func TestGolden(t *testing.T) {
	for _, c := range pipelinetest.Cases(t, "") {
		t.Run(c.Name, func(t *testing.T) {
			cfg := pipelinetest.ConfigFor(t, syslog.Factory(), c).(*syslog.Config)
			r := start(t, func(x *syslog.Config) { *x = *cfg; x.UDPAddress, x.TCPAddress = "", "127.0.0.1:0" })
			data, err := os.ReadFile(filepath.Join(c.Dir, "send.txt"))
			require.NoError(t, err)
			conn, err := net.Dial("tcp", r.in.TCPAddr().String())
			require.NoError(t, err)
			_, err = conn.Write(data)
			require.NoError(t, err)
			conn.Close()
			nettest.Quiet(func() int { return len(r.em.Lines()) }, 300*time.Millisecond, 10*time.Second)
			pipelinetest.Golden(t, filepath.Join(c.Dir, "expected.txt"), nettest.FormatRecords(r.em.Records))
		})
	}
}

// A NUL inside a message is data with the default framing: it does not end
// the record, so a sender (or text it relays) cannot forge a second message
// with a host and severity of its choice.
func TestNULDoesNotSplitByDefault(t *testing.T) {
	r := start(t, func(c *syslog.Config) { c.UDPAddress = "" })
	const msg = "<13>1 2026-01-02T03:04:05Z web app - - - user said: hi\x00<8>1 2026-01-02T03:04:05Z dc01 kernel - - - forged\n"
	c, err := net.Dial("tcp", r.in.TCPAddr().String())
	require.NoError(t, err)
	_, err = io.WriteString(c, msg+"<13>1 - web app - - - next\n")
	require.NoError(t, err)
	c.Close()
	require.True(t, r.em.WaitFor(2, 10*time.Second), "got %q", r.em.Lines())
	nettest.Quiet(func() int { return len(r.em.Lines()) }, 200*time.Millisecond, 10*time.Second)
	assert.Equal(t, []string{strings.TrimSuffix(msg, "\n"), "<13>1 - web app - - - next"}, r.em.Lines())
}

// Senders that end messages with NUL still work when the operator says so.
func TestNULTrailerWhenConfigured(t *testing.T) {
	for _, framing := range []string{"auto", "non_transparent"} {
		t.Run(framing, func(t *testing.T) {
			r := start(t, func(c *syslog.Config) { c.UDPAddress, c.Framing, c.NULTrailer = "", framing, true })
			c, err := net.Dial("tcp", r.in.TCPAddr().String())
			require.NoError(t, err)
			_, err = io.WriteString(c, "<13>one\x00<14>two\n<15>three\x00")
			require.NoError(t, err)
			c.Close()
			require.True(t, r.em.WaitFor(3, 10*time.Second), "got %q", r.em.Lines())
			assert.Equal(t, []string{"<13>one", "<14>two", "<15>three"}, r.em.Lines())
		})
	}
	cfg := syslog.DefaultConfig()
	cfg.TCPAddress, cfg.Framing, cfg.NULTrailer = "127.0.0.1:0", "octet_counting", true
	assert.ErrorContains(t, cfg.Validate(), "nul_trailer: only with framing auto or non_transparent")
}
