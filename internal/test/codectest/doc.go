// Package codectest holds property tests that run an encoder, an
// independent strict parser written here from the format's description,
// and the matching decoder against each other (reliability.md R23/R24).
// It has no code outside its tests; plugins are imported only there.
package codectest
