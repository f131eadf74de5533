package http_test

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	ternhttp "github.com/ternlog/tern/inputs/http"
	"github.com/ternlog/tern/internal/testutil/nettest"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

// from returns a client whose connections come from ip, an address of the
// loopback network (Linux routes all of 127.0.0.0/8 to lo).
func from(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// A client over the failure limit still gets in with a valid token: the
// limit slows guessing down, it must not lock out a legitimate sender that
// shares an address (NAT) with a guesser or once sent a stale token.
func TestValidTokenPassesWhileLimited(t *testing.T) {
	r := start(t, func(c *ternhttp.Config) { c.AuthFailureLimit = 3; c.AuthFailureWindow = config.Duration(time.Hour) }, nil)
	for range 3 {
		code, _, _ := post(t, nil, r.url, "Bearer nope", strings.NewReader("x\n"), nil)
		assert.Equal(t, http.StatusUnauthorized, code)
	}
	code, _, h := post(t, nil, r.url, "Bearer nope", strings.NewReader("x\n"), nil)
	assert.Equal(t, http.StatusTooManyRequests, code)
	assert.NotEmpty(t, h.Get("Retry-After"))
	code, body, _ := post(t, nil, r.url, "Bearer "+token, strings.NewReader("legit\n"), nil)
	assert.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, []string{"legit"}, r.em.Lines())
	code, _, _ = post(t, nil, r.url, "", strings.NewReader("x\n"), nil)
	assert.Equal(t, http.StatusTooManyRequests, code, "still limited for anything else")
}

// Failures from many addresses do not lift the limit on one that keeps
// trying: the limiter evicts the addresses seen least recently, one at a
// time, instead of forgetting every address once it is full.
func TestAddressSprayKeepsTheLimit(t *testing.T) {
	set := pipelinetest.Settings(t, "inputs.http")
	cfg := ternhttp.DefaultConfig()
	cfg.Address, cfg.Tokens = "127.0.0.1:0", []string{token}
	cfg.AuthFailureLimit, cfg.AuthFailureWindow = 3, config.Duration(time.Hour)
	in, err := ternhttp.New(set, cfg)
	require.NoError(t, err)
	ternhttp.SetMaxTracked(in, 8)
	addr := nettest.RunInput(t, in, &pipelinetest.Emitter{}, in.Addr)
	url := "http://" + addr + "/"
	guesser := from("127.0.0.2")
	for range 3 {
		code, _, _ := post(t, guesser, url, "Bearer nope", strings.NewReader("x\n"), nil)
		require.Equal(t, http.StatusUnauthorized, code)
	}
	for i := range 40 {
		code, _, _ := post(t, from(fmt.Sprintf("127.0.1.%d", i+1)), url, "Bearer nope", strings.NewReader("x\n"), nil)
		require.Equal(t, http.StatusUnauthorized, code, "sprayed address %d", i)
		if i%4 == 3 {
			code, _, _ = post(t, guesser, url, "Bearer nope", strings.NewReader("x\n"), nil)
			require.Equal(t, http.StatusTooManyRequests, code, "after %d sprayed addresses", i+1)
		}
	}
	assert.Equal(t, 8, ternhttp.Tracked(in), "bounded")
}

