package ratelog

import (
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *clock) add(d time.Duration) { c.ns.Add(int64(d)) }
func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func lines(b *strings.Builder) []string { return strings.Split(strings.TrimSpace(b.String()), "\n") }

func TestOneLinePerInterval(t *testing.T) {
	c := newClock()
	l := New(time.Minute, c.now)
	var b strings.Builder
	lg := slog.New(slog.NewTextHandler(&b, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
	assert.True(t, l.Warn(lg, "refused", "n", 1))
	for range 5 {
		c.add(10 * time.Second)
		assert.False(t, l.Warn(lg, "refused"))
	}
	c.add(10 * time.Second) // a minute after the first
	assert.True(t, l.Warn(lg, "refused", "n", 2))
	assert.Equal(t, []string{`level=WARN msg=refused n=1`, `level=WARN msg=refused n=2 suppressed=5`}, lines(&b))
}

// Goroutines racing at the start of an interval: exactly one gets through,
// and the others are counted. (The tcp input's check-then-store let several
// through.)
func TestConcurrentCallersOneWins(t *testing.T) {
	c := newClock()
	l := New(time.Minute, c.now)
	for round := range 20 {
		var wg sync.WaitGroup
		var allowed, heldSum atomic.Int64
		start := make(chan struct{})
		for range 64 {
			wg.Go(func() {
				<-start
				if h, ok := l.Allow(); ok {
					allowed.Add(1)
					heldSum.Add(h)
				}
			})
		}
		close(start)
		wg.Wait()
		require.Equal(t, int64(1), allowed.Load(), "round %d", round)
		if round > 0 {
			assert.Equal(t, int64(63), heldSum.Load(), "the previous round's 63 held back")
		}
		c.add(time.Minute)
	}
}

func TestNilAndKeyed(t *testing.T) {
	var l *Limiter
	_, ok := l.Allow()
	assert.True(t, ok)
	var nk *Keyed
	assert.Nil(t, nk.For("x"))

	c := newClock()
	k := NewKeyed(time.Minute, c.now)
	_, ok = k.For("401").Allow()
	assert.True(t, ok)
	_, ok = k.For("413").Allow()
	assert.True(t, ok, "one kind does not hide another")
	_, ok = k.For("401").Allow()
	assert.False(t, ok)
	assert.Same(t, k.For("401"), k.For("401"))
}

func TestBoundedForgetsAtCap(t *testing.T) {
	c := newClock()
	k := NewKeyed(time.Minute, c.now).Bounded(2)
	for _, key := range []string{"a", "b"} {
		_, ok := k.For(key).Allow()
		assert.True(t, ok)
	}
	_, ok := k.For("a").Allow()
	assert.False(t, ok, "under the cap, a key stays limited")
	_, ok = k.For("c").Allow() // third key: the others are forgotten
	assert.True(t, ok)
	assert.Len(t, k.m, 1)
	_, ok = k.For("a").Allow()
	assert.True(t, ok, "a forgotten key lets one more line through")
}
