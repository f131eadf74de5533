package engine_test

import (
	"bufio"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ternlog/tern/internal/testutil/testpki"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
	"github.com/ternlog/tern/pipeline/engine"
)

const adminHeader = "[tern]\nmetrics_address = \"127.0.0.1:0\"\nprogress_interval = \"0s\"\nshutdown_timeout = \"3s\"\n"

// adminURL waits for the metrics address to listen.
func adminURL(t *testing.T, e *engine.Engine, scheme string) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); e.AdminAddr() == nil; time.Sleep(5 * time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "the metrics address never listened")
	}
	return scheme + "://" + e.AdminAddr().String()
}

// tapStream is an open GET /tap.
type tapStream struct {
	res   *http.Response
	lines *bufio.Scanner
}

func openTap(t *testing.T, c *http.Client, base string, q url.Values) *tapStream {
	t.Helper()
	res, err := c.Get(base + "/tap?" + q.Encode())
	require.NoError(t, err)
	t.Cleanup(func() { res.Body.Close() })
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "application/x-ndjson", res.Header.Get("Content-Type"))
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	return &tapStream{res, sc}
}

// next returns the next line: a message, or the {"tap":…} state.
func (s *tapStream) next(t *testing.T) (*pipeline.Message, map[string]any) {
	t.Helper()
	require.True(t, s.lines.Scan(), "the stream ended: %v", s.lines.Err())
	line := s.lines.Bytes()
	if strings.HasPrefix(string(line), `{"tap":`) {
		var st struct {
			Tap map[string]any `json:"tap"`
		}
		require.NoError(t, json.Unmarshal(line, &st))
		return nil, st.Tap
	}
	require.True(t, strings.HasPrefix(string(line), `{"uuid":`), "%s", line)
	m := pipeline.NewMessage()
	require.NoError(t, codec.DecodeJSON(line, m, nil))
	return m, nil
}

// nextMessage skips state lines.
func (s *tapStream) nextMessage(t *testing.T) *pipeline.Message {
	t.Helper()
	for {
		if m, _ := s.next(t); m != nil {
			return m
		}
	}
}

func TestAdminTapStream(t *testing.T) {
	e, names, run := built(t, adminHeader+tapConfig, engine.Options{})
	run()
	base := adminURL(t, e, "http")
	s := openTap(t, http.DefaultClient, base, url.Values{"match": {"Type == 'req'"}, "n": {"2"}, "plugin": {"echo"}})
	_, hello := s.next(t)
	assert.Equal(t, map[string]any{"plugin": "filters.echo", "match": "Type == 'req'", "rate": 1000.0, "n": 2.0, "buffer": 1024.0}, hello)

	require.NoError(t, waitAck(t, getFeed(names("in")).send("other:x", "req:a", "req:<b>&\"", "req:c")))
	assert.Equal(t, "a", s.nextMessage(t).Payload)
	assert.Equal(t, "<b>&\"", s.nextMessage(t).Payload)
	_, end := s.next(t)
	assert.Equal(t, "n", end["end"])
	assert.Equal(t, 2.0, end["sent"])
	assert.False(t, s.lines.Scan(), "the stream ends after n messages")
}

func TestAdminTapEndsWhenTheEngineStops(t *testing.T) {
	e, names, run := built(t, adminHeader+tapConfig, engine.Options{})
	stop := run()
	s := openTap(t, http.DefaultClient, adminURL(t, e, "http"), url.Values{})
	s.next(t) // hello
	require.NoError(t, waitAck(t, getFeed(names("in")).send("x:1")))
	assert.Equal(t, "1", s.nextMessage(t).Payload)
	stop()
	for {
		m, st := s.next(t)
		if m != nil {
			continue // the final tick's injection
		}
		if st["end"] != nil {
			assert.Equal(t, "stopped", st["end"])
			break
		}
	}
}

