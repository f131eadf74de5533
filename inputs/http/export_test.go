package http

import (
	"context"

	"github.com/ternlog/tern/pipeline"
)

// Attach readies in to serve requests without listening (for the fuzz
// target, which calls ServeHTTP directly).
func Attach(in *Input, ctx context.Context, out pipeline.Emitter) error {
	if err := in.loadTokens(); err != nil {
		return err
	}
	in.mu.Lock()
	in.out, in.ctx = out, ctx
	in.mu.Unlock()
	return nil
}
