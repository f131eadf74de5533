//go:build race

package roundtrip

// The race detector slows these single-goroutine loops about tenfold and
// finds nothing in them; under it the property tests check fewer records.
const raceEnabled = true
