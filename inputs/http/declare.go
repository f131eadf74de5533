package http

import (
	"github.com/ternlog/tern/internal/netio"
	"github.com/ternlog/tern/pipeline"
)

// declare makes what the input counts exist at zero from the start:
// records over max_record_bytes, refused connections, failed TLS
// handshakes, failed (and rate-limited) authentications and deliveries not
// acknowledged in time.
func declare(set pipeline.Settings, cfg Config) {
	netio.DeclareLimit(set)
	set.DeclareDrops("oversize")
	set.DeclareErrors("auth", "ack_timeout")
	if cfg.AuthFailureLimit > 0 {
		set.DeclareErrors("auth_rate_limited")
	}
	if cfg.TLS.On() {
		set.DeclareErrors("tls_handshake")
	}
}
