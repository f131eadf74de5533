package config_test

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ternlog/tern/internal/testutil/testpki"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func TestTLSValidate(t *testing.T) {
	ok := config.DefaultTLS()
	assert.NoError(t, ok.ValidateServer("tls"))
	assert.NoError(t, ok.ValidateClient("tls"))

	bad := config.DefaultTLS()
	bad.CertFile = "a.crt"
	bad.MinVersion = "1.1"
	bad.InsecureSkipVerify = true
	err := bad.ValidateServer("tls")
	require.Error(t, err)
	for _, want := range []string{"tls.min_version:", "tls.cert_file: cert_file and key_file go together", "tls.insecure_skip_verify:"} {
		assert.Contains(t, err.Error(), want)
	}
	onlyCA := config.DefaultTLS()
	onlyCA.CAFile = "ca.crt"
	assert.ErrorContains(t, onlyCA.ValidateServer("tls"), "needs cert_file and key_file")
	assert.NoError(t, onlyCA.ValidateClient("tls"))
}

type pkiDir struct {
	dir                    string
	ca, other              *testpki.CA
	caFile                 string
	srvCert, srvKey        string
	cliCert, cliKey        string
	otherCert, otherKey    string
	expiredCrt, expiredKey string
}

func newPKI(t *testing.T) pkiDir {
	d := pkiDir{dir: t.TempDir(), ca: testpki.NewCA(t, "tern test CA"), other: testpki.NewCA(t, "other CA")}
	d.caFile = d.ca.WriteCA(t, d.dir, "ca")
	d.srvCert, d.srvKey = d.ca.Issue(t, testpki.Opts{}).Write(t, d.dir, "server")
	d.cliCert, d.cliKey = d.ca.Issue(t, testpki.Opts{CN: "client", Client: true}).Write(t, d.dir, "client")
	d.otherCert, d.otherKey = d.other.Issue(t, testpki.Opts{CN: "intruder", Client: true}).Write(t, d.dir, "intruder")
	d.expiredCrt, d.expiredKey = d.ca.Issue(t, testpki.Expired(testpki.Opts{CN: "old", Client: true})).Write(t, d.dir, "expired")
	return d
}

// serveTLS accepts TLS connections with cfg and reports each handshake.
func serveTLS(t *testing.T, cfg *tls.Config) (addr string, results chan error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	results = make(chan error, 16)
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			tc := tls.Server(c, cfg)
			_ = tc.SetDeadline(time.Now().Add(10 * time.Second))
			err = tc.Handshake()
			if err == nil {
				_, _ = tc.Write([]byte("ok"))
			}
			tc.Close()
			results <- err
		}
	}()
	return ln.Addr().String(), results
}

func dialWith(addr string, cfg *tls.Config) error {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	b := make([]byte, 2)
	_, err = c.Read(b) // with TLS 1.3 a refused client cert shows up here
	return err
}

func TestTLSServerMutualMatrix(t *testing.T) {
	p := newPKI(t)
	set := pipelinetest.Settings(t, "inputs.x")
	tc := config.DefaultTLS()
	tc.CertFile, tc.KeyFile, tc.CAFile = p.srvCert, p.srvKey, p.caFile
	require.NoError(t, tc.ValidateServer("tls"))
	srv, err := tc.ServerConfig(set)
	require.NoError(t, err)
	addr, results := serveTLS(t, srv)

	client := func(cert, key string) *tls.Config {
		c := &tls.Config{RootCAs: p.ca.Pool(), ServerName: "localhost"}
		if cert != "" {
			pair, err := tls.LoadX509KeyPair(cert, key)
			require.NoError(t, err)
			c.Certificates = []tls.Certificate{pair}
		}
		return c
	}
	cases := []struct {
		name string
		cfg  *tls.Config
		ok   bool
	}{
		{"no client cert", client("", ""), false},
		{"wrong CA", client(p.otherCert, p.otherKey), false},
		{"expired", client(p.expiredCrt, p.expiredKey), false},
		{"TLS 1.1", func() *tls.Config {
			c := client(p.cliCert, p.cliKey)
			c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
			return c
		}(), false},
		{"valid", client(p.cliCert, p.cliKey), true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := dialWith(addr, c.cfg)
			srvErr := <-results
			if c.ok {
				assert.NoError(t, err)
				assert.NoError(t, srvErr)
			} else {
				assert.Error(t, err)
				assert.Error(t, srvErr, "the server must refuse the handshake")
			}
		})
	}
}

