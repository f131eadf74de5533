package interop_test

import (
	"bufio"
	"context"
	"fmt"
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

	"github.com/ternlog/tern/decoders"
	"github.com/ternlog/tern/encoders"
	"github.com/ternlog/tern/filters"
	"github.com/ternlog/tern/inputs"
	"github.com/ternlog/tern/internal/testutil/nettest"
	"github.com/ternlog/tern/internal/testutil/testpki"
	"github.com/ternlog/tern/outputs"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/engine"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func freeTCPPort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Syslog from rsyslog flows through tern into a file and back out to
// another rsyslog: rsyslog A (omfwd, octet-counted TCP) -> tern's syslog
// input -> file output and syslog output -> rsyslog B (imtcp).
func TestRsyslogThroughTernToRsyslog(t *testing.T) {
	// payload keeps the bytes as they came; syslog parses each message and
	// writes it anew, header fields and all.
	for _, codec := range []string{"payload", "syslog"} {
		t.Run(codec, func(t *testing.T) { rsyslogThroughTern(t, codec, nil) })
	}
}

// The same path over RFC 5425 with mutual TLS on both hops, against
// rsyslog's GnuTLS driver: tern's input requires rsyslog A's client
// certificate, tern's output presents its own to rsyslog B and verifies
// B's certificate for 127.0.0.1.
func TestRsyslogThroughTernOverMutualTLS(t *testing.T) {
	if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so"); err != nil {
		if _, err2 := os.Stat("/usr/lib/rsyslog/lmnsd_gtls.so"); err2 != nil {
			t.Skip("rsyslog's TLS driver is not installed (apt-get install rsyslog-gnutls)")
		}
	}
	pki := t.TempDir()
	ca := testpki.NewCA(t, "tern interop CA")
	caFile := ca.WriteCA(t, pki, "ca")
	certs := func(name string, o testpki.Opts) [2]string {
		c, k := ca.Issue(t, o).Write(t, pki, name)
		return [2]string{c, k}
	}
	rsA := certs("rsyslog-a", testpki.Opts{CN: "rsyslog-a", Client: true})
	rsB := certs("rsyslog-b", testpki.Opts{})
	ternIn := certs("tern-in", testpki.Opts{})
	ternOut := certs("tern-out", testpki.Opts{CN: "tern-out", Client: true})
	rsyslogThroughTern(t, "syslog", &interopTLS{caFile: caFile, rsyslogA: rsA, rsyslogB: rsB, ternIn: ternIn, ternOut: ternOut})
}

// interopTLS holds the PEM files (cert, key) of each TLS peer.
type interopTLS struct {
	caFile                              string
	rsyslogA, rsyslogB, ternIn, ternOut [2]string
}

func gtlsGlobal(caFile string, certKey [2]string) string {
	return fmt.Sprintf("global(DefaultNetstreamDriverCAFile=%q DefaultNetstreamDriverCertFile=%q DefaultNetstreamDriverKeyFile=%q)\n",
		caFile, certKey[0], certKey[1])
}

