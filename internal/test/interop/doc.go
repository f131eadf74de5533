// Package interop holds end-to-end tests that run tern's engine between
// real peers (rsyslog on both sides). It has no code of its own.
package interop
