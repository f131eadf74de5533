// Package decoders lists the decoder plugins; each lives in its own directory.
package decoders

import (
	"github.com/ternlog/tern/decoders/cef"
	"github.com/ternlog/tern/decoders/json"
	"github.com/ternlog/tern/decoders/lua"
	"github.com/ternlog/tern/decoders/msgpack"
	"github.com/ternlog/tern/decoders/payload"
	"github.com/ternlog/tern/decoders/regex"
	"github.com/ternlog/tern/decoders/syslog"
	"github.com/ternlog/tern/decoders/zeek"
	"github.com/ternlog/tern/pipeline"
)

// Factories lists every decoder that plugins.toml can name with type = "…".
func Factories() []pipeline.Factory[pipeline.Decoder] {
	return []pipeline.Factory[pipeline.Decoder]{
		cef.Factory(),
		json.Factory(),
		lua.Factory(),
		msgpack.Factory(),
		payload.Factory(),
		regex.Factory(),
		syslog.Factory(),
		zeek.Factory(),
	}
}
