package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"go.uber.org/goleak"

	"github.com/ternlog/tern/internal/testutil/kafkatest"
	"github.com/ternlog/tern/internal/watermark"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/pipelinetest"
)

// sarama starts one global go-metrics ticker for the process.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"))
}

func TestTracker(t *testing.T) {
	var marks []int64
	tr := newTracker(nil, topicPartition{}, 100)
	tr.mark = func(n int64) { marks = append(marks, n) }
	a := tr.add(100, 109)
	b := tr.add(110, 119)
	c := tr.add(120, 129)
	d := tr.add(130, 139)
	tr.ack(b, nil) // out of order: nothing contiguous yet
	assert.Empty(t, marks)
	assert.Equal(t, 3, tr.inFlight())
	tr.ack(a, nil)
	assert.Equal(t, []int64{120}, marks, "both batches, at once")
	tr.ack(d, errors.New("stopped")) // a failure
	tr.ack(c, nil)
	assert.Equal(t, []int64{120, 130}, marks, "up to the failed batch, not past it")
	e := tr.add(140, 149)
	tr.ack(e, nil)
	assert.Equal(t, []int64{120, 130}, marks, "nothing after a failure")
	assert.Equal(t, int64(130), tr.next())
	assert.Equal(t, 0, tr.inFlight())
	tr.ack(a, nil) // settled twice: ignored
	tr.close()
	tr.add(150, 150)
	assert.Equal(t, 1, tr.inFlight())
}

// The tracker's commit position never passes a batch that is not acked,
// whatever order acks come in.
func TestTrackerRandomOrder(t *testing.T) {
	for seed := range 200 {
		var got int64 = -1
		tr := newTracker(nil, topicPartition{}, 0)
		tr.mark = func(n int64) {
			if n <= got {
				t.Fatalf("seed %d: commit went from %d to %d", seed, got, n)
			}
			got = n
		}
		const n = 20
		var marks []*watermark.Mark[int64]
		for i := range n {
			marks = append(marks, tr.add(int64(i*10), int64(i*10+9)))
		}
		order := permutation(seed, n)
		acked := map[int]bool{}
		for _, i := range order {
			tr.ack(marks[i], nil)
			acked[i] = true
			prefix := 0
			for acked[prefix] {
				prefix++
			}
			if prefix > 0 {
				require.Equal(t, int64(prefix*10), got, "seed %d", seed)
			}
		}
		require.Equal(t, int64(n*10), got)
	}
}

func permutation(seed, n int) []int {
	p := make([]int, n)
	for i := range p {
		p[i] = i
	}
	x := uint32(seed*2654435761 + 1)
	for i := n - 1; i > 0; i-- {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		j := int(x % uint32(i+1))
		p[i], p[j] = p[j], p[i]
	}
	return p
}

func testConfig(addrs []string, group string, topics ...string) Config {
	c := DefaultConfig()
	c.Brokers, c.Group, c.Topics = addrs, group, topics
	c.SessionTimeout = config.Duration(time.Second)
	c.HeartbeatInterval = config.Duration(100 * time.Millisecond)
	c.RebalanceTimeout = config.Duration(5 * time.Second)
	c.RevokeTimeout = config.Duration(2 * time.Second)
	c.CommitInterval = config.Duration(50 * time.Millisecond)
	c.FetchMaxWait = config.Duration(50 * time.Millisecond)
	return c
}

// run runs the input until the returned stop is called.
func run(t *testing.T, cfg Config, em pipeline.Emitter) (tel *pipelinetest.Telemetry, stop func() error) {
	t.Helper()
	set := pipelinetest.Settings(t, "inputs.kafka")
	in, err := New(set, cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, em) }()
	var once sync.Once
	var runErr error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(30 * time.Second):
				t.Fatal("input did not stop")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return set.Telemetry.(*pipelinetest.Telemetry), stop
}

func values(prefix string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, "%s-%04d", prefix, i)
	}
	return out
}

