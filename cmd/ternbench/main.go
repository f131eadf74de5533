// Command ternbench is tern's throughput harness: it writes deterministic
// workload files, runs a daemon against one of them over one TCP connection
// and measures it, and serves as the plain-Go reference that does the same
// work as tern on workloads W1–W3, so that ratios can be quoted from runs on
// the same machine. bench/README.md has the method and the commands.
//
//	ternbench gen   -mode syslog|json|cef -n N -o FILE [flags]
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
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "ternbench: unknown verb %q\n\n%s", verb, usage)
		return 2
	}
}
