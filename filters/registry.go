// Package filters lists the filter plugins; each lives in its own directory.
package filters

import (
	"github.com/ternlog/tern/filters/counter"
	"github.com/ternlog/tern/filters/dedupe"
	"github.com/ternlog/tern/filters/lua"
	"github.com/ternlog/tern/filters/threshold"
	"github.com/ternlog/tern/pipeline"
)

// Factories lists every filter that plugins.toml can name with type = "…".
func Factories() []pipeline.Factory[pipeline.Filter] {
	return []pipeline.Factory[pipeline.Filter]{
		counter.Factory(),
		dedupe.Factory(),
		lua.Factory(),
		threshold.Factory(),
	}
}
