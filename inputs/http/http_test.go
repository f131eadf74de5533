package http_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
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

	ternhttp "github.com/ternlog/tern/inputs/http"
	"github.com/ternlog/tern/internal/testutil/nettest"
	"github.com/ternlog/tern/internal/testutil/testpki"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/framing"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const token = "s3cr3t-token-0123456789"

type rig struct {
	url  string
	em   *pipelinetest.Emitter
	tel  *pipelinetest.Telemetry
	logs *pipelinetest.SyncBuffer
}

func start(t *testing.T, mod func(*ternhttp.Config), em *pipelinetest.Emitter) rig {
	t.Helper()
	cfg := ternhttp.DefaultConfig()
	cfg.Address = "127.0.0.1:0"
	cfg.Tokens = []string{token}
	if mod != nil {
		mod(&cfg)
	}
	require.NoError(t, cfg.Validate())
	set := pipelinetest.Settings(t, "inputs.http")
	logs := &pipelinetest.SyncBuffer{}
	set.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	})
	in, err := ternhttp.New(set, cfg)
	require.NoError(t, err)
	if em == nil {
		em = &pipelinetest.Emitter{}
	}
	addr := nettest.RunInput(t, in, em, in.Addr)
	scheme := "http"
	if cfg.TLS.On() {
		scheme = "https"
	}
	return rig{url: scheme + "://" + addr + cfg.Path, em: em, tel: set.Telemetry.(*pipelinetest.Telemetry), logs: logs}
}

func post(t *testing.T, c *http.Client, url, auth string, body io.Reader, hdr map[string]string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, body)
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if c == nil {
		c = http.DefaultClient
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// R23 on the HTTP input: every line arrives byte for byte.
func TestNDJSONAndRawLines(t *testing.T) {
	r := start(t, nil, nil)
	lines := []string{`{"a":1}`, `{"b":"\u00e9"}`, "raw \xff\xfe bytes \x00 nul", "\xc0\xaf overlong \u2028"}
	code, body, _ := post(t, nil, r.url, "Bearer "+token, strings.NewReader(strings.Join(lines, "\n")+"\n\n"), nil)
	require.Equal(t, http.StatusOK, code, body)
	assert.JSONEq(t, `{"accepted":4}`, body)
	assert.Equal(t, lines, r.em.Lines())
	assert.True(t, strings.HasPrefix(r.em.Records[0].Source, "http://127.0.0.1:"))
}

func TestRespondsOnlyAfterTheAck(t *testing.T) {
	var mu sync.Mutex
	var pending []pipeline.AckFunc
	em := &pipelinetest.Emitter{Ack: func(_ []pipeline.Record, ack pipeline.AckFunc) {
		mu.Lock()
		pending = append(pending, ack)
		mu.Unlock()
	}}
	r := start(t, func(c *ternhttp.Config) {
		c.AckTimeout = config.Duration(500 * time.Millisecond)
		c.RetryAfter = config.Duration(7 * time.Second)
	}, em)
	settle := func(err error) {
		require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(pending) > 0 }, 10*time.Second, 5*time.Millisecond)
		mu.Lock()
		ack := pending[0]
		pending = pending[1:]
		mu.Unlock()
		ack(err)
	}

	type result struct {
		code int
		body string
		h    http.Header
	}
	do := func() chan result {
		ch := make(chan result, 1)
		go func() {
			code, body, h := post(t, nil, r.url, "Bearer "+token, strings.NewReader("x\n"), nil)
			ch <- result{code, body, h}
		}()
		return ch
	}

	// Acknowledged: 200, but not before the ack.
	ch := do()
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(pending) == 1 }, 10*time.Second, 5*time.Millisecond)
	select {
	case res := <-ch:
		t.Fatalf("answered %d before the ack", res.code)
	case <-time.After(100 * time.Millisecond):
	}
	settle(nil)
	assert.Equal(t, http.StatusOK, (<-ch).code)

	// Not delivered (the engine stopped first): 503 with Retry-After.
	ch = do()
	settle(pipeline.ErrStopped)
	res := <-ch
	assert.Equal(t, http.StatusServiceUnavailable, res.code)
	assert.Equal(t, "7", res.h.Get("Retry-After"))
	assert.Contains(t, res.body, "not delivered")

	// Never acknowledged: 503 at ack_timeout.
	ch = do()
	res = <-ch
	assert.Equal(t, http.StatusServiceUnavailable, res.code)
	assert.Contains(t, res.body, "not acknowledged in time")
	assert.Equal(t, 1.0, r.tel.CountWith("http_input_rejected_total", "503", "ack_timeout"))
	assert.Equal(t, 1.0, r.tel.CountWith("http_input_rejected_total", "503", "not_delivered"))
	settle(nil) // late acks are harmless
}

