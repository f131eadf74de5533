package engine

import (
	"sync"
	"time"
)

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
