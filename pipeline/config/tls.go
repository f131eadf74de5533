package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/ternlog/tern/pipeline"
)

// TLS is the [<kind>.<name>.tls] table shared by every listener and client.
// TLS is on when enabled = true or any file is set. Files are read when the
// plugin runs (never by the constructor) and read again when they change,
// so rotated certificates serve new sessions without a restart.
type TLS struct {
	// Enabled turns TLS on without any file (a client trusting the system
	// roots). Setting cert_file, key_file or ca_file turns it on too.
	Enabled bool `toml:"enabled"`
	// CertFile and KeyFile are PEM files: the server certificate of a
	// listener, the client certificate a client presents for mutual TLS.
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
	// CAFile is a PEM bundle. On a listener it holds the CAs that sign
	// client certificates and makes them required (mutual TLS); on a client
	// it replaces the system roots for verifying the server.
	CAFile string `toml:"ca_file"`
	// ServerName is the name a client verifies in the server certificate
	// (and sends as SNI); default: the host of the address it dials.
	ServerName string `toml:"server_name"`
	// MinVersion is "1.2" or "1.3".
	MinVersion string `toml:"min_version"`
	// HandshakeTimeout bounds a TLS handshake; a peer that stalls is cut off.
	HandshakeTimeout Duration `toml:"handshake_timeout"`
	// InsecureSkipVerify makes a client accept any server certificate: no
	// chain and no name check. Only for tests; it is logged at every use.
	InsecureSkipVerify bool `toml:"insecure_skip_verify"`
}

// DefaultTLS returns the defaults: TLS off, TLS 1.2 minimum, 10s handshakes.
func DefaultTLS() TLS {
	return TLS{MinVersion: "1.2", HandshakeTimeout: Duration(10 * time.Second)}
}

// On reports whether TLS is configured.
func (t TLS) On() bool {
	return t.Enabled || t.CertFile != "" || t.KeyFile != "" || t.CAFile != ""
}

// Timeout is the handshake timeout (10s when unset).
func (t TLS) Timeout() time.Duration {
	if t.HandshakeTimeout <= 0 {
		return 10 * time.Second
	}
	return t.HandshakeTimeout.D()
}

func (t TLS) minVersion() uint16 {
	if t.MinVersion == "1.3" {
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}

// validate returns "prefix.key: message" errors for checks common to both
// sides.
func (t TLS) validate(prefix string) []error {
	var errs []error
	switch t.MinVersion {
	case "", "1.2", "1.3":
	default:
		errs = append(errs, fmt.Errorf("%s.min_version: must be \"1.2\" or \"1.3\", not %q", prefix, t.MinVersion))
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		errs = append(errs, fmt.Errorf("%s.cert_file: cert_file and key_file go together", prefix))
	}
	return errs
}

// ValidateServer checks the table of a listener; prefix is its key ("tls").
func (t TLS) ValidateServer(prefix string) error {
	if !t.On() {
		return nil
	}
	errs := t.validate(prefix)
	if t.CertFile == "" || t.KeyFile == "" {
		errs = append(errs, fmt.Errorf("%s.cert_file: a listener needs cert_file and key_file", prefix))
	}
	if t.InsecureSkipVerify {
		errs = append(errs, fmt.Errorf("%s.insecure_skip_verify: only for clients", prefix))
	}
	if t.ServerName != "" {
		errs = append(errs, fmt.Errorf("%s.server_name: only for clients", prefix))
	}
	return errors.Join(errs...)
}

// ValidateClient checks the table of a client; prefix is its key ("tls").
func (t TLS) ValidateClient(prefix string) error {
	if !t.On() {
		return nil
	}
	return errors.Join(t.validate(prefix)...)
}

// ServerConfig builds the server side: the certificate (and, with ca_file,
// the required client CAs) is read now, and read again for new handshakes
// once the files change. Call it from Run.
func (t TLS) ServerConfig(set pipeline.Settings) (*tls.Config, error) {
	r := &reloader{t: t, set: set, server: true}
	if _, err := r.current(); err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion: t.minVersion(),
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return r.current()
		},
	}, nil
}

// ClientConfig builds the client side for a connection to host (the host
// part of the dialled address): the server is verified against ca_file or
// the system roots, under server_name or host. Files are read at every
// call: clients call it for each new connection, so rotated files apply.
func (t TLS) ClientConfig(set pipeline.Settings, host string) (*tls.Config, error) {
	r := &reloader{t: t, set: set}
	cfg, err := r.build()
	if err != nil {
		return nil, err
	}
	cfg.ServerName = t.ServerName
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	if t.InsecureSkipVerify {
		if set.Logger != nil {
			set.Logger.Warn("TLS certificate verification is OFF (insecure_skip_verify): the connection is open to interception", "server", cfg.ServerName)
		}
		cfg.InsecureSkipVerify = true
	}
	return cfg, nil
}

// reloader keeps the server config built from the files of a TLS table and
// rebuilds it when their modification time or size changes (checked at
// most once a second, so a handshake flood does not become a stat flood).
type reloader struct {
	t      TLS
	set    pipeline.Settings
	server bool

	mu      sync.Mutex
	cfg     *tls.Config
	stamp   string
	checked time.Time
}

func (r *reloader) files() []string {
	var out []string
	for _, p := range []string{r.t.CertFile, r.t.KeyFile, r.t.CAFile} {
		if p != "" {
			out = append(out, r.set.Resolve(p))
		}
	}
	return out
}

func (r *reloader) fingerprint() string {
	var s string
	for _, p := range r.files() {
		fi, err := os.Stat(p)
		if err != nil {
			s += p + ":missing;"
			continue
		}
		s += fmt.Sprintf("%s:%d:%d;", p, fi.ModTime().UnixNano(), fi.Size())
	}
	return s
}

func (r *reloader) current() (*tls.Config, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if r.cfg != nil && now.Sub(r.checked) < time.Second {
		return r.cfg, nil
	}
	r.checked = now
	stamp := r.fingerprint()
	if r.cfg != nil && stamp == r.stamp {
		return r.cfg, nil
	}
	cfg, err := r.build()
	if err != nil {
		if r.cfg == nil {
			return nil, err
		}
		// A rotation caught half-way (new cert, old key) fails to load:
		// keep serving the previous pair and try again later.
		if r.set.Logger != nil {
			r.set.Logger.Warn("TLS files changed but do not load; keeping the previous ones", "err", err)
		}
		return r.cfg, nil
	}
	if r.cfg != nil && r.set.Logger != nil {
		r.set.Logger.Info("TLS files reloaded")
	}
	r.cfg, r.stamp = cfg, stamp
	return cfg, nil
}

func (r *reloader) build() (*tls.Config, error) {
	t := r.t
	cfg := &tls.Config{MinVersion: t.minVersion()}
	if t.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(r.set.Resolve(t.CertFile), r.set.Resolve(t.KeyFile))
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	if t.CAFile != "" {
		pem, err := os.ReadFile(r.set.Resolve(t.CAFile))
		if err != nil {
			return nil, fmt.Errorf("tls: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls: ca_file %s holds no PEM certificate", t.CAFile)
		}
		if r.server {
			cfg.ClientCAs = pool
			cfg.ClientAuth = tls.RequireAndVerifyClientCert
		} else {
			cfg.RootCAs = pool
		}
	}
	return cfg, nil
}