// committed returns the group's committed offsets of topic, by partition.
func committed(c *kafkatest.Cluster, group, topic string) map[int32]int64 {
	out := map[int32]int64{}
	if gi := c.Kfake().GroupInfo(group); gi != nil {
		for p, cm := range gi.Commits[topic] {
			out[p] = cm.Offset
		}
	}
	return out
}

func waitCommitted(t *testing.T, c *kafkatest.Cluster, group, topic string, want map[int32]int64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if got := committed(c, group, topic); fmt.Sprint(got) == fmt.Sprint(want) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("committed %v, want %v", committed(c, group, topic), want)
}

// Records arrive with their key, headers, topic, partition and offset as
// fields; once acknowledged, the offsets are committed and the lag is 0.
func TestConsume(t *testing.T) {
	c := kafkatest.Start(t, []kafkatest.Topic{{Name: "logs", Partitions: 3}, {Name: "audit", Partitions: 1}})
	c.Produce("logs", values("l", 90)...)
	cl := c.Client()
	ctx := context.Background()
	require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Topic: "audit", Key: []byte("k1"), Value: []byte("a-0"),
		Headers: []kgo.RecordHeader{{Key: "trace", Value: []byte("abc")}}}).FirstErr())

	em := &pipelinetest.Emitter{}
	tel, stop := run(t, testConfig(c.Addrs, "g", "logs", "audit"), em)
	require.True(t, em.WaitFor(91, 20*time.Second), "got %d", len(em.Lines()))
	waitCommitted(t, c, "g", "logs", map[int32]int64{0: 30, 1: 30, 2: 30})
	waitCommitted(t, c, "g", "audit", map[int32]int64{0: 1})
	require.NoError(t, stop())

	var audit pipeline.Record
	seen := map[string]bool{}
	for _, r := range em.Records {
		seen[string(r.Data)] = true
		if string(r.Data) == "a-0" {
			audit = r
		}
	}
	assert.Len(t, seen, 91)
	assert.Equal(t, "kafka://audit/0@0", audit.Source)
	m := pipeline.NewMessage()
	for _, f := range audit.Fields {
		m.AddField(f)
	}
	s, _ := m.FieldString(FieldTopic)
	assert.Equal(t, "audit", s)
	p, _ := m.FieldInt(FieldPartition)
	assert.Equal(t, int64(0), p)
	o, _ := m.FieldInt(FieldOffset)
	assert.Equal(t, int64(0), o)
	s, _ = m.FieldString(FieldKey)
	assert.Equal(t, "k1", s)
	s, _ = m.FieldString(FieldHeaderPrefix + "trace")
	assert.Equal(t, "abc", s)
	assert.Equal(t, 0.0, tel.Counts["kafka_consumer_lag"])
}

// Offsets are committed only after the ack, and only up to the first batch
// not yet acknowledged; what was not committed is read again by the next
// member of the group.
func TestCommitFollowsAcks(t *testing.T) {
	c := kafkatest.Start(t, []kafkatest.Topic{{Name: "logs", Partitions: 1}})
	var mu sync.Mutex
	var held []pipeline.AckFunc
	em := &pipelinetest.Emitter{Ack: func(_ []pipeline.Record, ack pipeline.AckFunc) {
		mu.Lock()
		held = append(held, ack)
		mu.Unlock()
	}}
	cfg := testConfig(c.Addrs, "g", "logs")
	cfg.BatchMaxCount = 10
	cfg.RevokeTimeout = config.Duration(200 * time.Millisecond)
	_, stop := run(t, cfg, em)
	c.Produce("logs", values("x", 30)...)
	require.True(t, em.WaitFor(30, 20*time.Second))
	mu.Lock()
	n := len(held)
	mu.Unlock()
	require.GreaterOrEqual(t, n, 3)
	time.Sleep(200 * time.Millisecond)
	assert.Empty(t, committed(c, "g", "logs"), "nothing acked, nothing committed")

	// Ack every batch but the first: the commit cannot move.
	mu.Lock()
	for _, a := range held[1:] {
		a(nil)
	}
	first := held[0]
	mu.Unlock()
	time.Sleep(200 * time.Millisecond)
	assert.Empty(t, committed(c, "g", "logs"))
	first(nil)
	waitCommitted(t, c, "g", "logs", map[int32]int64{0: 30})

	// Ten more, never acknowledged: the next member reads them again.
	c.Produce("logs", values("y", 10)...)
	require.True(t, em.WaitFor(40, 20*time.Second))
	require.NoError(t, stop())
	assert.Equal(t, map[int32]int64{0: 30}, committed(c, "g", "logs"))

	em2 := &pipelinetest.Emitter{}
	_, stop2 := run(t, cfg, em2)
	require.True(t, em2.WaitFor(10, 20*time.Second))
	require.NoError(t, stop2())
	assert.Equal(t, string(values("y", 1)[0]), em2.Lines()[0])
	assert.Len(t, em2.Lines(), 10)
}

