// Package http is the output that POSTs encoded records to an HTTP
// endpoint, one request per batch (NDJSON) or per record.
package http

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
	"golang.org/x/net/http/httpguts"

	"github.com/ternlog/tern/internal/netio"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
)

//go:embed sample.toml
var sample string

// Type selects this output.
const Type = "http"

// Modes.
const (
	ModeBatch  = "batch"
	ModeRecord = "record"
)

// Config is the [outputs.<name>] table with type = "http".
type Config struct {
	// URL to send to (http or https).
	URL string `toml:"url"`
	// Method is POST or PUT.
	Method string `toml:"method"`
	// Mode is batch (one request per batch, records joined by newlines) or
	// record (one request per record).
	Mode string `toml:"mode"`
	// ContentType of the request body.
	ContentType string `toml:"content_type"`
	// Gzip compresses request bodies.
	Gzip bool `toml:"gzip"`
	// Headers are added to every request.
	Headers map[string]string `toml:"headers"`
	// BearerToken is sent as "Authorization: Bearer …".
	BearerToken string `toml:"bearer_token"`
	// BearerTokenFile holds the bearer token (read at the first request).
	BearerTokenFile string `toml:"bearer_token_file"`
	// Username and Password are sent with HTTP basic auth.
	Username string `toml:"username"`
	Password string `toml:"password"`
	// PasswordFile holds the password (read at the first request).
	PasswordFile string `toml:"password_file"`
	// Timeout bounds one request.
	Timeout config.Duration `toml:"timeout"`
	// MaxRetryAfter caps the wait a Retry-After answer imposes.
	MaxRetryAfter config.Duration `toml:"max_retry_after"`
	// TLS configures https.
	TLS config.TLS `toml:"tls"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Method: http.MethodPost, Mode: ModeBatch, ContentType: "application/x-ndjson",
		Timeout: config.Duration(30 * time.Second), MaxRetryAfter: config.Duration(5 * time.Minute),
		TLS: config.DefaultTLS(),
	}
}

// Validate checks the config. Messages never quote credentials.
func (c Config) Validate() error {
	var errs []error
	u, err := url.Parse(c.URL)
	switch {
	case c.URL == "":
		errs = append(errs, errors.New("url: required"))
	case err != nil:
		errs = append(errs, errors.New("url: not a URL"))
	case u.Scheme != "http" && u.Scheme != "https":
		errs = append(errs, fmt.Errorf("url: scheme must be http or https, not %q", u.Scheme))
	case u.Host == "":
		errs = append(errs, errors.New("url: no host"))
	case u.User != nil:
		errs = append(errs, errors.New("url: put credentials in username/password, not in the URL"))
	case u.Scheme == "http" && c.TLS.On():
		errs = append(errs, errors.New("tls: only for https URLs"))
	}
	if c.Method != http.MethodPost && c.Method != http.MethodPut {
		errs = append(errs, fmt.Errorf("method: must be POST or PUT, not %q", c.Method))
	}
	if c.Mode != ModeBatch && c.Mode != ModeRecord {
		errs = append(errs, fmt.Errorf("mode: must be batch or record, not %q", c.Mode))
	}
	if !httpguts.ValidHeaderFieldValue(c.ContentType) {
		errs = append(errs, errors.New("content_type: not a valid header value"))
	}
	for k, v := range c.Headers {
		if !httpguts.ValidHeaderFieldName(k) {
			errs = append(errs, fmt.Errorf("headers: %q is not a valid header name", k))
		}
		// Rejects CR, LF and NUL: a header value must never start a new
		// header or request.
		if !httpguts.ValidHeaderFieldValue(v) {
			errs = append(errs, fmt.Errorf("headers: the value of %q holds a control character", k))
		}
		if http.CanonicalHeaderKey(k) == "Authorization" && (c.hasBearer() || c.Username != "") {
			errs = append(errs, errors.New("headers: Authorization conflicts with bearer_token/username"))
		}
	}
	if c.BearerToken != "" && c.BearerTokenFile != "" {
		errs = append(errs, errors.New("bearer_token: set bearer_token or bearer_token_file, not both"))
	}
	if c.BearerToken != "" && !httpguts.ValidHeaderFieldValue(c.BearerToken) {
		errs = append(errs, errors.New("bearer_token: holds a control character"))
	}
	if c.hasBearer() && c.Username != "" {
		errs = append(errs, errors.New("username: use bearer or basic auth, not both"))
	}
	if c.Password != "" && c.PasswordFile != "" {
		errs = append(errs, errors.New("password: set password or password_file, not both"))
	}
	if (c.Password != "" || c.PasswordFile != "") && c.Username == "" {
		errs = append(errs, errors.New("username: required with a password"))
	}
	if c.Timeout <= 0 {
		errs = append(errs, errors.New("timeout: must be positive"))
	}
	if err := c.TLS.ValidateClient("tls"); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

func (c Config) hasBearer() bool { return c.BearerToken != "" || c.BearerTokenFile != "" }

// Output posts to one endpoint.
type Output struct {
	cfg    Config
	set    pipeline.Settings
	host   string
	client *http.Client

	authOnce sync.Once
	auth     string // the Authorization header value
	authErr  error

	body bytes.Buffer
	zw   *gzip.Writer
}

var (
	_ pipeline.Output = (*Output)(nil)
	_ pipeline.Closer = (*Output)(nil)
)

// New returns an HTTP output; nothing is read or dialled before the first
// Write.
func New(set pipeline.Settings, cfg Config) (*Output, error) {
	u, _ := url.Parse(cfg.URL)
	o := &Output{cfg: cfg, set: set, host: u.Hostname()}
	set.DeclareErrors("request", "response", "status_retriable", "status_permanent")
	if u.Scheme == "https" {
		set.DeclareErrors("tls_handshake")
	}
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: cfg.Timeout.D(), KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: cfg.Timeout.D(),
		// Proxies from the environment would be a silent detour for
		// security data; none is used.
		Proxy: nil,
	}
	if u.Scheme == "https" {
		// TLS files are read for each new connection, so rotated
		// certificates apply without a restart.
		tr.DialTLSContext = o.dialTLS
	}
	o.client = &http.Client{
		Transport: tr,
		Timeout:   cfg.Timeout.D(),
		// A redirect is a configuration problem to surface, not to follow
		// with our credentials.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return o, nil
}

// Factory registers the output.
func Factory() pipeline.Factory[pipeline.Output] {
	return pipeline.NewFactory(Type, sample, DefaultConfig, func(s pipeline.Settings, c Config) (pipeline.Output, error) {
		return New(s, c)
	}).WithDefaultEncoder("json").WithSummary("batches POSTed, retried on 5xx")
}

func (o *Output) dialTLS(ctx context.Context, network, addr string) (net.Conn, error) {
	cfg, err := o.cfg.TLS.ClientConfig(o.set, o.host)
	if err != nil {
		return nil, err
	}
	cfg.NextProtos = []string{"http/1.1"}
	d := net.Dialer{Timeout: o.cfg.Timeout.D()}
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	tc, err := netio.ClientHandshake(ctx, c, cfg, min(o.cfg.TLS.Timeout(), o.cfg.Timeout.D()))
	if err != nil {
		c.Close()
		o.set.Error("tls_handshake")
		return nil, err
	}
	return tc, nil
}

// loadAuth builds the Authorization header once, reading secret files.
func (o *Output) loadAuth() (string, error) {
	o.authOnce.Do(func() {
		c := o.cfg
		readSecret := func(key, path string) string {
			b, err := os.ReadFile(o.set.Resolve(path))
			if err != nil {
				o.authErr = fmt.Errorf("%s: %w", key, err)
				return ""
			}
			s := strings.TrimSpace(string(b))
			if s == "" || !httpguts.ValidHeaderFieldValue(s) {
				o.authErr = fmt.Errorf("%s %s: empty, or holds a control character", key, path)
			}
			return s
		}
		switch {
		case c.BearerToken != "":
			o.auth = "Bearer " + c.BearerToken
		case c.BearerTokenFile != "":
			o.auth = "Bearer " + readSecret("bearer_token_file", c.BearerTokenFile)
		case c.Username != "":
			pw := c.Password
			if c.PasswordFile != "" {
				pw = readSecret("password_file", c.PasswordFile)
			}
			o.auth = "Basic " + base64.StdEncoding.EncodeToString([]byte(c.Username+":"+pw))
		}
	})
	if o.authErr != nil {
		// Retrying cannot help until the file is fixed, but the records
		// are not at fault either: keep them queued.
		return "", o.authErr
	}
	return o.auth, nil
}

func (o *Output) Write(ctx context.Context, batch []pipeline.Encoded) error {
	if o.cfg.Mode == ModeRecord {
		var errs []error
		for i, e := range batch {
			err := o.send(ctx, [][]byte{e.Data}, false)
			if err == nil {
				continue
			}
			if errs == nil {
				errs = make([]error, len(batch))
			}
			errs[i] = err
			if !pipeline.IsPermanent(err) {
				// The endpoint is unwell: leave the rest for the retry.
				for j := i + 1; j < len(batch); j++ {
					errs[j] = err
				}
				break
			}
		}
		if errs == nil {
			return nil
		}
		return &pipeline.PartialError{Errs: errs}
	}
	recs := make([][]byte, len(batch))
	for i, e := range batch {
		recs[i] = e.Data
	}
	return o.send(ctx, recs, true)
}

// send makes one request holding recs (newline-terminated in batch mode).
func (o *Output) send(ctx context.Context, recs [][]byte, newlines bool) error {
	auth, err := o.loadAuth()
	if err != nil {
		return err
	}
	o.body.Reset()
	var w io.Writer = &o.body
	if o.cfg.Gzip {
		if o.zw == nil {
			o.zw, _ = gzip.NewWriterLevel(&o.body, gzip.DefaultCompression)
		} else {
			o.zw.Reset(&o.body)
		}
		w = o.zw
	}
	for _, r := range recs {
		_, _ = w.Write(r)
		if newlines {
			_, _ = w.Write([]byte{'\n'})
		}
	}
	if o.zw != nil && o.cfg.Gzip {
		_ = o.zw.Close()
	}
	req, err := http.NewRequestWithContext(ctx, o.cfg.Method, o.cfg.URL, bytes.NewReader(o.body.Bytes()))
	if err != nil {
		return pipeline.Permanent(err)
	}
	req.Header.Set("Content-Type", o.cfg.ContentType)
	req.Header.Set("User-Agent", "tern")
	if o.cfg.Gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	for k, v := range o.cfg.Headers {
		req.Header.Set(k, v)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := o.client.Do(req)
	if err != nil {
		o.set.Error("request")
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		// A status line is not a delivery: a server that dies while
		// answering may not have taken the batch. Only an answer read to
		// its end (Content-Length or last chunk; client.Timeout bounds
		// the time) counts; a cut one is retried.
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			o.set.Error("response")
			return fmt.Errorf("HTTP %d answer cut short: %w", resp.StatusCode, err)
		}
		return nil
	}
	defer func() {
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	}()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	herr := &StatusError{Code: resp.StatusCode, Body: printable(snippet)}
	switch {
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		o.set.Error("status_retriable")
		if d, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			herr.RetryAfter = min(d, o.cfg.MaxRetryAfter.D())
			// The engine's backoff waits at least this long before the
			// retry (and stops waiting at shutdown); Write does not sleep.
			return pipeline.RetryAfter(herr, herr.RetryAfter)
		}
		return herr
	default:
		// Other 4xx (and unfollowed 3xx): sending again cannot succeed.
		o.set.Error("status_permanent")
		return pipeline.Permanent(herr)
	}
}

// StatusError is a non-2xx answer.
type StatusError struct {
	Code       int
	Body       string // the start of the answer, control characters removed
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	if e.Body == "" {
		return "HTTP " + strconv.Itoa(e.Code)
	}
	return "HTTP " + strconv.Itoa(e.Code) + ": " + e.Body
}

// retryAfter reads delay-seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(min(n, 1<<20)) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// printable keeps an error body fit for a log line.
func printable(b []byte) string {
	s := strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return ' '
		}
		return r
	}, string(b))
	return strings.TrimSpace(s)
}

func (o *Output) Close(context.Context) error {
	o.client.CloseIdleConnections()
	return nil
}
