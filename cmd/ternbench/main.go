// Command ternbench is tern's throughput harness: it writes deterministic
// workload files, runs a daemon against one of them over one TCP connection
// and measures it, and serves as the plain-Go reference that does the same
// work as tern on workloads W1–W3, so that ratios can be quoted from runs on
// the same machine. bench/README.md has the method and the commands.
//
//	ternbench gen   -mode syslog|json|cef -n N -o FILE [flags]
//	ternbench bench -label L -data FILE -addr HOST:PORT -out FILE -- CMD ARGS…
//	ternbench sink  -mode raw|json|syslog2json -addr HOST:PORT -out FILE
//	ternbench suite -tern bin/tern [-n N] [-runs R] [-dir DIR]
//
// Point -addr only at loopback addresses.
package main

import (
	"fmt"
	"io"
	"os"
)

const usage = `ternbench — tern's throughput harness

Usage:
  ternbench gen   -mode syslog|json|cef -n N -o FILE [flags]   write a deterministic workload file
  ternbench bench -label L -data FILE -addr HOST:PORT -out FILE [flags] -- CMD ARGS…
                  start CMD, stream FILE to it over one TCP connection, wait for
                  OUT to hold every line, print one JSON line of measurements
  ternbench sink  -mode raw|json|syslog2json -addr HOST:PORT -out FILE
                  the plain-Go reference for W1, W2 and W3
  ternbench suite -tern bin/tern [flags]                        W1–W3, tern against the reference,
                  alternating runs; medians and per-pair ratios

Run "ternbench VERB -h" for a verb's flags.
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the exit, so tests can drive every verb.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch verb, args := args[0], args[1:]; verb {
	case "gen":
		return cmdGen(args, stdout, stderr)
	case "bench":
		return cmdBench(args, stdout, stderr)
	case "sink":
		return cmdSink(args, stderr)
	case "suite":
		return cmdSuite(args, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "ternbench: unknown verb %q\n\n%s", verb, usage)
		return 2
	}
}