// On stop, the member waits (revoke_timeout) for what it handed on and
// commits it before leaving.
func TestStopCommitsWhatIsDelivered(t *testing.T) {
	c := kafkatest.Start(t, []kafkatest.Topic{{Name: "logs", Partitions: 2}})
	c.Produce("logs", values("x", 20)...)
	em := &pipelinetest.Emitter{Ack: func(_ []pipeline.Record, ack pipeline.AckFunc) {
		go func() { time.Sleep(300 * time.Millisecond); ack(nil) }()
	}}
	cfg := testConfig(c.Addrs, "g", "logs")
	cfg.CommitInterval = config.Duration(time.Hour) // only the revoke commits
	_, stop := run(t, cfg, em)
	require.True(t, em.WaitFor(20, 20*time.Second))
	require.NoError(t, stop())
	assert.Equal(t, map[int32]int64{0: 10, 1: 10}, committed(c, "g", "logs"))
}

func TestInitialOffsetNewest(t *testing.T) {
	c := kafkatest.Start(t, []kafkatest.Topic{{Name: "logs", Partitions: 1}})
	c.Produce("logs", values("old", 5)...)
	cfg := testConfig(c.Addrs, "g", "logs")
	cfg.InitialOffset = "newest"
	em := &pipelinetest.Emitter{}
	_, stop := run(t, cfg, em)
	// Wait until the member has its partition, then produce.
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if gi := c.Kfake().GroupInfo("g"); gi != nil && gi.State == "Stable" && gi.NumAssigned() == 1 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	c.Produce("logs", values("new", 3)...)
	require.True(t, em.WaitFor(3, 20*time.Second))
	require.NoError(t, stop())
	assert.Equal(t, []string{"new-0000", "new-0001", "new-0002"}, em.Lines())
}

// Records over max_record_bytes are skipped, counted, and committed past.
func TestOversizeSkipped(t *testing.T) {
	c := kafkatest.Start(t, []kafkatest.Topic{{Name: "logs", Partitions: 1}})
	c.Produce("logs", []byte("small-1"), []byte(strings.Repeat("x", 3000)), []byte("small-2"))
	cfg := testConfig(c.Addrs, "g", "logs")
	cfg.MaxRecordBytes = 2048
	em := &pipelinetest.Emitter{}
	tel, stop := run(t, cfg, em)
	require.True(t, em.WaitFor(2, 20*time.Second))
	waitCommitted(t, c, "g", "logs", map[int32]int64{0: 3})
	require.NoError(t, stop())
	assert.Equal(t, []string{"small-1", "small-2"}, em.Lines())
	assert.Equal(t, 1, tel.Dropped("oversize"))
}

