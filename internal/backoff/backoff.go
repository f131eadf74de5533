// Package backoff is tern's one retry pacing: capped exponential backoff
// with jitter. The engine paces output retries and input restarts with it;
// outputs do not wait on their own but tell the engine how long a peer asked
// them to wait (pipeline.RetryAfter), and the engine waits the longer of
// the two.
package backoff

import (
	"math/rand/v2"
	"time"
)

// Backoff yields the delays between attempts: Base, then doubling up to
// Max, each plus a random jitter in [0, Jitter). Not safe for concurrent
// use; each retry loop has its own.
type Backoff struct {
	Base, Max, Jitter time.Duration
	cur               time.Duration
}

// New returns a Backoff starting at base (default 100ms) and capped at max
// (at least base), with a jitter of up to base.
func New(base, max time.Duration) *Backoff {
	if base <= 0 {
		base = 100 * time.Millisecond
	}
	if max < base {
		max = base
	}
	return &Backoff{Base: base, Max: max, Jitter: base}
}

// Next returns the delay before the next attempt.
func (b *Backoff) Next() time.Duration {
	if b.cur == 0 {
		b.cur = b.Base
	} else {
		b.cur = min(b.cur*2, b.Max)
	}
	d := b.cur
	if b.Jitter > 0 {
		d += rand.N(b.Jitter)
	}
	return d
}

// Reset starts again from Base, after a success.
func (b *Backoff) Reset() { b.cur = 0 }
