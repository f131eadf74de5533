// Package inputs lists the input plugins; each lives in its own directory.
package inputs

import (
	"github.com/ternlog/tern/inputs/http"
	"github.com/ternlog/tern/inputs/kafka"
	"github.com/ternlog/tern/inputs/stdin"
	"github.com/ternlog/tern/inputs/syslog"
	"github.com/ternlog/tern/inputs/tail"
	"github.com/ternlog/tern/inputs/tcp"
	"github.com/ternlog/tern/inputs/udp"
	"github.com/ternlog/tern/pipeline"
)

// Factories lists every input that plugins.toml can name with type = "…".
func Factories() []pipeline.Factory[pipeline.Input] {
	return []pipeline.Factory[pipeline.Input]{
		http.Factory(),
		kafka.Factory(),
		stdin.Factory(),
		syslog.Factory(),
		tail.Factory(),
		tcp.Factory(),
		udp.Factory(),
	}
}
