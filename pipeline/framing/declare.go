package framing

import "github.com/ternlog/tern/pipeline"

// DeclareLines declares, for the plugin of set, what EmitLines counts, so
// the series exist at zero from the start: lines over the size limit. Call
// it from the plugin's constructor.
func DeclareLines(set pipeline.Settings) {
	set.DeclareDrops("oversize")
}

// DeclareSyslog declares what EmitSyslog counts: frames over the size limit
// and streams that end in a broken frame.
func DeclareSyslog(set pipeline.Settings) {
	set.DeclareDrops("oversize")
	set.DeclareErrors("stream_error")
}
