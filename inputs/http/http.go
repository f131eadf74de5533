// Package http is the input that takes records in HTTP POST bodies and
// answers each request only once its records were delivered.
package http

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/ternlog/tern/internal/netio"
	"github.com/ternlog/tern/internal/ratelog"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/framing"
)

//go:embed sample.toml
var sample string

// Type selects this input.
const Type = "http"

// Framings of a request body.
const (
	FramingLines  = "lines"
	FramingFrames = "frames"
)

// Config is the [inputs.<name>] table with type = "http".
type Config struct {
	// Address to listen on, host:port.
	Address string `toml:"address"`
	// Path that takes POST requests.
	Path string `toml:"path"`
	// Framing of a body: lines (NDJSON or raw lines) or frames (native).
	Framing string `toml:"framing"`
	// Tokens are the accepted bearer tokens.
	Tokens []string `toml:"tokens"`
	// TokenFile holds more tokens, one per line, read when the input starts.
	TokenFile string `toml:"token_file"`
	// InsecureNoAuth accepts requests with neither a token nor mutual TLS.
	InsecureNoAuth bool `toml:"insecure_no_auth"`
	// MaxBodyBytes caps a body as sent.
	MaxBodyBytes config.Size `toml:"max_body_bytes"`
	// MaxDecompressedBytes caps a gzip body once decompressed.
	MaxDecompressedBytes config.Size `toml:"max_decompressed_bytes"`
	// MaxRecordBytes caps one line or frame payload.
	MaxRecordBytes config.Size `toml:"max_record_bytes"`
	// MaxConnections caps concurrent connections.
	MaxConnections int `toml:"max_connections"`
	// ReadHeaderTimeout bounds the TLS handshake and the request headers.
	ReadHeaderTimeout config.Duration `toml:"read_header_timeout"`
	// ReadTimeout bounds reading a whole request.
	ReadTimeout config.Duration `toml:"read_timeout"`
	// IdleTimeout closes keep-alive connections idle this long.
	IdleTimeout config.Duration `toml:"idle_timeout"`
	// AckTimeout bounds the wait for the delivery acknowledgement.
	AckTimeout config.Duration `toml:"ack_timeout"`
	// RetryAfter is the Retry-After sent with 503 and 429.
	RetryAfter config.Duration `toml:"retry_after"`
	// AuthFailureLimit is the failures allowed per IP per window (0: no limit).
	AuthFailureLimit int `toml:"auth_failure_limit"`
	// AuthFailureWindow is the window of AuthFailureLimit.
	AuthFailureWindow config.Duration `toml:"auth_failure_window"`
	// BatchMaxCount caps the records handed on at once.
	BatchMaxCount int `toml:"batch_max_count"`
	// TLS serves HTTPS; with ca_file, client certificates are required.
	TLS config.TLS `toml:"tls"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Path: "/", Framing: FramingLines,
		MaxBodyBytes: 10 << 20, MaxDecompressedBytes: 100 << 20, MaxRecordBytes: framing.DefaultMaxLine,
		MaxConnections:    256,
		ReadHeaderTimeout: config.Duration(10 * time.Second), ReadTimeout: config.Duration(60 * time.Second),
		IdleTimeout: config.Duration(60 * time.Second), AckTimeout: config.Duration(30 * time.Second),
		RetryAfter: config.Duration(5 * time.Second), AuthFailureLimit: 10, AuthFailureWindow: config.Duration(time.Minute),
		BatchMaxCount: 1024, TLS: config.DefaultTLS(),
	}
}

// Validate checks the config.
func (c Config) Validate() error {
	errs := []error{netio.CheckAddress("address", c.Address)}
	if !strings.HasPrefix(c.Path, "/") {
		errs = append(errs, errors.New("path: must start with /"))
	}
	if c.Framing != FramingLines && c.Framing != FramingFrames {
		errs = append(errs, fmt.Errorf("framing: must be lines or frames, not %q", c.Framing))
	}
	for i, t := range c.Tokens {
		if err := config.CheckToken(t); err != nil {
			errs = append(errs, fmt.Errorf("tokens: token %d %v", i+1, err))
		}
	}
	if len(c.Tokens) == 0 && c.TokenFile == "" && c.TLS.CAFile == "" && !c.InsecureNoAuth {
		errs = append(errs, errors.New("token_file: set tokens, token_file or tls.ca_file (mutual TLS); insecure_no_auth = true accepts anyone"))
	}
	if c.MaxBodyBytes < 1 {
		errs = append(errs, errors.New("max_body_bytes: must be positive"))
	}
	if c.MaxDecompressedBytes < 1 {
		errs = append(errs, errors.New("max_decompressed_bytes: must be positive"))
	}
	if c.MaxRecordBytes < 1 || c.MaxRecordBytes > 1<<30 {
		errs = append(errs, errors.New("max_record_bytes: must be between 1 and 1GiB"))
	}
	if c.MaxConnections < 1 {
		errs = append(errs, errors.New("max_connections: must be positive"))
	}
	for _, d := range []struct {
		key string
		v   config.Duration
	}{{"read_header_timeout", c.ReadHeaderTimeout}, {"read_timeout", c.ReadTimeout}, {"ack_timeout", c.AckTimeout}} {
		if d.v <= 0 {
			errs = append(errs, fmt.Errorf("%s: must be positive", d.key))
		}
	}
	if c.AuthFailureLimit < 0 {
		errs = append(errs, errors.New("auth_failure_limit: must be 0 or more"))
	}
	if c.AuthFailureLimit > 0 && c.AuthFailureWindow <= 0 {
		errs = append(errs, errors.New("auth_failure_window: must be positive"))
	}
	if c.BatchMaxCount < 1 {
		errs = append(errs, errors.New("batch_max_count: must be positive"))
	}
	if err := c.TLS.ValidateServer("tls"); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Input serves HTTP.
type Input struct {
	cfg Config
	set pipeline.Settings

	mu     sync.Mutex
	addr   net.Addr
	tokens [][32]byte // SHA-256 of each token
	out    pipeline.Emitter
	ctx    context.Context
	fails  *failLimiter

	// rejected counts error answers by status and reason; logs writes the
	// first of each reason a minute.
	rejected func(delta float64, labelValues ...string)
	logs     *ratelog.Keyed
}

var _ pipeline.Input = (*Input)(nil)

// New returns an HTTP input; it listens only when run.
func New(set pipeline.Settings, cfg Config) (*Input, error) {
	declare(set, cfg)
	in := &Input{
		cfg: cfg, set: set, fails: newFailLimiter(cfg.AuthFailureLimit, cfg.AuthFailureWindow.D()),
		rejected: func(float64, ...string) {}, logs: ratelog.EveryKeyed(time.Minute),
	}
	if set.Telemetry != nil {
		in.rejected = set.Telemetry.Counter("http_input_rejected_total",
			"Requests the HTTP input answered with an error, by status and reason.", "status", "reason")
		for _, e := range rejections { // every answer's series exists from zero
			if e != errLimited || cfg.AuthFailureLimit > 0 {
				in.rejected(0, strconv.Itoa(e.code), e.reason)
			}
		}
	}
	return in, nil
}

// Factory registers the input.
func Factory() pipeline.Factory[pipeline.Input] {
	return pipeline.NewFactory(Type, sample, DefaultConfig, func(s pipeline.Settings, c Config) (pipeline.Input, error) {
		return New(s, c)
	}).WithSummary("NDJSON, lines or native frames over HTTP(S), answered after delivery")
}

// Addr is the bound address once Run listens.
func (in *Input) Addr() net.Addr {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.addr
}

// loadTokens hashes the configured tokens: comparing fixed-size digests in
// constant time hides both the content and the length of the real tokens.
func (in *Input) loadTokens() error {
	toks := append([]string(nil), in.cfg.Tokens...)
	if in.cfg.TokenFile != "" {
		path := in.set.Resolve(in.cfg.TokenFile)
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("token_file: %w", err)
		}
		n := 0
		for i, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if err := config.CheckToken(line); err != nil {
				return fmt.Errorf("token_file %s: line %d %v", path, i+1, err)
			}
			toks = append(toks, line)
			n++
		}
		if n == 0 {
			return fmt.Errorf("token_file %s: no token", path)
		}
	}
	hashes := make([][32]byte, len(toks))
	for i, t := range toks {
		hashes[i] = sha256.Sum256([]byte(t))
	}
	in.tokens = hashes
	return nil
}

func (in *Input) Run(ctx context.Context, out pipeline.Emitter) error {
	if err := in.loadTokens(); err != nil {
		return err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", in.cfg.Address)
	if err != nil {
		return err
	}
	ln = netio.LimitListener(ln, netio.LimitOpts{Max: in.cfg.MaxConnections}, in.set)
	scheme := "http"
	if in.cfg.TLS.On() {
		cfg, err := in.cfg.TLS.ServerConfig(in.set)
		if err != nil {
			ln.Close()
			return err
		}
		ln = tls.NewListener(ln, cfg)
		scheme = "https"
	}
	in.mu.Lock()
	in.addr, in.out, in.ctx = ln.Addr(), out, ctx
	in.mu.Unlock()
	srv := &http.Server{
		Handler:           in,
		ReadHeaderTimeout: in.cfg.ReadHeaderTimeout.D(),
		ReadTimeout:       in.cfg.ReadTimeout.D(),
		// The response waits for the acknowledgement.
		WriteTimeout:   in.cfg.ReadTimeout.D() + in.cfg.AckTimeout.D() + 5*time.Second,
		IdleTimeout:    in.cfg.IdleTimeout.D(),
		MaxHeaderBytes: 32 << 10,
		// A connection whose request is being served (its acknowledgement
		// awaited) is busy, never evicted for a new one at max_connections:
		// net/http reads in the background meanwhile, which looks idle.
		ConnState: func(c net.Conn, st http.ConnState) {
			switch st {
			case http.StateActive:
				netio.SetBusy(c, true)
			case http.StateIdle:
				netio.SetBusy(c, false)
			}
		},
		ErrorLog:    log.New(serverLog{in.set}, "", 0),
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	in.set.Logger.Info("listening", "address", scheme+"://"+ln.Addr().String()+in.cfg.Path)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Requests in flight get a moment to finish (they answer 503 once
	// their acknowledgement fails), then everything is closed.
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	<-errc
	return nil
}

// serverLog sends net/http's own messages to the plugin logger; failed TLS
// handshakes are counted.
type serverLog struct{ set pipeline.Settings }

func (l serverLog) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	if strings.Contains(msg, "TLS handshake error") {
		l.set.Error("tls_handshake")
		l.set.Logger.Debug(msg)
	} else {
		l.set.Logger.Warn(msg)
	}
	return len(p), nil
}

// Error answers: the status, the reason that labels
// tern_http_input_rejected_total, and the body.
var (
	errNotFound      = httpError{http.StatusNotFound, "not_found", "not found"}
	errMethod        = httpError{http.StatusMethodNotAllowed, "method", "use POST"}
	errAuth          = httpError{http.StatusUnauthorized, "auth", ""} // no body: nothing to learn from it
	errLimited       = httpError{http.StatusTooManyRequests, "auth_rate_limited", "too many failed authentications"}
	errEncoding      = httpError{http.StatusUnsupportedMediaType, "content_encoding", "Content-Encoding must be gzip or identity"}
	errBodyTooLarge  = httpError{http.StatusRequestEntityTooLarge, "body_too_large", "body larger than max_body_bytes"}
	errUnzipTooLarge = httpError{http.StatusRequestEntityTooLarge, "decompressed_too_large", "decompressed body larger than max_decompressed_bytes"}
	errRecordLarge   = httpError{http.StatusRequestEntityTooLarge, "record_too_large", "a record is larger than max_record_bytes"}
	errTimeout       = httpError{http.StatusServiceUnavailable, "ack_timeout", "delivery not acknowledged in time"}
	errNotDelivered  = httpError{http.StatusServiceUnavailable, "not_delivered", "not delivered"}
	errStopping      = httpError{http.StatusServiceUnavailable, "stopping", "shutting down"}
)

type httpError struct {
	code   int
	reason string
	msg    string
}

func (e httpError) Error() string { return e.msg }

func (in *Input) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != in.cfg.Path {
		in.fail(w, r, errNotFound)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		in.fail(w, r, errMethod)
		return
	}
	// Credentials first: a valid token passes even from a client over the
	// failure limit (a sender behind the same NAT as a guesser, or one that
	// sent a stale token for a while). Checking costs a hash; the limit
	// still turns a guesser's 401s into 429s with Retry-After.
	if !in.authorized(r) {
		key, now := clientKey(clientIP(r.RemoteAddr)), time.Now()
		if wait := in.fails.blocked(key, now); wait > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds()+0.999)))
			in.fail(w, r, errLimited)
			return
		}
		in.fails.record(key, now)
		w.Header().Set("WWW-Authenticate", `Bearer realm="tern"`)
		in.fail(w, r, errAuth)
		return
	}
	n, err := in.receive(r)
	if err != nil {
		var he httpError
		if !errors.As(err, &he) {
			he = httpError{http.StatusBadRequest, "bad_request", err.Error()}
		}
		if he.code == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", strconv.Itoa(int(in.cfg.RetryAfter.D().Seconds()+0.999)))
		}
		in.fail(w, r, he)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "{\"accepted\":%d}\n", n)
}

// fail answers with e, counts it and logs the first of its reason each
// minute (never a header: tokens stay out of the log).
func (in *Input) fail(w http.ResponseWriter, r *http.Request, e httpError) {
	in.rejected(1, strconv.Itoa(e.code), e.reason)
	in.logs.For(e.reason).Warn(in.set.Logger, "request rejected", "status", e.code, "reason", e.reason,
		"remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path, "detail", e.msg)
	if e.msg == "" {
		w.WriteHeader(e.code)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(e.code)
	_, _ = io.WriteString(w, e.msg+"\n")
}

// authorized accepts a verified client certificate (mutual TLS) or a
// bearer token. Every configured token is compared, in constant time, so
// the time taken says nothing about which bytes matched.
func (in *Input) authorized(r *http.Request) bool {
	if in.cfg.TLS.CAFile != "" && r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		return true
	}
	if len(in.tokens) == 0 {
		return in.cfg.InsecureNoAuth
	}
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(h[len(prefix):])))
	ok := 0
	for i := range in.tokens {
		ok |= subtle.ConstantTimeCompare(got[:], in.tokens[i][:])
	}
	return ok == 1
}

func clientIP(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return remote
}

// receive reads the body, emits its records in batches and waits for the
// acknowledgement of every batch. It returns the number of records.
func (in *Input) receive(r *http.Request) (int, error) {
	in.mu.Lock()
	out, runCtx := in.out, in.ctx
	in.mu.Unlock()
	if out == nil {
		return 0, errStopping
	}
	if r.ContentLength > int64(in.cfg.MaxBodyBytes) {
		return 0, errBodyTooLarge
	}
	var body io.Reader = http.MaxBytesReader(nil, r.Body, int64(in.cfg.MaxBodyBytes))
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return 0, readError(err, "bad_gzip")
		}
		defer zr.Close()
		body = &capReader{r: zr, left: int64(in.cfg.MaxDecompressedBytes)}
	default:
		return 0, errEncoding
	}

	ctx, cancel := context.WithTimeout(r.Context(), in.cfg.AckTimeout.D())
	defer cancel()
	acks := newAckGroup()
	src := "http://" + r.RemoteAddr
	b := &batcher{in: in, ctx: ctx, out: out, acks: acks, src: src}
	var err error
	if in.cfg.Framing == FramingFrames {
		err = b.frames(body)
	} else {
		err = b.lines(body)
	}
	if err == nil {
		err = b.flush()
	}
	acks.seal()
	if err != nil {
		return b.n, err
	}
	select {
	case <-acks.done:
		if acks.err != nil {
			return b.n, errNotDelivered
		}
		return b.n, nil
	case <-ctx.Done():
		if runCtx.Err() != nil {
			return b.n, errStopping
		}
		return b.n, errTimeout
	}
}

// batcher copies records into a batch buffer (the readers reuse theirs)
// and emits every batch_max_count records or 1 MiB.
type batcher struct {
	in   *Input
	ctx  context.Context
	out  pipeline.Emitter
	acks *ackGroup
	src  string
	buf  []byte
	ends []int
	recs []pipeline.Record
	n    int
}

func (b *batcher) add(p []byte) error {
	b.buf = append(b.buf, p...)
	b.ends = append(b.ends, len(b.buf))
	if len(b.ends) >= b.in.cfg.BatchMaxCount || len(b.buf) >= 1<<20 {
		return b.flush()
	}
	return nil
}

func (b *batcher) flush() error {
	if len(b.ends) == 0 {
		return nil
	}
	b.recs = b.recs[:0]
	start := 0
	for _, end := range b.ends {
		b.recs = append(b.recs, pipeline.Record{Data: b.buf[start:end:end], Source: b.src})
		start = end
	}
	b.acks.add()
	if err := b.out.Emit(b.ctx, b.recs, b.acks.ack); err != nil {
		// The engine calls the ack (with an error) anyway.
		if b.ctx.Err() != nil && !errors.Is(context.Cause(b.ctx), context.Canceled) {
			return errTimeout
		}
		return errStopping
	}
	b.n += len(b.ends)
	b.buf, b.ends = b.buf[:0], b.ends[:0]
	return nil
}

func (b *batcher) lines(body io.Reader) error {
	// The line reader hands out an unterminated last line when its reader
	// fails; that is right at the end of a body, wrong when the body broke
	// off (a cap, a bad gzip stream): trap the failure and check it first.
	trap := &errTrap{r: body}
	lr := framing.NewLineReader(trap, b.in.cfg.MaxRecordBytes.N())
	for {
		line, err := lr.Next()
		if trap.err != nil {
			return readError(trap.err, "bad_body")
		}
		if lr.Oversize() > 0 {
			b.in.set.Drop("oversize", 1)
			return errRecordLarge
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return readError(err, "bad_body")
		}
		if len(line) == 0 {
			continue
		}
		if err := b.add(line); err != nil {
			return err
		}
	}
}

func (b *batcher) frames(body io.Reader) error {
	fr := framing.NewFrameReader(bufio.NewReaderSize(body, 64<<10), b.in.cfg.MaxRecordBytes.N())
	for {
		kind, payload, err := fr.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			if errors.Is(err, framing.ErrFrameTooLarge) {
				b.in.set.Drop("oversize", 1)
				return errRecordLarge
			}
			return readError(err, "bad_frame")
		}
		if kind != framing.FrameMessage {
			return httpError{http.StatusBadRequest, "bad_frame", fmt.Sprintf("frame kind %q is not a message", kind)}
		}
		if err := b.add(payload); err != nil {
			return err
		}
	}
}

// readError maps a body read failure to its answer; reason labels one
// that is none of the known kinds.
func readError(err error, reason string) error {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return errBodyTooLarge
	case errors.Is(err, errDecompressedTooLarge):
		return errUnzipTooLarge
	case netio.IsTimeout(err):
		return httpError{http.StatusRequestTimeout, "body_timeout", "body not received in time"}
	case errors.Is(err, gzip.ErrHeader), errors.Is(err, gzip.ErrChecksum):
		return httpError{http.StatusBadRequest, "bad_gzip", "bad gzip body: " + err.Error()}
	}
	return httpError{http.StatusBadRequest, reason, "bad body: " + err.Error()}
}

// errTrap remembers a read error other than io.EOF.
type errTrap struct {
	r   io.Reader
	err error
}

func (t *errTrap) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		t.err = err
	}
	return n, err
}

var errDecompressedTooLarge = errors.New("decompressed body too large")

// capReader fails once more than left bytes were read, so a decompression
// bomb stops at the cap instead of filling memory.
type capReader struct {
	r    io.Reader
	left int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		// One byte more tells a body of exactly the cap from a larger one.
		var one [1]byte
		n, err := c.r.Read(one[:])
		if n > 0 {
			return 0, errDecompressedTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	return n, err
}

// ackGroup waits for the acknowledgements of a request's batches.
type ackGroup struct {
	mu      sync.Mutex
	pending int
	sealed  bool
	err     error
	done    chan struct{}
}

func newAckGroup() *ackGroup { return &ackGroup{done: make(chan struct{})} }

func (g *ackGroup) add() {
	g.mu.Lock()
	g.pending++
	g.mu.Unlock()
}

// ack may run on any goroutine, after the request was answered.
func (g *ackGroup) ack(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil && g.err == nil {
		g.err = err
	}
	g.pending--
	if g.sealed && g.pending == 0 {
		close(g.done)
	}
}

func (g *ackGroup) seal() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.sealed = true
	if g.pending == 0 {
		close(g.done)
	}
}

// failLimiter counts authentication failures per client in fixed windows;
// a client over the limit gets 429 instead of 401 until its window ends.
// Clients are IPv4 addresses and IPv6 /64 networks (one host usually has a
// whole /64, and could otherwise spray it). It tracks at most max clients,
// evicting the one seen least recently when full: a client that keeps
// trying stays tracked (and limited) however many others fail, where
// forgetting every client at once let a spray of addresses lift any limit.
// Every operation is O(1).
type failLimiter struct {
	limit  int
	window time.Duration
	max    int
	mu     sync.Mutex
	m      map[string]*failWindow
	lru    failWindow // sentinel of the list: lru.next is the least recently seen
}

type failWindow struct {
	key        string
	start      time.Time
	n          int
	prev, next *failWindow
}

// maxTracked bounds the memory of the limiter under a flood of addresses.
const maxTracked = 1 << 16

func newFailLimiter(limit int, window time.Duration) *failLimiter {
	l := &failLimiter{limit: limit, window: window, max: maxTracked, m: map[string]*failWindow{}}
	l.lru.prev, l.lru.next = &l.lru, &l.lru
	return l
}

func (l *failLimiter) unlink(w *failWindow) {
	w.prev.next, w.next.prev = w.next, w.prev
}

// touch makes w the most recently seen.
func (l *failLimiter) touch(w *failWindow) {
	if w.next != nil {
		l.unlink(w)
	}
	w.prev, w.next = l.lru.prev, &l.lru
	l.lru.prev.next = w
	l.lru.prev = w
}

// blocked returns how long the client must still wait, or 0. A blocked
// client counts as seen.
func (l *failLimiter) blocked(key string, now time.Time) time.Duration {
	if l.limit == 0 {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.m[key]
	if w == nil || now.Sub(w.start) >= l.window || w.n < l.limit {
		return 0
	}
	l.touch(w)
	return w.start.Add(l.window).Sub(now)
}

func (l *failLimiter) record(key string, now time.Time) {
	if l.limit == 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.m[key]
	switch {
	case w != nil && now.Sub(w.start) < l.window:
		w.n++
	case w != nil:
		w.start, w.n = now, 1
	default:
		if len(l.m) >= l.max {
			old := l.lru.next
			l.unlink(old)
			delete(l.m, old.key)
		}
		w = &failWindow{key: key, start: now, n: 1}
		l.m[key] = w
	}
	l.touch(w)
}

// clientKey is what the failure limit counts: the address, or its /64 for
// IPv6.
func clientKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Is4() || a.Is4In6() {
		if err == nil {
			return a.Unmap().String()
		}
		return ip
	}
	p, _ := a.WithZone("").Prefix(64)
	return p.String()
}
