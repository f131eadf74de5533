// Package testscale sizes property, soak and fault tests: full scale when
// TERN_TEST_SCALE=full (make faults, nightly), CI scale by default, and a
// tenth of that under -short or the race detector, which slows such loops
// tenfold. Keeping one knob keeps `make test` well inside CI's budget.
package testscale

import (
	"os"
	"testing"
	"time"
)

// Full reports whether full-scale runs were asked for.
func Full() bool { return os.Getenv("TERN_TEST_SCALE") == "full" }

// N returns full at full scale, ci by default, and ci/10 (at least 1) under
// -short or -race.
func N(full, ci int) int {
	switch {
	case Full():
		return full
	case testing.Short() || raceEnabled:
		return max(ci/10, 1)
	}
	return ci
}

// Process is N for fault tests whose heavy work runs in another process
// (the tern binary, built without the race detector): -race does not slow
// that down, so it keeps the CI size; -short still divides by ten.
func Process(full, ci int) int {
	switch {
	case Full():
		return full
	case testing.Short():
		return max(ci/10, 1)
	}
	return ci
}

// Dur is N for durations: full at full scale, ci otherwise.
func Dur(full, ci time.Duration) time.Duration {
	if Full() {
		return full
	}
	return ci
}
