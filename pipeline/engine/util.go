package engine

import (
	"sync"
	"time"
)

// limiter lets a log line through at most once per interval per key, so a
// flood of bad input is counted in metrics without flooding the log.
type limiter struct {
	mu    sync.Mutex
	every time.Duration
	last  map[string]time.Time
}

func newLimiter(every time.Duration) *limiter {
	return &limiter{every: every, last: map[string]time.Time{}}
}

func (l *limiter) allow(key string) bool {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if t, ok := l.last[key]; ok && now.Sub(t) < l.every {
		return false
	}
	l.last[key] = now
	return true
}

// pluginState is what /health reports for one plugin.
type pluginState struct {
	mu    sync.Mutex
	state string
	err   string
	since time.Time
}

func (s *pluginState) set(state string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	if s.state != state || s.err != msg {
		s.state, s.err, s.since = state, msg, time.Now()
	}
}

func (s *pluginState) get() (string, string, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state, s.err, s.since
}