// A reader slower than the router loses messages, never the pipeline, and
// the stream says how many.
func TestAdminTapReportsDrops(t *testing.T) {
	e, names, run := built(t, adminHeader+tapConfig, engine.Options{})
	run()
	s := openTap(t, http.DefaultClient, adminURL(t, e, "http"), url.Values{"buffer": {"1"}, "rate": {"100000"}, "match": {"Type == 'x'"}})
	s.next(t)
	lines := make([]string, 500)
	for i := range lines {
		lines[i] = fmt.Sprintf("x:%d", i)
	}
	require.NoError(t, waitAck(t, getFeed(names("in")).send(lines...)))
	got := 0
	for {
		m, st := s.next(t)
		if m != nil {
			got++
			continue
		}
		if st["matched"] == 500.0 && st["sent"] == float64(got) {
			assert.Greater(t, st["dropped"], 0.0, "%v", st)
			assert.Equal(t, 500.0, st["dropped"].(float64)+st["sent"].(float64)+st["skipped"].(float64), "%v", st)
			break
		}
	}
}

func TestAdminTapRefusals(t *testing.T) {
	e, _, run := built(t, adminHeader+tapConfig, engine.Options{MaxTaps: 1})
	run()
	base := adminURL(t, e, "http")
	get := func(q string) (int, string) {
		res, err := http.Get(base + "/tap?" + q)
		require.NoError(t, err)
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	code, body := get("match=" + url.QueryEscape("Type =="))
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, body, "match: syntax error")
	code, body = get("match=" + strings.Repeat("x", 5000))
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, body, "longer than 4096 bytes")
	for _, q := range []string{"rate=0", "rate=-1", "rate=1e9", "rate=NaN", "n=-1", "n=x", "buffer=0", "buffer=100000"} {
		code, _ = get(q)
		assert.Equal(t, http.StatusBadRequest, code, q)
	}
	code, body = get("plugin=nope")
	assert.Equal(t, http.StatusNotFound, code)
	assert.Contains(t, body, "no filter or output \"nope\"")

	openTap(t, http.DefaultClient, base, url.Values{}).next(t)
	res, err := http.Get(base + "/tap")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusTooManyRequests, res.StatusCode)
	assert.Equal(t, "5", res.Header.Get("Retry-After"))
}

func TestAdminStats(t *testing.T) {
	e, names, run := built(t, adminHeader+tapConfig, engine.Options{})
	run()
	base := adminURL(t, e, "http")
	require.NoError(t, waitAck(t, getFeed(names("in")).send("req:a", "bad", "x:b")))
	getSink(names("echoes")).waitFor(t, 1)
	res, err := http.Get(base + "/api/stats")
	require.NoError(t, err)
	defer res.Body.Close()
	var s engine.Stats
	require.NoError(t, json.NewDecoder(res.Body).Decode(&s))
	byID := map[string]engine.PluginStats{}
	for _, p := range s.Plugins {
		byID[p.ID] = p
	}
	assert.Equal(t, []string{"inputs.in", "filters.echo", "outputs.all", "outputs.echoes"}, func() []string {
		var ids []string
		for _, p := range s.Plugins {
			ids = append(ids, p.ID)
		}
		return ids
	}())
	in := byID["inputs.in"]
	assert.Equal(t, "input", in.Kind)
	assert.Equal(t, "running", in.State)
	assert.Equal(t, 3.0, in.Count)
	assert.Equal(t, 3.0, in.Counters["messages"], "two decoded, one dead letter")
	assert.Equal(t, 1.0, byID["filters.echo"].Count)
	assert.Equal(t, 1.0, byID["filters.echo"].Counters["injected"])
	assert.Equal(t, int64(4<<20), byID["outputs.all"].QueueMaxBytes)
	assert.Equal(t, 1.0, byID["outputs.echoes"].Count)
	assert.Equal(t, []engine.ReasonCount{{Plugin: "decoders.line", Reason: "decode_error", Count: 1}}, s.DeadLetters)
	assert.NotZero(t, s.Started)
	assert.GreaterOrEqual(t, s.Now, s.Started)
}