func TestTLSServerReloadsRotatedCertificate(t *testing.T) {
	p := newPKI(t)
	set := pipelinetest.Settings(t, "inputs.x")
	tc := config.DefaultTLS()
	tc.CertFile, tc.KeyFile = p.srvCert, p.srvKey
	srv, err := tc.ServerConfig(set)
	require.NoError(t, err)
	addr, results := serveTLS(t, srv)

	trustOld := &tls.Config{RootCAs: p.ca.Pool(), ServerName: "localhost"}
	require.NoError(t, dialWith(addr, trustOld))
	<-results

	// Rotate to a certificate from another CA; new sessions must use it.
	newCA := testpki.NewCA(t, "rotated CA")
	leaf := newCA.Issue(t, testpki.Opts{})
	testpki.WriteFile(t, p.srvKey, leaf.KeyPEM)
	testpki.WriteFile(t, p.srvCert, leaf.CertPEM)
	future := time.Now().Add(2 * time.Second)
	require.NoError(t, os.Chtimes(p.srvCert, future, future))
	require.NoError(t, os.Chtimes(p.srvKey, future, future))

	trustNew := &tls.Config{RootCAs: newCA.Pool(), ServerName: "localhost"}
	deadline := time.Now().Add(15 * time.Second)
	for {
		err := dialWith(addr, trustNew)
		<-results
		if err == nil {
			break
		}
		require.True(t, time.Now().Before(deadline), "the rotated certificate was never served: %v", err)
		time.Sleep(200 * time.Millisecond)
	}
	assert.Error(t, dialWith(addr, trustOld), "the old chain must no longer be served")
	<-results
}

func TestTLSClientVerifiesHostname(t *testing.T) {
	p := newPKI(t)
	set := pipelinetest.Settings(t, "outputs.x")
	srvOnly := &tls.Config{Certificates: []tls.Certificate{func() tls.Certificate {
		c, err := tls.LoadX509KeyPair(p.srvCert, p.srvKey)
		require.NoError(t, err)
		return c
	}()}}
	addr, results := serveTLS(t, srvOnly)

	tc := config.DefaultTLS()
	tc.CAFile = p.caFile
	good, err := tc.ClientConfig(set, "127.0.0.1")
	require.NoError(t, err)
	assert.NoError(t, dialWith(addr, good))
	<-results

	wrongName, err := tc.ClientConfig(set, "siem.example.com")
	require.NoError(t, err)
	err = dialWith(addr, wrongName)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "siem.example.com")
	<-results

	sys := config.DefaultTLS()
	sys.Enabled = true
	untrusted, err := sys.ClientConfig(set, "127.0.0.1")
	require.NoError(t, err)
	assert.Error(t, dialWith(addr, untrusted), "a test CA is not in the system roots")
	<-results

	insecure := sys
	insecure.InsecureSkipVerify = true
	ic, err := insecure.ClientConfig(set, "127.0.0.1")
	require.NoError(t, err)
	assert.NoError(t, dialWith(addr, ic))
	<-results
}

func TestTLSFilesReadAtRunTime(t *testing.T) {
	set := pipelinetest.Settings(t, "inputs.x")
	set.ConfigDir = t.TempDir()
	tc := config.DefaultTLS()
	tc.CertFile, tc.KeyFile = "missing.crt", "missing.key"
	_, err := tc.ServerConfig(set)
	require.Error(t, err)
	assert.Contains(t, err.Error(), filepath.Join(set.ConfigDir, "missing.crt"), "relative paths start at the config directory")

	tc = config.DefaultTLS()
	tc.CAFile = filepath.Join(set.ConfigDir, "empty.pem")
	require.NoError(t, os.WriteFile(tc.CAFile, []byte("not pem"), 0o600))
	_, err = tc.ClientConfig(set, "x")
	assert.ErrorContains(t, err, "no PEM certificate")
}

func TestTLSInsecureIsLogged(t *testing.T) {
	var logs strings.Builder
	set := pipeline.Settings{Logger: newTextLogger(&logs)}
	tc := config.DefaultTLS()
	tc.InsecureSkipVerify = true
	_, err := tc.ClientConfig(set, "h")
	require.NoError(t, err)
	assert.Contains(t, logs.String(), "verification is OFF")
}

func newTextLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }

// The [<kind>.<name>.tls] table loads strictly and its errors are placed
// on their lines like any other key.
func TestTLSTableInAConfig(t *testing.T) {
	src := `
[inputs.a]
type = "tcp"
address = "127.0.0.1:6514"
decoder = "payload"
[inputs.a.tls]
cert_file = "server.crt"
key_file = "server.key"
ca_file = "clients.crt"
min_version = "1.3"
`
	plan, errs := parse(t, src, nil)
	require.Empty(t, errs)
	require.Len(t, plan.Inputs, 1)

	_, errs = parse(t, src+"cert_fil = \"typo\"\n", nil)
	require.Len(t, errs, 1)
	assert.Equal(t, "inputs.a.tls.cert_fil", errs[0].Key)
	assert.Equal(t, 11, errs[0].Line)

	_, errs = parse(t, strings.Replace(src, `min_version = "1.3"`, `min_version = "1.0"`, 1), nil)
	require.Len(t, errs, 1)
	assert.Equal(t, "inputs.a.tls.min_version", errs[0].Key)
	assert.Equal(t, 10, errs[0].Line)
}
