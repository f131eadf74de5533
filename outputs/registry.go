// Package outputs lists the output plugins; each lives in its own directory.
package outputs

import (
	"github.com/ternlog/tern/outputs/file"
	"github.com/ternlog/tern/outputs/http"
	"github.com/ternlog/tern/outputs/kafka"
	"github.com/ternlog/tern/outputs/null"
	"github.com/ternlog/tern/outputs/stdout"
	"github.com/ternlog/tern/outputs/syslog"
	"github.com/ternlog/tern/outputs/tern"
	"github.com/ternlog/tern/pipeline"
)

// Factories lists every output that plugins.toml can name with type = "…".
func Factories() []pipeline.Factory[pipeline.Output] {
	return []pipeline.Factory[pipeline.Output]{
		file.Factory(),
		http.Factory(),
		kafka.Factory(),
		null.Factory(),
		stdout.Factory(),
		syslog.Factory(),
		tern.Factory(),
	}
}
