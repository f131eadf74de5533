//go:build race

package pipeline

// poisonReused makes Reset overwrite the chunks it gives back, in the
// race-enabled test runs, so a reader of a reused batch's strings fails
// its test instead of reading plausible old bytes.
const poisonReused = true
