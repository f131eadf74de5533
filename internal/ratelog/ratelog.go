// Package ratelog bounds how often a log line is written when what it
// reports can be repeated at will by a peer (bad frames, refused
// connections, rejected requests): the event is still counted in a metric
// every time, but the log gets the first line of each interval and, with
// the next line let through, the number held back in between. One Limiter
// is shared by every goroutine of a listener, so a thousand misbehaving
// connections log no more than one.
package ratelog

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Limiter lets one line through per interval. Its methods may be called
// from any goroutine; a nil *Limiter lets every line through.
type Limiter struct {
	every time.Duration
	now   func() time.Time
	// One lock for both: with two atomics, a caller held back between a
	// winner's swap of next and its read of held was counted into the
	// winner's line instead of the next one.
	mu   sync.Mutex
	next int64 // unix ns before which lines are held back
	held int64 // lines held back since the last one let through
}

// Every returns a limiter that lets one line through per interval d.
func Every(d time.Duration) *Limiter { return New(d, time.Now) }

// New is Every with a clock (tests fix it).
func New(d time.Duration, now func() time.Time) *Limiter {
	return &Limiter{every: d, now: now}
}

// Allow reports whether a line may be written now, and if so how many were
// held back before it. Of callers racing at the start of an interval,
// exactly one is let through.
func (l *Limiter) Allow() (held int64, ok bool) {
	if l == nil {
		return 0, true
	}
	now := l.now().UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now < l.next {
		l.held++
		return 0, false
	}
	l.next = now + int64(l.every)
	held, l.held = l.held, 0
	return held, true
}

// Log writes msg through lg at level when Allow lets it, with "suppressed"
// (the lines held back) added when there were any. It reports whether it
// wrote.
func (l *Limiter) Log(lg *slog.Logger, level slog.Level, msg string, args ...any) bool {
	held, ok := l.Allow()
	if !ok || lg == nil {
		return false
	}
	if held > 0 {
		args = append(args, "suppressed", held)
	}
	lg.Log(context.Background(), level, msg, args...)
	return true
}

// Warn is Log at warning level.
func (l *Limiter) Warn(lg *slog.Logger, msg string, args ...any) bool {
	return l.Log(lg, slog.LevelWarn, msg, args...)
}

// Keyed holds one Limiter per key, for events of several kinds that should
// not hide one another. Keys must come from a fixed set (reasons, kinds,
// plugin ids), never from a peer: the limiters are kept for good, unless
// Bounded caps them.
type Keyed struct {
	every time.Duration
	now   func() time.Time
	max   int
	mu    sync.Mutex
	m     map[string]*Limiter
}

// Bounded caps the number of keys held at n, for keys from a large but
// local set (file paths): past n, every limiter is forgotten at once, which
// at worst lets one more line per key through.
func (k *Keyed) Bounded(n int) *Keyed {
	k.max = n
	return k
}

// EveryKeyed returns limiters of interval d, one per key.
func EveryKeyed(d time.Duration) *Keyed { return NewKeyed(d, time.Now) }

// NewKeyed is EveryKeyed with a clock.
func NewKeyed(d time.Duration, now func() time.Time) *Keyed {
	return &Keyed{every: d, now: now, m: map[string]*Limiter{}}
}

// For returns the limiter of key. A nil *Keyed returns nil (no limit).
func (k *Keyed) For(key string) *Limiter {
	if k == nil {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	l := k.m[key]
	if l == nil {
		if k.max > 0 && len(k.m) >= k.max {
			clear(k.m)
		}
		l = New(k.every, k.now)
		k.m[key] = l
	}
	return l
}
