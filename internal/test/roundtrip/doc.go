// Package roundtrip holds only tests: property tests that run the CEF and
// syslog encoders against their decoders and against independent strict
// parsers written in the tests (reliability.md R23, R24). They live here
// because plugins never import each other, not even in tests.
package roundtrip
