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

// DeclareLimit declares what LimitListener counts: connections refused at
// the cap.
func DeclareLimit(set pipeline.Settings) {
	set.DeclareErrors("max_connections")
}

// DeclareFrames declares what EmitFrames and ConnEnded count: records over
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
