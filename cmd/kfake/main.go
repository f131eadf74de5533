// Command kfake runs a local Kafka-protocol cluster (franz-go's kfake) for
// demos and manual tests of tern's Kafka input and output, without
// installing Kafka. It listens on 127.0.0.1 only, prints the broker
// addresses (comma-separated) as the first line on stdout, and stops on
// SIGINT or SIGTERM, saving its data when -data-dir is set.
//
//	go run ./cmd/kfake -port 9092 -topics logs,alerts -partitions 4
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the exit and the signals, so a test can drive it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("kfake", flag.ContinueOnError)
	fs.SetOutput(stderr)
	port := fs.Int("port", 0, "port of the first broker (the others take the next ones); 0 picks free ports")
	brokers := fs.Int("brokers", 1, "number of brokers")
	topics := fs.String("topics", "", "comma-separated topics to create")
	partitions := fs.Int("partitions", 1, "partitions of each topic")
	dataDir := fs.String("data-dir", "", "keep the cluster's data here across runs (default: memory only)")
	autoCreate := fs.Bool("auto-create", false, "create topics on first use")
	minSession := fs.Duration("min-session-timeout", 100*time.Millisecond, "smallest consumer-group session timeout allowed")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *brokers < 1 || *partitions < 1 || *port < 0 || *port > 65535-*brokers {
		fmt.Fprintln(stderr, "kfake: -brokers and -partitions must be at least 1, -port within 0..65535")
		return 2
	}
	opts := []kfake.Opt{kfake.NumBrokers(*brokers), kfake.GroupMinSessionTimeout(*minSession)}
	if *port > 0 {
		ports := make([]int, *brokers)
		for i := range ports {
			ports[i] = *port + i
		}
		opts = append(opts, kfake.Ports(ports...))
	}
	var names []string
	for _, t := range strings.Split(*topics, ",") {
		if t = strings.TrimSpace(t); t != "" {
			names = append(names, t)
		}
	}
	if len(names) > 0 {
		opts = append(opts, kfake.SeedTopics(int32(*partitions), names...))
	}
	if *dataDir != "" {
		opts = append(opts, kfake.DataDir(*dataDir))
	}
	if *autoCreate {
		opts = append(opts, kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(*partitions))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		fmt.Fprintf(stderr, "kfake: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, strings.Join(c.ListenAddrs(), ","))
	fmt.Fprintf(stderr, "kfake: %d broker(s), topics %v with %d partition(s); Ctrl-C stops\n", *brokers, names, *partitions)
	<-ctx.Done()
	c.Close()
	return 0
}