// R35: no token, a wrong one, a prefix of the right one: 401 with an empty
// body and nothing accepted; the token never reaches the logs.
func TestBearerAuth(t *testing.T) {
	r := start(t, func(c *ternhttp.Config) { c.AuthFailureLimit = 0 }, nil)
	for _, auth := range []string{"", "Bearer wrong", "Bearer " + token[:len(token)-1], "Bearer " + token + "x", "Basic " + token, token, "Bearer"} {
		code, body, h := post(t, nil, r.url, auth, strings.NewReader("forged\n"), nil)
		assert.Equal(t, http.StatusUnauthorized, code, "auth %q", auth)
		assert.Empty(t, body)
		assert.Contains(t, h.Get("WWW-Authenticate"), "Bearer")
	}
	assert.Empty(t, r.em.Lines(), "nothing may be accepted without a valid token")
	code, _, _ := post(t, nil, r.url, "bearer "+token, strings.NewReader("ok\n"), nil)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, []string{"ok"}, r.em.Lines())
	assert.NotContains(t, r.logs.String(), token[:8], "the token must never be logged")
}

func TestTokenFile(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tokens"), []byte("# senders\nfile-token-1\n\nfile-token-2\n"), 0o600))
	r := start(t, func(c *ternhttp.Config) { c.Tokens = nil; c.TokenFile = filepath.Join(dir, "tokens") }, nil)
	code, _, _ := post(t, nil, r.url, "Bearer file-token-2", strings.NewReader("x\n"), nil)
	assert.Equal(t, http.StatusOK, code)
	code, _, _ = post(t, nil, r.url, "Bearer "+token, strings.NewReader("x\n"), nil)
	assert.Equal(t, http.StatusUnauthorized, code)
}

func gzipped(t *testing.T, parts ...[]byte) []byte {
	var b bytes.Buffer
	zw, err := gzip.NewWriterLevel(&b, gzip.BestSpeed)
	require.NoError(t, err)
	for _, p := range parts {
		_, err := zw.Write(p)
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	return b.Bytes()
}

func TestGzipAndLimits(t *testing.T) {
	r := start(t, func(c *ternhttp.Config) {
		c.MaxBodyBytes = 256 << 10
		c.MaxDecompressedBytes = 1 << 20
		c.MaxRecordBytes = 4 << 20 // so that the body caps act first
	}, nil)
	auth := "Bearer " + token
	gz := map[string]string{"Content-Encoding": "gzip"}

	code, body, _ := post(t, nil, r.url, auth, bytes.NewReader(gzipped(t, []byte("z1\nz2\n"))), gz)
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, []string{"z1", "z2"}, r.em.Lines())

	// R22, scaled: 64 MiB of zeros in about 64 KiB of gzip.
	zeros := make([]byte, 1<<20)
	var parts [][]byte
	for range 64 {
		parts = append(parts, zeros)
	}
	bomb := gzipped(t, parts...)
	require.Less(t, len(bomb), 256<<10)
	code, body, _ = post(t, nil, r.url, auth, bytes.NewReader(bomb), gz)
	assert.Equal(t, http.StatusRequestEntityTooLarge, code)
	assert.Contains(t, body, "max_decompressed_bytes")
	// The same bomb streamed without Content-Length (chunked).
	pr, pw := io.Pipe()
	go func() { _, _ = pw.Write(bomb); pw.Close() }()
	code, _, _ = post(t, nil, r.url, auth, pr, gz)
	assert.Equal(t, http.StatusRequestEntityTooLarge, code)

	// Raw body over the cap, with and without Content-Length.
	big := bytes.Repeat([]byte("0123456789abcde\n"), 32<<10)
	code, body, _ = post(t, nil, r.url, auth, bytes.NewReader(big), nil)
	assert.Equal(t, http.StatusRequestEntityTooLarge, code)
	assert.Contains(t, body, "max_body_bytes")
	pr, pw = io.Pipe()
	go func() { _, _ = pw.Write(big); pw.Close() }()
	code, _, _ = post(t, nil, r.url, auth, pr, nil)
	assert.Equal(t, http.StatusRequestEntityTooLarge, code)

	small := start(t, func(c *ternhttp.Config) { c.MaxRecordBytes = 1000 }, nil)
	code, body, _ = post(t, nil, small.url, auth, strings.NewReader("fits\n"+strings.Repeat("L", 1001)+"\n"), nil)
	assert.Equal(t, http.StatusRequestEntityTooLarge, code)
	assert.Contains(t, body, "max_record_bytes")
	assert.Equal(t, 1, small.tel.Dropped("oversize"))
	assert.Empty(t, small.em.Lines())

	code, _, _ = post(t, nil, r.url, auth, strings.NewReader("not gzip"), gz)
	assert.Equal(t, http.StatusBadRequest, code)
	code, _, _ = post(t, nil, r.url, auth, strings.NewReader("x"), map[string]string{"Content-Encoding": "br"})
	assert.Equal(t, http.StatusUnsupportedMediaType, code)
	// Bodies are streamed in batches: the chunked one over the cap had whole
	// batches accepted before the cap showed, which is documented (a retry
	// may duplicate them; nothing is lost). Nothing else got in.
	for _, l := range r.em.Lines()[2:] {
		assert.Equal(t, "0123456789abcde", l)
	}
}

