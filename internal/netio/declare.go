package netio

import "github.com/ternlog/tern/pipeline"

// DeclareServe declares, for the plugin of set, what Serve and
// LimitListener count, so the series exist at zero from the start: failed
// accepts, connections refused at maxConns (when positive) and, with tls,
// failed handshakes. Call it from the plugin's constructor.
func DeclareServe(set pipeline.Settings, maxConns int, tls bool) {
	set.DeclareErrors("accept")
	if maxConns > 0 {
		DeclareLimit(set)
	}
	if tls {
		set.DeclareErrors("tls_handshake")
	}
}

// DeclareLimit declares what LimitListener counts besides its own
// counters (tern_connections_refused_total and _evicted_total, which exist
// from the listener's start): nothing, today.
func DeclareLimit(set pipeline.Settings) {}

// DeclareFrames declares what framing.Emit and ConnEnded count: records over
// the size limit and connections closed on broken framing.
func DeclareFrames(set pipeline.Settings) {
	set.DeclareDrops("oversize")
	set.DeclareErrors("framing")
}

// DeclareDatagrams declares what ReadDatagrams counts: datagrams over the
// size limit.
func DeclareDatagrams(set pipeline.Settings) {
	set.DeclareDrops("oversize")
}
