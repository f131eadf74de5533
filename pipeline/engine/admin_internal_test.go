package engine

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// An open metrics address (no token, no mutual TLS) serves taps only on
// loopback: message contents are not for whoever reaches the port.
func TestTapRefusedOnAnOpenNonLoopbackAddress(t *testing.T) {
	e := &Engine{maxTaps: 1}
	for _, c := range []struct {
		auth adminAuth
		want int
	}{
		{adminAuth{loopback: false}, http.StatusForbidden},
		{adminAuth{loopback: false, mtls: true}, http.StatusOK},
		{adminAuth{loopback: false, tokens: [][32]byte{{1}}}, http.StatusOK},
		{adminAuth{loopback: true}, http.StatusOK},
	} {
		e.tapsStopped = true // an accepted request then gets 503 at once instead of a stream
		rec := httptest.NewRecorder()
		e.tapHandler(&c.auth).ServeHTTP(rec, httptest.NewRequest("GET", "/tap", nil))
		got := rec.Code
		if got == http.StatusServiceUnavailable {
			got = http.StatusOK
		}
		if got != c.want {
			t.Errorf("%+v: status %d, want %d (%s)", c.auth, rec.Code, c.want, rec.Body.String())
		}
	}
}
