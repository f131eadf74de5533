//go:build !race

package pipeline

const poisonReused = false