// Every answer that is not 2xx is counted by status and reason, and logged
// once a minute per reason.
func TestRejectionsCountedAndLogged(t *testing.T) {
	r := start(t, func(c *ternhttp.Config) {
		c.AuthFailureLimit = 2
		c.MaxBodyBytes = 64
		c.MaxRecordBytes = 16
	}, nil)
	auth := "Bearer " + token
	for _, c := range []struct {
		auth, body string
		hdr        map[string]string
		code       int
	}{
		{"Bearer nope", "x\n", nil, 401},
		{"", "x\n", nil, 401},
		{auth, strings.Repeat("y", 100), nil, 413},
		{auth, strings.Repeat("z", 20) + "\n", nil, 413},
		{auth, "x", map[string]string{"Content-Encoding": "br"}, 415},
		{auth, "not gzip", map[string]string{"Content-Encoding": "gzip"}, 400},
		{"Bearer nope", "x\n", nil, 429},
	} {
		code, _, _ := post(t, nil, r.url, c.auth, strings.NewReader(c.body), c.hdr)
		require.Equal(t, c.code, code)
	}
	resp, err := http.Get(r.url)
	require.NoError(t, err)
	resp.Body.Close()
	const m = "http_input_rejected_total"
	for _, c := range []struct {
		status, reason string
		n              float64
	}{
		{"401", "auth", 2}, {"413", "body_too_large", 1}, {"413", "record_too_large", 1},
		{"415", "content_encoding", 1}, {"400", "bad_gzip", 1}, {"429", "auth_rate_limited", 1}, {"405", "method", 1},
	} {
		assert.Equal(t, c.n, r.tel.CountWith(m, c.status, c.reason), "%s %s", c.status, c.reason)
	}
	logs := r.logs.String()
	assert.Equal(t, 1, strings.Count(logs, "status=401 reason=auth"), "one line a minute per reason:\n%s", logs)
	assert.Contains(t, logs, "status=413 reason=body_too_large")
	assert.Contains(t, logs, `msg="request rejected"`)
	assert.NotContains(t, logs, token[:8])
}

// Idle keep-alive connections holding every slot make room for a new
// client.
func TestIdleConnectionsMakeRoomForNewClients(t *testing.T) {
	r := start(t, func(c *ternhttp.Config) { c.MaxConnections = 2 }, nil)
	for range 2 {
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
		defer c.CloseIdleConnections()
		code, _, _ := post(t, c, r.url, "Bearer "+token, strings.NewReader("x\n"), nil)
		require.Equal(t, http.StatusOK, code)
	}
	time.Sleep(1200 * time.Millisecond) // idle longer than netio.DefaultMinIdle
	code, body, _ := post(t, from("127.0.0.1"), r.url, "Bearer "+token, strings.NewReader("newcomer\n"), nil)
	assert.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, 1.0, r.tel.Count("connections_evicted_total"))
	assert.Zero(t, r.tel.Count("connections_refused_total"))
}

// A connection whose request waits for its acknowledgement is never taken
// for idle, however long the wait (net/http reads in the background).
func TestWaitingRequestKeepsItsSlot(t *testing.T) {
	acks := make(chan pipeline.AckFunc, 1)
	em := &pipelinetest.Emitter{Ack: func(_ []pipeline.Record, ack pipeline.AckFunc) { acks <- ack }}
	r := start(t, func(c *ternhttp.Config) { c.MaxConnections = 1 }, em)
	done := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, r.url, strings.NewReader("slow\n"))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := from("127.0.0.1").Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	var ack pipeline.AckFunc
	select {
	case ack = <-acks:
	case <-time.After(10 * time.Second):
		t.Fatal("the request was not emitted")
	}
	time.Sleep(1200 * time.Millisecond) // longer than netio.DefaultMinIdle
	req, _ := http.NewRequest(http.MethodPost, r.url, strings.NewReader("newcomer\n"))
	req.Header.Set("Authorization", "Bearer "+token)
	if resp, err := from("127.0.0.1").Do(req); err == nil {
		resp.Body.Close()
		t.Errorf("the newcomer got %d, want its connection closed", resp.StatusCode)
	}
	require.Eventually(t, func() bool { return r.tel.Count("connections_refused_total") == 1 }, 10*time.Second, 10*time.Millisecond)
	assert.Zero(t, r.tel.Count("connections_evicted_total"))
	ack(nil)
	select {
	case code := <-done:
		assert.Equal(t, http.StatusOK, code, "the waiting request was not evicted")
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting request never finished")
	}
}

// The failure limit counts IPv6 clients by /64: one host usually holds a
// whole /64 and could otherwise rotate through it.
func TestClientKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":            "192.0.2.7",
		"::ffff:192.0.2.7":     "192.0.2.7",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1": "2001:db8:1:2::/64",
		"fe80::1%eth0":         "fe80::/64",
		"not an address":       "not an address",
		"2001:db8:1:3::1":      "2001:db8:1:3::/64",
	} {
		assert.Equal(t, want, ternhttp.ClientKey(in), in)
	}
}