func TestAdminDashboardIsServed(t *testing.T) {
	e, _, run := built(t, adminHeader+tapConfig, engine.Options{})
	run()
	base := adminURL(t, e, "http")
	for path, ctype := range map[string]string{"/": "text/html", "/dashboard.js": "text/javascript", "/dashboard.css": "text/css"} {
		res, err := http.Get(base + path)
		require.NoError(t, err)
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		assert.Equal(t, http.StatusOK, res.StatusCode, path)
		assert.True(t, strings.HasPrefix(res.Header.Get("Content-Type"), ctype), path)
		assert.Contains(t, res.Header.Get("Content-Security-Policy"), "script-src 'self'", path)
		assert.NotEmpty(t, b, path)
	}
	res, err := http.Get(base + "/nope")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusNotFound, res.StatusCode)
}

// With a token and TLS, the data needs the token, the static files do not,
// and plain HTTP gets nowhere.
func TestAdminTokenAndTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "admin-ca")
	cert, key := ca.Issue(t, testpki.Opts{}).Write(t, dir, "server")
	cfg := adminHeader + fmt.Sprintf("metrics_tokens = [\"s3cret\"]\n[tern.metrics_tls]\ncert_file = %q\nkey_file = %q\n", cert, key) + tapConfig
	e, _, run := built(t, cfg, engine.Options{})
	run()
	base := adminURL(t, e, "https")
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	defer c.CloseIdleConnections()
	get := func(path, token string) int {
		req, _ := http.NewRequest("GET", base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := c.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20))
		res.Body.Close()
		if res.StatusCode == http.StatusUnauthorized {
			assert.Equal(t, `Bearer realm="tern"`, res.Header.Get("WWW-Authenticate"))
		}
		return res.StatusCode
	}
	for _, p := range []string{"/metrics", "/health", "/api/stats", "/tap?n=1"} {
		assert.Equal(t, http.StatusUnauthorized, get(p, ""), p)
		assert.Equal(t, http.StatusUnauthorized, get(p, "wrong"), p)
	}
	assert.Equal(t, http.StatusOK, get("/metrics", "s3cret"))
	assert.Equal(t, http.StatusOK, get("/api/stats", "s3cret"))
	assert.Equal(t, http.StatusOK, get("/", ""), "the page holds no data")

	res, err := http.Get(strings.Replace(base, "https", "http", 1) + "/metrics")
	if err == nil {
		res.Body.Close()
		assert.Equal(t, http.StatusBadRequest, res.StatusCode, "plain HTTP must not reach the handlers")
	}
}

func TestAdminMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "admin-ca")
	cert, key := ca.Issue(t, testpki.Opts{}).Write(t, dir, "server")
	caFile := ca.WriteCA(t, dir, "ca")
	cfg := adminHeader + fmt.Sprintf("[tern.metrics_tls]\ncert_file = %q\nkey_file = %q\nca_file = %q\n", cert, key, caFile) + tapConfig
	e, _, run := built(t, cfg, engine.Options{})
	run()
	base := adminURL(t, e, "https")
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool()}}}
	_, err := anon.Get(base + "/metrics")
	require.Error(t, err, "a client without a certificate is refused")
	client := ca.Issue(t, testpki.Opts{Client: true, CN: "operator"})
	withCert := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: ca.Pool(), Certificates: []tls.Certificate{client.TLSCert(t)}}}}
	defer withCert.CloseIdleConnections()
	s := openTap(t, withCert, base, url.Values{"n": {"1"}})
	_, hello := s.next(t)
	assert.Equal(t, "", hello["plugin"])
}

func TestAdminCheckReadsTheTokenFile(t *testing.T) {
	e, _, _ := built(t, adminHeader+"metrics_token_file = \"/nonexistent/tokens\"\n"+tapConfig, engine.Options{})
	err := e.Check()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "tern: metrics_token_file: open /nonexistent/tokens")
}
