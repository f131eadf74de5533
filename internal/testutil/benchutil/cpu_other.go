//go:build !unix

package benchutil

func cpuNanos() int64 { return 0 }
