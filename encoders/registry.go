// Package encoders lists the encoder plugins; each lives in its own directory.
package encoders

import (
	"github.com/ternlog/tern/encoders/cef"
	"github.com/ternlog/tern/encoders/eve"
	"github.com/ternlog/tern/encoders/json"
	"github.com/ternlog/tern/encoders/msgpack"
	"github.com/ternlog/tern/encoders/payload"
	"github.com/ternlog/tern/encoders/syslog"
	"github.com/ternlog/tern/encoders/zeek"
	"github.com/ternlog/tern/pipeline"
)

// Factories lists every encoder that plugins.toml can name with type = "…".
func Factories() []pipeline.Factory[pipeline.Encoder] {
	return []pipeline.Factory[pipeline.Encoder]{
		cef.Factory(),
		eve.Factory(),
		json.Factory(),
		msgpack.Factory(),
		payload.Factory(),
		syslog.Factory(),
		zeek.Factory(),
	}
}
