package http_test

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ternlog/tern/internal/testutil/testpki"
	ternhttp "github.com/ternlog/tern/outputs/http"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// request is what the test server saw.
type request struct {
	method string
	header http.Header
	body   string
}

// server is a real HTTP(S) server on loopback that answers with the codes
// the test queues (200 when the queue is empty).
type server struct {
	url   string
	mu    sync.Mutex
	reqs  []request
	codes []int
	hdrs  []map[string]string
}

func newServer(t *testing.T, tlsCfg *tls.Config) *server {
	s := &server{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	scheme := "http"
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
		scheme = "https"
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	done := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(done) }()
	t.Cleanup(func() { srv.Close(); <-done })
	s.url = scheme + "://" + ln.Addr().String() + "/ingest"
	return s
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			w.WriteHeader(400)
			return
		}
		body = zr
	}
	b, _ := io.ReadAll(body)
	s.mu.Lock()
	s.reqs = append(s.reqs, request{r.Method, r.Header.Clone(), string(b)})
	code := 200
	var hdr map[string]string
	if len(s.codes) > 0 {
		code, s.codes = s.codes[0], s.codes[1:]
		hdr, s.hdrs = s.hdrs[0], s.hdrs[1:]
	}
	s.mu.Unlock()
	for k, v := range hdr {
		w.Header().Set(k, v)
	}
	w.WriteHeader(code)
	_, _ = io.WriteString(w, "reason\r\nwith a line break")
}

func (s *server) answer(code int, hdr map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes = append(s.codes, code)
	s.hdrs = append(s.hdrs, hdr)
}

func (s *server) requests() []request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]request(nil), s.reqs...)
}

