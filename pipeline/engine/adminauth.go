package engine

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
)

// adminAuth guards the metrics address: bearer tokens ([tern]
// metrics_tokens, metrics_token_file) in every request but for the
// dashboard's static files, and mutual TLS ([tern.metrics_tls] ca_file),
// which the handshake enforces for every connection. With both, both are
// required.
type adminAuth struct {
	tokens   [][32]byte // SHA-256 of each token
	mtls     bool
	loopback bool // the listener is on a loopback address
}

// open reports whether anyone who reaches the address gets in.
func (a *adminAuth) open() bool { return len(a.tokens) == 0 && !a.mtls }

// allowed reports whether r carries an accepted token (or needs none).
// Digests of a fixed size, compared in constant time against every token,
// hide the tokens' content and length.
func (a *adminAuth) allowed(r *http.Request) bool {
	if len(a.tokens) == 0 {
		return true
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	sum := sha256.Sum256([]byte(tok))
	hit := 0
	for i := range a.tokens {
		hit |= subtle.ConstantTimeCompare(sum[:], a.tokens[i][:])
	}
	return hit == 1
}

// guard wraps h with the token check.
func (e *Engine) guard(a *adminAuth, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !a.allowed(r) {
			e.logs.For("admin/auth").Warn(e.log, "metrics address: request without a valid token", "remote", r.RemoteAddr, "path", r.URL.Path)
			e.metrics.pluginError("engine", "admin_auth")
			w.Header().Set("WWW-Authenticate", `Bearer realm="tern"`)
			http.Error(w, "a valid bearer token is required (metrics_tokens)", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// adminSettings resolves the metrics address's files against the config's
// directory, as a plugin's would be.
func (e *Engine) adminSettings() pipeline.Settings {
	return pipeline.Settings{Name: "tern.metrics", Logger: e.log, ConfigDir: e.plan.Dir, Now: e.now}
}

// loadAdminTokens reads metrics_tokens and metrics_token_file.
func (e *Engine) loadAdminTokens() ([][32]byte, error) {
	g := &e.plan.Global
	toks := append([]string(nil), g.MetricsTokens...)
	if g.MetricsTokenFile != "" {
		path := e.adminSettings().Resolve(g.MetricsTokenFile)
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("metrics_token_file: %w", err)
		}
		n := 0
		for i, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if err := config.CheckToken(line); err != nil {
				return nil, fmt.Errorf("metrics_token_file %s: line %d %v", path, i+1, err)
			}
			toks = append(toks, line)
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("metrics_token_file %s: no token", path)
		}
	}
	out := make([][32]byte, len(toks))
	for i, t := range toks {
		out[i] = sha256.Sum256([]byte(t))
	}
	return out, nil
}

// checkAdmin reads the token file and the TLS files, as `tern check` does
// for plugins' files.
func (e *Engine) checkAdmin() []error {
	g := &e.plan.Global
	if g.MetricsAddress == "" {
		return nil
	}
	var errs []error
	if _, err := e.loadAdminTokens(); err != nil {
		errs = append(errs, err)
	}
	if g.MetricsTLS.On() {
		if _, err := g.MetricsTLS.ServerConfig(e.adminSettings()); err != nil {
			errs = append(errs, fmt.Errorf("metrics_tls: %w", err))
		}
	}
	return errs
}

// startAdmin listens on metrics_address (with TLS when configured) and
// serves the admin endpoints until Run shuts the server down.
func (e *Engine) startAdmin() (*http.Server, error) {
	g := &e.plan.Global
	tokens, err := e.loadAdminTokens()
	if err != nil {
		return nil, err
	}
	auth := &adminAuth{tokens: tokens}
	var tlsCfg *tls.Config
	if g.MetricsTLS.On() {
		if tlsCfg, err = g.MetricsTLS.ServerConfig(e.adminSettings()); err != nil {
			return nil, fmt.Errorf("metrics_tls: %w", err)
		}
		auth.mtls = g.MetricsTLS.CAFile != ""
	}
	ln, err := net.Listen("tcp", g.MetricsAddress)
	if err != nil {
		return nil, fmt.Errorf("metrics_address: %w", err)
	}
	if ta, ok := ln.Addr().(*net.TCPAddr); ok {
		auth.loopback = ta.IP.IsLoopback()
	}
	scheme := "http"
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
		scheme = "https"
	}
	e.adminAddr.Store(ln.Addr())
	srv := e.adminServer(auth)
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.log.Error("metrics address stopped serving", "err", err)
		}
	}()
	e.log.Info("serving metrics", "address", ln.Addr().String(), "dashboard", scheme+"://"+ln.Addr().String()+"/",
		"auth", auth.describe())
	if auth.open() && !auth.loopback {
		e.log.Warn("metrics address: no metrics_tokens and no mutual TLS on a non-loopback address: anyone who reaches it reads the metrics; taps are refused")
	}
	return srv, nil
}

func (a *adminAuth) describe() string {
	switch {
	case a.mtls && len(a.tokens) > 0:
		return "mutual TLS and bearer token"
	case a.mtls:
		return "mutual TLS"
	case len(a.tokens) > 0:
		return "bearer token"
	}
	return "none"
}

// AdminAddr is the address the metrics address listens on once Run has
// started it (nil before, or when metrics_address is empty).
func (e *Engine) AdminAddr() net.Addr {
	a, _ := e.adminAddr.Load().(net.Addr)
	return a
}