func TestSASL(t *testing.T) {
	for _, mech := range []string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"} {
		t.Run(mech, func(t *testing.T) {
			c := kafkatest.Start(t, []kafkatest.Topic{{Name: "logs", Partitions: 1}},
				kfake.EnableSASL(), kfake.Superuser(mech, "tern", "s3cret"), kfake.Superuser("PLAIN", "admin", "admin"))
			cl := c.Client(kgo.SASL(plainAuth("admin", "admin")), kgo.DefaultProduceTopic("logs"))
			require.NoError(t, cl.ProduceSync(context.Background(), &kgo.Record{Value: []byte("hello")}).FirstErr())

			cfg := testConfig(c.Addrs, "g", "logs")
			cfg.SASL.Mechanism, cfg.SASL.Username, cfg.SASL.Password = mech, "tern", "s3cret"
			em := &pipelinetest.Emitter{}
			_, stop := run(t, cfg, em)
			require.True(t, em.WaitFor(1, 20*time.Second))
			require.NoError(t, stop())

			cfg.SASL.Password = "wrong"
			set := pipelinetest.Settings(t, "inputs.kafka")
			in, err := New(set, cfg)
			require.NoError(t, err)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			assert.Error(t, in.Run(ctx, &pipelinetest.Emitter{}), "a wrong password fails Run")
		})
	}
}

func TestValidate(t *testing.T) {
	err := DefaultConfig().Validate()
	require.Error(t, err)
	for _, want := range []string{"brokers: required", "topics: required", "group: required"} {
		assert.Contains(t, err.Error(), want)
	}
	c := testConfig([]string{"k:1"}, "g", "bad topic")
	c.InitialOffset, c.BalanceStrategy = "latest", "cooperative"
	c.RevokeTimeout = c.RebalanceTimeout
	err = c.Validate()
	for _, want := range []string{"topics: \"bad topic\"", "initial_offset:", "balance_strategy:", "revoke_timeout:"} {
		assert.Contains(t, err.Error(), want)
	}
}

func plainAuth(user, pass string) sasl.Mechanism {
	return plain.Auth{User: user, Pass: pass}.AsMechanism()
}

// TLS: the broker's certificate is verified against ca_file; a client that
// does not trust it gets nothing.
func TestTLS(t *testing.T) {
	c, caFile := kafkatest.StartTLS(t, []kafkatest.Topic{{Name: "logs", Partitions: 1}})
	c.Produce("logs", []byte("over tls"))
	cfg := testConfig(c.Addrs, "g", "logs")
	cfg.TLS.CAFile = caFile
	em := &pipelinetest.Emitter{}
	_, stop := run(t, cfg, em)
	require.True(t, em.WaitFor(1, 20*time.Second))
	require.NoError(t, stop())
	assert.Equal(t, []string{"over tls"}, em.Lines())

	cfg.TLS.CAFile = ""
	cfg.TLS.Enabled = true // system roots: the test CA is not among them
	in, err := New(pipelinetest.Settings(t, "inputs.kafka"), cfg)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	assert.Error(t, in.Run(ctx, &pipelinetest.Emitter{}))

	cfg.TLS.CAFile = "/nonexistent/ca.pem"
	in, err = New(pipelinetest.Settings(t, "inputs.kafka"), cfg)
	require.NoError(t, err)
	assert.Error(t, in.Check(), "tern check reads the CA file")
}

// Record batches compressed with each codec are read whole.
func TestConsumeCompressed(t *testing.T) {
	c := kafkatest.Start(t, []kafkatest.Topic{{Name: "logs", Partitions: 1}})
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	want := 0
	for name, codec := range codecs {
		cl := c.Client(kgo.DefaultProduceTopic("logs"), kgo.ProducerBatchCompression(codec))
		recs := make([]*kgo.Record, 20)
		for i := range recs {
			recs[i] = &kgo.Record{Value: fmt.Appendf(nil, "%s-%02d-%s", name, i, strings.Repeat("z", 200))}
		}
		require.NoError(t, cl.ProduceSync(context.Background(), recs...).FirstErr())
		want += len(recs)
	}
	em := &pipelinetest.Emitter{}
	_, stop := run(t, testConfig(c.Addrs, "g", "logs"), em)
	require.True(t, em.WaitFor(want, 20*time.Second))
	require.NoError(t, stop())
	seen := map[string]bool{}
	for _, l := range em.Lines() {
		seen[l] = true
	}
	assert.Len(t, seen, want)
	assert.True(t, seen["zstd-19-"+strings.Repeat("z", 200)])
}
