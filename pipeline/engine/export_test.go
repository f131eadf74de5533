package engine

// DrainWakeups is how often the stopping goroutine woke up to look whether
// the queues had drained.
func DrainWakeups(e *Engine) int64 { return e.drainWakes.Load() }
