// Package benchutil helps benchmarks report the CPU they use. On a shared
// machine ns/op measures wall time and swells with other processes' load;
// the process's own CPU time per operation does much less.
package benchutil

import "testing"

// CPU starts measuring the process's user+system CPU time; call the
// returned function right after the b.Loop loop to report it as cpu-ns/op.
func CPU(b *testing.B) (stop func()) {
	start := cpuNanos()
	return func() {
		if b.N > 0 {
			b.ReportMetric(float64(cpuNanos()-start)/float64(b.N), "cpu-ns/op")
		}
	}
}
