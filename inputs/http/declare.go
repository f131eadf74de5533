package http

import (
	"github.com/ternlog/tern/pipeline"
)

// declare makes what the input counts exist at zero from the start:
// records over max_record_bytes and failed TLS handshakes (rejected
// requests are counted in tern_http_input_rejected_total, zeroed by New;
// connections at the cap by netio's limit listener).
func declare(set pipeline.Settings, cfg Config) {
	set.DeclareDrops("oversize")
	if cfg.TLS.On() {
		set.DeclareErrors("tls_handshake")
	}
}

// rejections are the answers counted in tern_http_input_rejected_total.
var rejections = []httpError{errNotFound, errMethod, errAuth, errLimited, errEncoding, errBodyTooLarge,
	errUnzipTooLarge, errRecordLarge, errTimeout, errNotDelivered, errStopping}