func newOutput(t *testing.T, mod func(*ternhttp.Config)) (*ternhttp.Output, *pipelinetest.Telemetry) {
	t.Helper()
	o, tel := pipelinetest.Build(t, "outputs.http", ternhttp.DefaultConfig, mod, ternhttp.New)
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

func TestBatchNDJSONWithGzipHeadersAndBearer(t *testing.T) {
	s := newServer(t, nil)
	o, _ := newOutput(t, func(c *ternhttp.Config) {
		c.URL = s.url
		c.Gzip = true
		c.Headers = map[string]string{"X-Source": "tern"}
		c.BearerToken = "tok-123"
	})
	require.NoError(t, o.Write(context.Background(), batch(`{"a":1}`, "{\"b\":\"\xff\"}")))
	reqs := s.requests()
	require.Len(t, reqs, 1)
	r := reqs[0]
	assert.Equal(t, "POST", r.method)
	assert.Equal(t, "{\"a\":1}\n{\"b\":\"\xff\"}\n", r.body)
	assert.Equal(t, "application/x-ndjson", r.header.Get("Content-Type"))
	assert.Equal(t, "gzip", r.header.Get("Content-Encoding"))
	assert.Equal(t, "tern", r.header.Get("X-Source"))
	assert.Equal(t, "Bearer tok-123", r.header.Get("Authorization"))
}

func TestRecordModeAndBasicAuthFromFile(t *testing.T) {
	s := newServer(t, nil)
	pw := filepath.Join(t.TempDir(), "pw")
	require.NoError(t, os.WriteFile(pw, []byte("hunter2\n"), 0o600))
	o, _ := newOutput(t, func(c *ternhttp.Config) {
		c.URL = s.url
		c.Mode = ternhttp.ModeRecord
		c.ContentType = "application/json"
		c.Username, c.PasswordFile = "tern", pw
	})
	require.NoError(t, o.Write(context.Background(), batch("r1", "r2", "r3")))
	reqs := s.requests()
	require.Len(t, reqs, 3)
	for i, r := range reqs {
		assert.Equal(t, []string{"r1", "r2", "r3"}[i], r.body)
		req := http.Request{Header: r.header}
		u, p, ok := req.BasicAuth()
		assert.True(t, ok)
		assert.Equal(t, "tern", u)
		assert.Equal(t, "hunter2", p)
	}
}

// G4: 5xx, 408, 429 and network errors are retried by the engine; other
// 4xx are permanent, so the engine dead-letters the records.
func TestStatusClassification(t *testing.T) {
	s := newServer(t, nil)
	o, tel := newOutput(t, func(c *ternhttp.Config) { c.URL = s.url })
	for _, code := range []int{500, 502, 503, 408, 429} {
		s.answer(code, nil)
		err := o.Write(context.Background(), batch("x"))
		require.Error(t, err, "%d", code)
		assert.False(t, pipeline.IsPermanent(err), "%d must be retried", code)
		var se *ternhttp.StatusError
		require.ErrorAs(t, err, &se)
		assert.Equal(t, code, se.Code)
		assert.NotContains(t, err.Error(), "\n", "the server's text is made fit for a log line")
	}
	for _, code := range []int{400, 401, 403, 404, 413, 301} {
		s.answer(code, map[string]string{"Location": "/elsewhere"})
		err := o.Write(context.Background(), batch("x"))
		require.Error(t, err)
		assert.True(t, pipeline.IsPermanent(err), "%d is permanent", code)
	}
	assert.Equal(t, 5, tel.Errored("status_retriable"))
	assert.Len(t, s.requests(), 11, "redirects are not followed")

	// Record mode: a permanent failure settles that record only; a
	// retriable one leaves it and the rest for the retry.
	ro, _ := newOutput(t, func(c *ternhttp.Config) { c.URL = s.url; c.Mode = ternhttp.ModeRecord })
	s.answer(200, nil)
	s.answer(400, nil)
	s.answer(200, nil)
	s.answer(503, nil)
	err := ro.Write(context.Background(), batch("a", "b", "c", "d", "e"))
	var pe *pipeline.PartialError
	require.ErrorAs(t, err, &pe)
	assert.NoError(t, pe.Errs[0])
	assert.True(t, pipeline.IsPermanent(pe.Errs[1]))
	assert.NoError(t, pe.Errs[2])
	assert.False(t, pipeline.IsPermanent(pe.Errs[3]))
	assert.Error(t, pe.Errs[4])
	assert.Len(t, s.requests(), 15, "e was not sent after d failed")

	// Nobody listening: a network error, retried.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String() + "/"
	ln.Close()
	do, _ := newOutput(t, func(c *ternhttp.Config) { c.URL = dead; c.Timeout = config.Duration(2 * time.Second) })
	err = do.Write(context.Background(), batch("x"))
	require.Error(t, err)
	assert.False(t, pipeline.IsPermanent(err))
}

// Retry-After is handed to the engine, whose backoff waits at least that
// long (capped by max_retry_after); Write itself returns at once.
func TestHonoursRetryAfter(t *testing.T) {
	s := newServer(t, nil)
	o, _ := newOutput(t, func(c *ternhttp.Config) { c.URL = s.url; c.MaxRetryAfter = config.Duration(10 * time.Second) })
	s.answer(503, map[string]string{"Retry-After": "1"})
	t0 := time.Now()
	err := o.Write(context.Background(), batch("x"))
	require.Error(t, err)
	assert.Less(t, time.Since(t0), 900*time.Millisecond, "Write does not sleep: the engine waits")
	assert.False(t, pipeline.IsPermanent(err))
	d, ok := pipeline.RetryDelay(err)
	assert.True(t, ok)
	assert.Equal(t, time.Second, d)
	var se *ternhttp.StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, time.Second, se.RetryAfter)

	s.answer(429, map[string]string{"Retry-After": "3600"})
	err = o.Write(context.Background(), batch("x"))
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 429, se.Code)
	d, _ = pipeline.RetryDelay(err)
	assert.Equal(t, 10*time.Second, d, "capped at max_retry_after")

	s.answer(503, nil)
	err = o.Write(context.Background(), batch("x"))
	_, ok = pipeline.RetryDelay(err)
	assert.False(t, ok, "no Retry-After, no wait asked")
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "http CA")
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
	write := func(s *server, mod func(*config.TLS)) error {
		o, _ := newOutput(t, func(c *ternhttp.Config) {
			c.URL = s.url
			c.Timeout = config.Duration(10 * time.Second)
			c.TLS.CAFile = caFile
			if mod != nil {
				mod(&c.TLS)
			}
		})
		return o.Write(context.Background(), batch("secret"))
	}
	good := serve(ca.Issue(t, testpki.Opts{}), nil)
	require.NoError(t, write(good, nil))

	wrongName := serve(ca.Issue(t, testpki.Opts{DNS: []string{"collector.example"}, IPs: []net.IP{net.IPv4(192, 0, 2, 7)}}), nil)
	err := write(wrongName, nil)
	require.Error(t, err, "hostname verification is on by default")
	assert.False(t, pipeline.IsPermanent(err))
	require.NoError(t, write(wrongName, func(c *config.TLS) { c.ServerName = "collector.example" }))

	untrusted := serve(other.Issue(t, testpki.Opts{}), nil)
	assert.ErrorContains(t, write(untrusted, nil), "unknown authority")
	expired := serve(ca.Issue(t, testpki.Expired(testpki.Opts{})), nil)
	assert.ErrorContains(t, write(expired, nil), "expired")

	mutual := serve(ca.Issue(t, testpki.Opts{}), ca)
	assert.Error(t, write(mutual, nil), "no client certificate")
	cert, key := ca.Issue(t, testpki.Opts{CN: "tern", Client: true}).Write(t, dir, "client")
	require.NoError(t, write(mutual, func(c *config.TLS) { c.CertFile, c.KeyFile = cert, key }))

	assert.Empty(t, untrusted.requests())
	assert.Empty(t, expired.requests())
	assert.Len(t, mutual.requests(), 1)
}