func TestMethodsAndPaths(t *testing.T) {
	r := start(t, func(c *ternhttp.Config) { c.Path = "/ingest" }, nil)
	resp, err := http.Get(r.url)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	code, _, _ := post(t, nil, strings.TrimSuffix(r.url, "/ingest")+"/other", "Bearer "+token, strings.NewReader("x"), nil)
	assert.Equal(t, http.StatusNotFound, code)
}

func TestNativeFrames(t *testing.T) {
	r := start(t, func(c *ternhttp.Config) { c.Framing = ternhttp.FramingFrames }, nil)
	var body []byte
	for i := range 3 {
		m := pipeline.NewMessage()
		m.Type = "t"
		m.Payload = fmt.Sprintf("message %d \xff", i)
		m.AddString("k", "v")
		body = framing.AppendMessageFrame(body, m)
	}
	code, resp, _ := post(t, nil, r.url, "Bearer "+token, bytes.NewReader(body), map[string]string{"Content-Type": "application/x-tern-frames"})
	require.Equal(t, http.StatusOK, code, resp)
	require.Len(t, r.em.Records, 3)
	for i, rec := range r.em.Records {
		m := pipeline.NewMessage()
		require.NoError(t, codec.DecodeMsgpackBytes(rec.Data, m, pipeline.NewBatch()))
		assert.Equal(t, fmt.Sprintf("message %d \xff", i), m.Payload)
	}
	code, _, _ = post(t, nil, r.url, "Bearer "+token, strings.NewReader("{not a frame}"), nil)
	assert.Equal(t, http.StatusBadRequest, code)
	code, _, _ = post(t, nil, r.url, "Bearer "+token, bytes.NewReader(body[:len(body)-3]), nil)
	assert.Equal(t, http.StatusBadRequest, code, "a truncated frame")
}

// R21 (d), scaled: a partial request holding the only slot is evicted by
// the header timeout; connections over the cap are closed and counted; a
// legitimate client then gets through.
func TestSlowlorisAndMaxConnections(t *testing.T) {
	r := start(t, func(c *ternhttp.Config) {
		c.MaxConnections = 1
		c.ReadHeaderTimeout = config.Duration(300 * time.Millisecond)
	}, nil)
	host := strings.TrimPrefix(strings.TrimSuffix(r.url, "/"), "http://")
	slow, err := net.Dial("tcp", host)
	require.NoError(t, err)
	defer slow.Close()
	_, err = io.WriteString(slow, "POST / HTTP/1.1\r\n")
	require.NoError(t, err)

	require.Eventually(t, func() bool { return r.tel.Count("connections_refused_total") > 0 || tryPost(r.url) }, 10*time.Second, 20*time.Millisecond)
	_ = slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _ = io.Copy(io.Discard, slow) // the server closes it (after a 408)
	require.Eventually(t, func() bool { return tryPost(r.url) }, 10*time.Second, 50*time.Millisecond, "a legitimate client must get through once the slot frees")
}

