// Package kafkatest runs an in-process Kafka (franz-go's kfake, the real
// wire protocol on 127.0.0.1) for tests, and produces and reads topics with
// franz-go's client, independent of the sarama and kafka-go code under
// test. Import it from tests only.
package kafkatest

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/ternlog/tern/internal/testutil/testpki"
)

// Cluster is a fake Kafka cluster that can be stopped and started again on
// the same ports with the same data, like a broker restart.
type Cluster struct {
	t     testing.TB
	opts  []kfake.Opt // without the seeded topics: a restart keeps its data
	seed  []kfake.Opt
	dir   string
	ports []int
	c     *kfake.Cluster
	Addrs []string
	tls   *tls.Config // for the test's own clients
}

// Topic is a topic to create and its partitions.
type Topic struct {
	Name       string
	Partitions int32
}

// Start starts a cluster of one broker with the topics, persisted under a
// temporary directory. Group session timeouts down to 100ms are allowed
// (kfake's default minimum is 6s). Extra options are passed to kfake.
func Start(t testing.TB, topics []Topic, extra ...kfake.Opt) *Cluster {
	t.Helper()
	c := &Cluster{t: t, dir: t.TempDir()}
	c.opts = append(c.opts, kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(100*time.Millisecond), kfake.DataDir(c.dir))
	for _, tp := range topics {
		c.seed = append(c.seed, kfake.SeedTopics(tp.Partitions, tp.Name))
	}
	c.opts = append(c.opts, extra...)
	c.start(append(append([]kfake.Opt(nil), c.opts...), c.seed...))
	t.Cleanup(c.Stop)
	return c
}

func (c *Cluster) start(opts []kfake.Opt) {
	c.t.Helper()
	var err error
	for attempt := 0; ; attempt++ {
		c.c, err = kfake.NewCluster(opts...)
		if err == nil || attempt == 50 {
			break
		}
		// The old listener's port may linger for a moment after Stop.
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		c.t.Fatalf("kfake: %v", err)
	}
	c.Addrs = c.c.ListenAddrs()
	if c.ports == nil {
		for _, a := range c.Addrs {
			_, p, _ := net.SplitHostPort(a)
			port, err := strconv.Atoi(p)
			if err != nil {
				c.t.Fatalf("kfake address %q: %v", a, err)
			}
			c.ports = append(c.ports, port)
		}
	}
}

// StartTLS is Start with TLS on the listeners: a certificate for 127.0.0.1
// from a throw-away CA, whose PEM file it returns.
func StartTLS(t testing.TB, topics []Topic, extra ...kfake.Opt) (c *Cluster, caFile string) {
	t.Helper()
	ca := testpki.NewCA(t, "kafka-ca")
	leaf := ca.Issue(t, testpki.Opts{})
	server := &tls.Config{Certificates: []tls.Certificate{leaf.TLSCert(t)}, MinVersion: tls.VersionTLS12}
	c = Start(t, topics, append([]kfake.Opt{kfake.TLS(server)}, extra...)...)
	c.tls = &tls.Config{RootCAs: ca.Pool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	return c, ca.WriteCA(t, t.TempDir(), "kafka-ca")
}

// Kfake is the running cluster (nil while stopped).
func (c *Cluster) Kfake() *kfake.Cluster { return c.c }

// Stop closes the cluster; its data stays on disk.
func (c *Cluster) Stop() {
	if c.c != nil {
		c.c.Close()
		c.c = nil
	}
}

// Restart starts the stopped cluster again on the same ports with its data.
func (c *Cluster) Restart() {
	c.t.Helper()
	c.Stop()
	c.start(append(append([]kfake.Opt(nil), c.opts...), kfake.Ports(c.ports...)))
}

// Client returns a franz-go client for the cluster, closed at the end of the
// test.
func (c *Cluster) Client(opts ...kgo.Opt) *kgo.Client {
	c.t.Helper()
	base := []kgo.Opt{kgo.SeedBrokers(c.Addrs...), kgo.FetchMaxWait(100 * time.Millisecond)}
	if c.tls != nil {
		base = append(base, kgo.DialTLSConfig(c.tls))
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return cl
}

// Produce writes values to topic (round robin over its partitions), waits
// for the acks, and returns the records with their partitions and offsets,
// in the order of values.
func (c *Cluster) Produce(topic string, values ...[]byte) []*kgo.Record {
	c.t.Helper()
	cl := c.Client(kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.ProducerLinger(time.Millisecond))
	defer cl.Close()
	recs := make([]*kgo.Record, len(values))
	for i, v := range values {
		recs[i] = &kgo.Record{Value: v}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		c.t.Fatalf("produce to %s: %v", topic, err)
	}
	return recs
}

// Committed reads a group's committed offsets of topic over the wire, as an
// operator's admin tool does (OffsetFetch): partition -> next offset to
// read. Partitions without a commit are left out.
func (c *Cluster) Committed(group, topic string) (map[int32]int64, error) {
	c.t.Helper()
	cl := c.Client()
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := kmsg.NewPtrOffsetFetchRequest()
	g := kmsg.NewOffsetFetchRequestGroup()
	g.Group = group
	rt := kmsg.NewOffsetFetchRequestGroupTopic()
	rt.Topic = topic
	for _, p := range c.c.PartitionInfos(topic) {
		rt.Partitions = append(rt.Partitions, p.Partition)
	}
	g.Topics = append(g.Topics, rt)
	req.Groups = append(req.Groups, g)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	for _, rg := range resp.Groups {
		if err := kerr.ErrorForCode(rg.ErrorCode); err != nil {
			return nil, fmt.Errorf("group %s: %w", rg.Group, err)
		}
		for _, t := range rg.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
					return nil, fmt.Errorf("%s/%d: %w", t.Topic, p.Partition, err)
				}
				if t.Topic == topic && p.Offset >= 0 {
					out[p.Partition] = p.Offset
				}
			}
		}
	}
	return out, nil
}

// Records reads topic from the start until n records arrived or timeout
// passed, and returns what it read.
func (c *Cluster) Records(topic string, n int, timeout time.Duration) []*kgo.Record {
	c.t.Helper()
	cl := c.Client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

// ReadAll reads every record of topic up to the partitions' current high
// watermarks.
func (c *Cluster) ReadAll(topic string, timeout time.Duration) []*kgo.Record {
	c.t.Helper()
	end := map[int32]int64{}
	total := 0
	for _, p := range c.c.PartitionInfos(topic) {
		if p.HighWatermark > p.LogStartOffset {
			end[p.Partition] = p.HighWatermark
			total += int(p.HighWatermark - p.LogStartOffset)
		}
	}
	cl := c.Client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out := make([]*kgo.Record, 0, total)
	for len(end) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			c.t.Fatalf("reading %s: %d of %d records before the timeout", topic, len(out), total)
		}
		fs.EachRecord(func(r *kgo.Record) {
			out = append(out, r)
			if e, ok := end[r.Partition]; ok && r.Offset+1 >= e {
				delete(end, r.Partition)
			}
		})
	}
	return out
}
