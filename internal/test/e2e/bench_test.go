package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ternlog/tern/client"
	"github.com/ternlog/tern/internal/testutil/benchutil"
	"github.com/ternlog/tern/internal/testutil/kafkatest"
	"github.com/ternlog/tern/pipeline"
)

// BenchmarkKafkaToKafka moves b.N events of 300 bytes from one topic to
// another through a tern engine (kafka input, payload codecs, kafka output
// with acks=all), with kfake in the same process (its work is counted).
// The events are produced before the engine starts; events/s is measured
// from the first event out to the last, so the group join is left out.
// Run with a fixed count: go test -run '^$' -bench KafkaToKafka
// -benchtime 400000x ./internal/test/e2e
func BenchmarkKafkaToKafka(b *testing.B) {
	c := kafkatest.Start(b, []kafkatest.Topic{{Name: "in", Partitions: 4}, {Name: "out", Partitions: 4}})
	produceEvents(c, "in", 0, b.N)
	cfg := fmt.Sprintf(`
[inputs.kin]
type = "kafka"
decoder = "payload"
brokers = %s
topics = ["in"]
group = "bench"
session_timeout = "2s"
heartbeat_interval = "200ms"
rebalance_timeout = "5s"
revoke_timeout = "2s"
fetch_max_wait = "20ms"
batch_max_count = 2048

[outputs.kout]
type = "kafka"
message_matcher = "TRUE"
encoder = "payload"
brokers = %s
topic = "out"
linger = "2ms"
batch_max_count = 8192
batch_max_bytes = "8MiB"
queue_max_bytes = "64MiB"
`, quote(c.Addrs), quote(c.Addrs))
	b.SetBytes(300)
	b.ReportAllocs()
	b.ResetTimer()
	stop := benchutil.CPU(b)
	eng := startEngine(b, cfg, 10*time.Second)
	var first time.Time
	for {
		n := hwm(c, "out")
		if n > 0 && first.IsZero() {
			first = time.Now()
		}
		if n >= b.N {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	elapsed := time.Since(first)
	stop()
	b.StopTimer()
	eng.stop()
	if elapsed > 0 {
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	}
}

// BenchmarkClientToTern sends 300-byte messages with the client library to
// a tern engine (tcp input with native framing, msgpack decoder, null
// output) and waits for every acknowledgement (Flush) at the end.
func BenchmarkClientToTern(b *testing.B) {
	addr := freeAddr(b)
	eng := startEngine(b, fmt.Sprintf(`
[inputs.apps]
type = "tcp"
address = %q
framing = "native"
decoder = "msgpack"

[outputs.null]
type = "null"
message_matcher = "TRUE"
`, addr), 10*time.Second)
	defer eng.stop()
	var c *client.Client
	var err error
	for range 100 {
		if c, err = client.Dial(addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		b.Fatal(err)
	}
	m := pipeline.NewMessage()
	m.Type = "bench"
	m.Payload = string(event(0)[:260])
	m.AddString("user", "alice")
	ctx := context.Background()
	b.SetBytes(300)
	b.ReportAllocs()
	stop := benchutil.CPU(b)
	for b.Loop() {
		if err := c.Send(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
	if err := c.Flush(ctx); err != nil {
		b.Fatal(err)
	}
	stop()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	if err := c.Close(ctx); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkW1 is workload W1 in process: 250-byte lines over one TCP
// connection into a tcp input (payload decoder) and out to a file
// (payload encoder), as bench/w1.toml. The sender's work is counted too;
// allocs/op are the whole process's, per line: the figure to watch when
// cutting W1's CPU. Run: go test -run '^$' -bench W1 -benchtime 1000000x
// -benchmem ./internal/test/e2e
func BenchmarkW1(b *testing.B) {
	addr := freeAddr(b)
	out := filepath.Join(b.TempDir(), "w1.out")
	eng := startEngine(b, fmt.Sprintf(`
[inputs.tcp]
type = "tcp"
address = %q
decoder = "payload"

[outputs.file]
type = "file"
message_matcher = "TRUE"
encoder = "payload"
path = %q
`, addr, out), 10*time.Second)
	defer eng.stop()
	var conn net.Conn
	var err error
	for range 100 {
		if conn, err = net.Dial("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	line := append(bytes.Repeat([]byte("x"), 249), '\n')
	// 64 KiB writes, as ternbench bench sends.
	chunk := bytes.Repeat(line, 64<<10/len(line))
	perChunk := len(chunk) / len(line)
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	stop := benchutil.CPU(b)
	b.ResetTimer()
	for sent := 0; sent < b.N; sent += perChunk {
		c := chunk
		if left := b.N - sent; left < perChunk {
			c = chunk[:left*len(line)]
		}
		if _, err := conn.Write(c); err != nil {
			b.Fatal(err)
		}
	}
	want := int64(b.N * len(line))
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
		if fi, err := os.Stat(out); err == nil && fi.Size() >= want {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("the file never got every line")
		}
	}
	b.StopTimer()
	stop()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