func TestValidate(t *testing.T) {
	cfg := ternhttp.DefaultConfig()
	cfg.URL = "http://user:pw@h/"
	cfg.Headers = map[string]string{"X-Bad": "a\r\nInjected: yes", "Bad Name": "v"}
	cfg.Mode = "stream"
	cfg.BearerToken = "t"
	cfg.Username = "u"
	err := cfg.Validate()
	require.Error(t, err)
	for _, want := range []string{"url: put credentials", "holds a control character", "is not a valid header name", "mode: must be", "username: use bearer or basic"} {
		assert.Contains(t, err.Error(), want)
	}
	assert.NotContains(t, err.Error(), "pw@", "credentials are never quoted")

	cfg = ternhttp.DefaultConfig()
	cfg.URL = "http://h/"
	cfg.TLS.CAFile = "ca.crt"
	assert.ErrorContains(t, cfg.Validate(), "tls: only for https")
}

func TestContentIsNotTouched(t *testing.T) {
	s := newServer(t, nil)
	o, _ := newOutput(t, func(c *ternhttp.Config) { c.URL = s.url })
	recs := []string{"nul\x00", "\xc0\xaf", "cr\r", strings.Repeat("é", 1000)}
	require.NoError(t, o.Write(context.Background(), batch(recs...)))
	assert.Equal(t, strings.Join(recs, "\n")+"\n", s.requests()[0].body)
}

// liar is a raw TCP server that reads each request and answers 200, but
// every third answer promises a 100-byte body (or a chunked one) and hangs
// up after 10 bytes: the server died mid-answer, so it took nothing.
// Records of complete answers are accepted.
type liar struct {
	url      string
	mu       sync.Mutex
	accepted map[string]int
	answers  int
	lies     int
}

func newLiar(t *testing.T) *liar {
	l := &liar{accepted: map[string]int{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { l.serve(c) })
		}
	})
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	l.url = "http://" + ln.Addr().String() + "/ingest"
	return l
}

func (l *liar) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		body, err := io.ReadAll(req.Body)
		if err != nil {
			return
		}
		l.mu.Lock()
		l.answers++
		lie := l.answers%3 == 0
		if lie {
			l.lies++
		} else {
			for _, rec := range strings.Split(strings.TrimSuffix(string(body), "\n"), "\n") {
				l.accepted[rec]++
			}
		}
		chunked := l.lies%2 == 0
		l.mu.Unlock()
		switch {
		case lie && chunked:
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n64\r\n0123456789")
			return
		case lie:
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
			return
		default:
			_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
	}
}

// A 200 whose body is cut short is not a delivery: the answer is read to
// its end before the batch counts as written, and a truncated one is
// retried. 5,000 records through a server that breaks every third answer
// all arrive.
func TestTruncatedAnswerIsRetried(t *testing.T) {
	l := newLiar(t)
	o, tel := newOutput(t, func(c *ternhttp.Config) { c.URL = l.url })
	const total, per = 5000, 50
	retried := 0
	for start := 0; start < total; start += per {
		recs := make([]string, per)
		for i := range recs {
			recs[i] = fmt.Sprintf("rec-%05d", start+i)
		}
		b := batch(recs...)
		for attempt := 0; ; attempt++ {
			require.Less(t, attempt, 10, "batch at %d never delivered", start)
			err := o.Write(context.Background(), b)
			if err == nil {
				break
			}
			assert.False(t, pipeline.IsPermanent(err), "a truncated answer is retriable: %v", err)
			retried++
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	missing := 0
	for i := 0; i < total; i++ {
		if l.accepted[fmt.Sprintf("rec-%05d", i)] == 0 {
			missing++
		}
	}
	assert.Equal(t, 0, missing, "records counted delivered that the server never took")
	assert.Positive(t, l.lies)
	assert.Equal(t, l.lies, retried, "every broken answer, and only those, is retried")
	assert.Equal(t, l.lies, tel.Errored("response"))
}