func tryPost(url string) bool {
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader("legit\n"))
	req.Header.Set("Authorization", "Bearer "+token)
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// R34 subset: with mutual TLS only clients with a certificate from the
// configured CA get in, and that certificate is enough to authenticate.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "http CA")
	other := testpki.NewCA(t, "other CA")
	r := start(t, func(c *ternhttp.Config) {
		c.Tokens = nil
		c.TLS.CertFile, c.TLS.KeyFile = ca.Issue(t, testpki.Opts{}).Write(t, dir, "server")
		c.TLS.CAFile = ca.WriteCA(t, dir, "ca")
	}, nil)
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), Certificates: certs},
		}}
	}
	cases := []struct {
		name string
		c    *http.Client
	}{
		{"no client cert", client()},
		{"wrong CA", client(other.Issue(t, testpki.Opts{CN: "c", Client: true}).TLSCert(t))},
		{"expired", client(ca.Issue(t, testpki.Expired(testpki.Opts{CN: "c", Client: true})).TLSCert(t))},
	}
	for i, c := range cases {
		req, _ := http.NewRequest(http.MethodPost, r.url, strings.NewReader(c.name+"\n"))
		resp, err := c.c.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		assert.Error(t, err, c.name)
		require.Eventually(t, func() bool { return r.tel.Errored("tls_handshake") == i+1 }, 10*time.Second, 10*time.Millisecond, c.name)
	}
	valid := client(ca.Issue(t, testpki.Opts{CN: "c", Client: true}).TLSCert(t))
	code, body, _ := post(t, valid, r.url, "", strings.NewReader("valid\n"), nil)
	assert.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, []string{"valid"}, r.em.Lines())
}

func TestValidate(t *testing.T) {
	cfg := ternhttp.DefaultConfig()
	cfg.Address = "127.0.0.1:1"
	err := cfg.Validate()
	assert.ErrorContains(t, err, "token_file: set tokens, token_file or tls.ca_file")
	cfg.Tokens = []string{"has space"}
	cfg.Framing = "ndjson"
	err = cfg.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "tokens: token 1 holds a space")
	assert.NotContains(t, err.Error(), "has space", "errors never quote a token")
	assert.Contains(t, err.Error(), "framing: must be lines or frames")
}

// FuzzHandler feeds arbitrary bodies, encodings and framings to the
// handler: no panic, and only the documented answers.
func FuzzHandler(f *testing.F) {
	f.Add([]byte("a\nb\n"), false, false)
	f.Add(framing.AppendFrame(nil, 'M', []byte{0x90}), true, false)
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff}, false, true)
	f.Add([]byte{0x1e, 'M', 0xff, 0xff, 0xff, 0xff}, true, false)
	f.Fuzz(func(t *testing.T, body []byte, frames, gz bool) {
		cfg := ternhttp.DefaultConfig()
		cfg.Address = "127.0.0.1:0"
		cfg.InsecureNoAuth = true
		cfg.MaxRecordBytes = 4096
		cfg.MaxDecompressedBytes = 1 << 20
		if frames {
			cfg.Framing = ternhttp.FramingFrames
		}
		set := pipelinetest.Settings(t, "inputs.http")
		set.Logger = slog.New(slog.DiscardHandler)
		in, err := ternhttp.New(set, cfg)
		require.NoError(t, err)
		em := &pipelinetest.Emitter{}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		require.NoError(t, ternhttp.Attach(in, ctx, em))
		req, _ := http.NewRequest(http.MethodPost, "http://x/", bytes.NewReader(body))
		req.RemoteAddr = "192.0.2.1:1"
		if gz {
			req.Header.Set("Content-Encoding", "gzip")
		}
		w := httptest.NewRecorder()
		in.ServeHTTP(w, req)
		switch w.Code {
		case http.StatusOK, http.StatusBadRequest, http.StatusRequestEntityTooLarge:
		default:
			t.Fatalf("status %d", w.Code)
		}
	})
}

// TestGolden POSTs testdata/<case>/body.txt (with the first configured
// token, if any); expected.txt holds the status, the body and the records.
func TestGolden(t *testing.T) {
	for _, c := range pipelinetest.Cases(t, "") {
		t.Run(c.Name, func(t *testing.T) {
			cfg := pipelinetest.ConfigFor(t, ternhttp.Factory(), c).(*ternhttp.Config)
			r := start(t, func(x *ternhttp.Config) { *x = *cfg; x.Address = "127.0.0.1:0" }, nil)
			body, err := os.ReadFile(filepath.Join(c.Dir, "body.txt"))
			require.NoError(t, err)
			auth := ""
			if len(cfg.Tokens) > 0 {
				auth = "Bearer " + cfg.Tokens[0]
			}
			code, resp, _ := post(t, nil, r.url, auth, bytes.NewReader(body), nil)
			got := fmt.Sprintf("%d %s", code, resp)
			got += string(nettest.FormatRecords(r.em.Records))
			pipelinetest.Golden(t, filepath.Join(c.Dir, "expected.txt"), []byte(got))
		})
	}
}
