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

// SetMaxTracked lowers how many client addresses the authentication
// failure limiter tracks, so a test can fill it.
func SetMaxTracked(in *Input, n int) { in.fails.max = n }

// ClientKey is what the failure limit counts for an address.
var ClientKey = clientKey

// Tracked is how many clients the failure limiter holds.
func Tracked(in *Input) int {
	in.fails.mu.Lock()
	defer in.fails.mu.Unlock()
	return len(in.fails.m)
}