func rsyslogThroughTern(t *testing.T, codec string, withTLS *interopTLS) {
	dirB := t.TempDir()
	confB := nettest.ReceiverConf(dirB, 0)
	if withTLS != nil {
		// imtcp on the GnuTLS driver, client certificates required and
		// checked against the CA.
		confB = gtlsGlobal(withTLS.caFile, withTLS.rsyslogB) + strings.Replace(confB, `module(load="imtcp")`,
			`module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="x509/certvalid")`, 1)
	}
	b := nettest.StartRsyslog(t, dirB, confB, true)

	work := t.TempDir()
	ternPort := freeTCPPort(t)
	listen := fmt.Sprintf("tcp_address = \"127.0.0.1:%d\"", ternPort)
	var outTLS string
	if withTLS != nil {
		listen = fmt.Sprintf("tls_address = \"127.0.0.1:%d\"\n[inputs.edge.tls]\ncert_file = %q\nkey_file = %q\nca_file = %q",
			ternPort, withTLS.ternIn[0], withTLS.ternIn[1], withTLS.caFile)
		outTLS = fmt.Sprintf("[outputs.forward.tls]\ncert_file = %q\nkey_file = %q\nca_file = %q", withTLS.ternOut[0], withTLS.ternOut[1], withTLS.caFile)
	}
	cfg := fmt.Sprintf(`
[tern]
data_dir = %[1]q
metrics_address = ""
shutdown_timeout = "10s"

[inputs.edge]
type = "syslog"
decoder = %[5]q
%[2]s

[outputs.archive]
type = "file"
message_matcher = "TRUE"
encoder = %[5]q
path = %[3]q

[outputs.forward]
type = "syslog"
message_matcher = "TRUE"
encoder = %[5]q
address = "127.0.0.1:%[4]d"
%[6]s
`, filepath.Join(work, "data"), listen, filepath.Join(work, "archive.log"), b.TCPPort, codec, outTLS)
	reg := &pipeline.Registry{Inputs: inputs.Factories(), Decoders: decoders.Factories(), Filters: filters.Factories(), Encoders: encoders.Factories(), Outputs: outputs.Factories()}
	plan, err := config.Parse(filepath.Join(work, "tern.toml"), []byte(cfg), reg, config.Options{})
	require.NoError(t, err)
	e, err := engine.New(plan, reg, engine.Options{Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	defer func() {
		cancel()
		require.NoError(t, <-done)
	}()
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ternPort))
		if err == nil {
			c.Close()
		}
		return err == nil
	}, 30*time.Second, 20*time.Millisecond, "tern's syslog input never listened")

	dirA := t.TempDir()
	var fwdTLS, globalA string
	if withTLS != nil {
		// omfwd verifies tern's certificate chain and name.
		globalA = gtlsGlobal(withTLS.caFile, withTLS.rsyslogA)
		fwdTLS = ` StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name" StreamDriverPermittedPeers="localhost"`
	}
	confA := fmt.Sprintf(`%smodule(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="0" listenPortFileName="%s")
*.* action(type="omfwd" target="127.0.0.1" port="%d" protocol="tcp" template="RSYSLOG_SyslogProtocol23Format" TCP_Framing="octet-counted"%s)
`, globalA, filepath.Join(dirA, "tcp.port"), ternPort, fwdTLS)
	a := nettest.StartRsyslog(t, dirA, confA, true)

	const n = 100
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", a.TCPPort))
	require.NoError(t, err)
	for i := range n {
		_, err := fmt.Fprintf(c, "<134>1 2026-11-22T10:00:%02d.000Z edge-host sshd %d ID%d - through tern %d\n", i%60, 100+i, i, i)
		require.NoError(t, err)
	}
	require.NoError(t, c.Close())

	msgs := b.Messages(t, n, 60*time.Second)
	require.Len(t, msgs, n, "every message reaches rsyslog B once")
	seen := map[string]bool{}
	for _, m := range msgs {
		assert.Equal(t, "edge-host", m["hostname"])
		assert.Equal(t, "sshd", m["app-name"])
		assert.Equal(t, "6", m["syslogseverity"])
		assert.Equal(t, "16", m["syslogfacility"])
		// RSYSLOG_SyslogProtocol23Format ends MSG with LF; rsyslog drops it
		// on reception and so does the syslog decoder (drop_trailing_lf),
		// so nothing like "#012" is added on the way.
		seen[m["msg"].(string)] = true
	}
	for i := range n {
		assert.True(t, seen[fmt.Sprintf("through tern %d", i)], "message %d", i)
	}

	// The file output got the same messages, one per record.
	var lines int
	require.Eventually(t, func() bool {
		f, err := os.Open(filepath.Join(work, "archive.log"))
		if err != nil {
			return false
		}
		defer f.Close()
		lines = 0
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "through tern") {
				lines++
			}
		}
		return lines == n
	}, 30*time.Second, 50*time.Millisecond)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// R31, scaled: one input fans out to a file output and a syslog output
// whose receiver accepts and never reads. The file output gets every
// record while the syslog output is stuck, well before its queue fills.
func TestBlackholedOutputDoesNotStallTheOthers(t *testing.T) {
	hole, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer hole.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := hole.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // accepted, never read
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	}()

	work := t.TempDir()
	inPort := freeTCPPort(t)
	cfg := fmt.Sprintf(`
[tern]
data_dir = %[1]q
metrics_address = ""
shutdown_timeout = "2s"

[inputs.lines]
type = "tcp"
decoder = "payload"
address = "127.0.0.1:%[2]d"

[outputs.archive]
type = "file"
message_matcher = "TRUE"
encoder = "payload"
path = %[3]q

[outputs.stuck]
type = "syslog"
message_matcher = "TRUE"
encoder = "payload"
address = %[4]q
queue_max_bytes = "256MiB"
write_timeout = "1h"
`, filepath.Join(work, "data"), inPort, filepath.Join(work, "archive.log"), hole.Addr().String())
	reg := &pipeline.Registry{Inputs: inputs.Factories(), Decoders: decoders.Factories(), Filters: filters.Factories(), Encoders: encoders.Factories(), Outputs: outputs.Factories()}
	plan, err := config.Parse(filepath.Join(work, "tern.toml"), []byte(cfg), reg, config.Options{})
	require.NoError(t, err)
	e, err := engine.New(plan, reg, engine.Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	defer func() {
		cancel()
		<-done // the stuck output's records are abandoned at shutdown_timeout
	}()

	var c net.Conn
	require.Eventually(t, func() bool {
		c, err = net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", inPort))
		return err == nil
	}, 30*time.Second, 20*time.Millisecond)
	const n = 20000
	line := strings.Repeat("r", 1000) // 20 MB: far more than socket buffers hold
	w := bufio.NewWriter(c)
	for i := range n {
		fmt.Fprintf(w, "%d %s\n", i, line)
	}
	require.NoError(t, w.Flush())
	c.Close()

	t0 := time.Now()
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(filepath.Join(work, "archive.log"))
		return err == nil && strings.Count(string(b), "\n") == n
	}, 60*time.Second, 50*time.Millisecond, "the file output must not wait for the blackholed one")
	t.Logf("%d records in the file %v after the sender finished, with the syslog receiver blackholed", n, time.Since(t0))
	mu.Lock()
	assert.NotEmpty(t, held, "the stuck output did connect")
	mu.Unlock()
}
