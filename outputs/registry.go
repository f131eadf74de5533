// Package outputs lists the output plugins; each lives in its own directory.
package outputs

import (
	"github.com/ternlog/tern/outputs/file"
	"github.com/ternlog/tern/outputs/kafka"
	"github.com/ternlog/tern/outputs/stdout"
	"github.com/ternlog/tern/pipeline"
)

// Factories lists every output that plugins.toml can name with type = "…".
func Factories() []pipeline.Factory[pipeline.Output] {
	return []pipeline.Factory[pipeline.Output]{
		file.Factory(),
		kafka.Factory(),
		stdout.Factory(),
	}
}
