//go:build race

package matcher

// raceEnabled reports a -race build, whose sync.Pool drops items on purpose,
// so the regex engine's pooled state allocates now and then.
const raceEnabled = true
