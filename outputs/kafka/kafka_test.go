package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/goleak"

	"github.com/ternlog/tern/internal/testutil/benchutil"
	"github.com/ternlog/tern/internal/testutil/kafkatest"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/pipelinetest"
	"github.com/ternlog/tern/pipeline/template"
)

// sarama starts one global go-metrics ticker for the process.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"))
}

func testConfig(addrs []string, topic string) Config {
	c := DefaultConfig()
	c.Brokers = addrs
	c.Topic = topic
	c.Linger = config.Duration(time.Millisecond)
	c.WriteTimeout = config.Duration(2 * time.Second)
	return c
}

func newOutput(t testing.TB, cfg Config) (*Output, *pipelinetest.Telemetry) {
	t.Helper()
	set := pipelinetest.Settings(t, "outputs.kafka")
	o, err := New(set, cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, o.Close(ctx))
	})
	return o, set.Telemetry.(*pipelinetest.Telemetry)
}

func encoded(n int, typ string) []pipeline.Encoded {
	out := make([]pipeline.Encoded, n)
	for i := range out {
		m := pipeline.NewMessage()
		m.Type = typ
		m.AddString("user", fmt.Sprintf("u%d", i%3))
		out[i] = pipeline.Encoded{Msg: m, Data: []byte(fmt.Sprintf("%s-%04d", typ, i))}
	}
	return out
}

func write(t *testing.T, o *Output, batch []pipeline.Encoded) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return o.Write(ctx, batch)
}

// Every codec, with both clients, reaches the topic whole; keys come from
// key_field.
func TestProduceRoundTrip(t *testing.T) {
	c := kafkatest.Start(t, []kafkatest.Topic{{Name: "logs", Partitions: 3}})
	for _, idem := range []bool{false, true} {
		for _, codec := range []string{"none", "gzip", "snappy", "lz4", "zstd"} {
			t.Run(fmt.Sprintf("idempotent=%v/%s", idem, codec), func(t *testing.T) {
				topic := fmt.Sprintf("t-%v-%s", idem, codec)
				require.NoError(t, c.Kfake().CreateTopic(topic, 3, nil))
				cfg := testConfig(c.Addrs, topic)
				cfg.Compression, cfg.Idempotent, cfg.KeyField = codec, idem, "user"
				o, _ := newOutput(t, cfg)
				require.NoError(t, write(t, o, encoded(50, "a")))
				require.NoError(t, write(t, o, encoded(50, "b")))
				recs := c.ReadAll(topic, 20*time.Second)
				require.Len(t, recs, 100)
				got := map[string]string{}
				parts := map[string]int32{}
				for _, r := range recs {
					got[string(r.Value)] = string(r.Key)
					if p, ok := parts[string(r.Key)]; ok {
						assert.Equal(t, p, r.Partition, "one key, one partition")
					}
					parts[string(r.Key)] = r.Partition
				}
				assert.Equal(t, "u1", got["a-0004"])
				assert.Equal(t, "u0", got["b-0048"])
			})
		}
	}
}

// header_fields: listed fields and prefixes become record headers, one per
// value, with both clients; the kafka input's "kafka.header.<key>" fields
// get their key back, so a consumed record's headers travel on.
func TestHeaderFields(t *testing.T) {
	c := kafkatest.Start(t, []kafkatest.Topic{{Name: "logs", Partitions: 1}})
	for _, idem := range []bool{false, true} {
		t.Run(fmt.Sprintf("idempotent=%v", idem), func(t *testing.T) {
			topic := fmt.Sprintf("h-%v", idem)
			require.NoError(t, c.Kfake().CreateTopic(topic, 1, nil))
			cfg := testConfig(c.Addrs, topic)
			cfg.Idempotent = idem
			cfg.HeaderFields = []string{"kafka.header.*", "tenant", "count"}
			o, _ := newOutput(t, cfg)
			m := pipeline.NewMessage()
			m.AddString("kafka.header.trace", "abc")
			m.AddField(pipeline.NewField("tenant", pipeline.TypeString, "", pipeline.StringValue("acme"), pipeline.StringValue("globex")))
			m.AddString("other", "not a header")
			m.AddInt("count", 3)
			m.AddBytes("kafka.header.bin", []byte{0, 0xff})
			require.NoError(t, write(t, o, []pipeline.Encoded{{Msg: m, Data: []byte("v")}}))
			recs := c.ReadAll(topic, 20*time.Second)
			require.Len(t, recs, 1)
			var got []string
			for _, h := range recs[0].Headers {
				got = append(got, fmt.Sprintf("%s=%q", h.Key, h.Value))
			}
			assert.Equal(t, []string{`trace="abc"`, `tenant="acme"`, `tenant="globex"`, `count="3"`, `bin="\x00\xff"`}, got)
		})
	}
	bad := testConfig([]string{"k:9092"}, "x")
	bad.HeaderFields = []string{"", "*", "a*b*"}
	err := bad.Validate()
	require.Error(t, err)
	assert.Equal(t, 3, strings.Count(err.Error(), "header_fields:"), err.Error())
}

// R25: a topic rendered from the message stays under its literal prefix
// and within Kafka's topic characters; what does not is refused for good
// (dead letter) and counted, while the rest of the batch is produced.
func TestTopicConfinement(t *testing.T) {
	c := kafkatest.Start(t, []kafkatest.Topic{{Name: "logs-auth", Partitions: 1}})
	o, tel := newOutput(t, testConfig(c.Addrs, "logs-%{Type}"))
	batch := append(encoded(2, "auth"), encoded(1, "../etc")...)
	batch = append(batch, encoded(1, "auth\x00x")...)
	err := write(t, o, batch)
	var pe *pipeline.PartialError
	require.ErrorAs(t, err, &pe)
	require.Len(t, pe.Errs, 4)
	assert.NoError(t, pe.Errs[0])
	assert.NoError(t, pe.Errs[1])
	assert.True(t, pipeline.IsPermanent(pe.Errs[2]), "%v", pe.Errs[2])
	assert.True(t, pipeline.IsPermanent(pe.Errs[3]), "%v", pe.Errs[3])
	assert.ErrorIs(t, pe.Errs[2], errConfined)
	assert.Equal(t, 2.0, tel.Counts["template_confinement_violations_total"])
	assert.Len(t, c.ReadAll("logs-auth", 10*time.Second), 2)
}

func TestTopicTemplate(t *testing.T) {
	for _, bad := range []string{"", "%{Type}", "%{Fields[x]}-logs", "logs-%{Nope}", "logs-%{Type", "lo gs", "logs/%{Type}"} {
		_, err := parseTopic(bad)
		assert.Error(t, err, "%q", bad)
	}
	tt, err := parseTopic("logs.%{Fields[tenant]}.%{Severity}%%")
	require.NoError(t, err)
	m := pipeline.NewMessage()
	m.Severity = 3
	m.AddString("tenant", "acme")
	_, _, err = tt.render(nil, m)
	assert.ErrorIs(t, err, errConfined, "%% renders a percent sign, not a topic character")
	tt, _ = parseTopic("logs.%{Fields[tenant]}.%{Severity}")
	got, _, err := tt.render(nil, m)
	require.NoError(t, err)
	assert.Equal(t, "logs.acme.3", got)
	tt, _ = parseTopic("logs.%{Fields[site]}")
	_, _, err = tt.render(nil, m)
	assert.ErrorIs(t, err, template.ErrMissing)
	tt, _ = parseTopic("logs.%{Fields[site]:-default}")
	got, _, err = tt.render(nil, m)
	require.NoError(t, err)
	assert.Equal(t, "logs.default", got)
}

// Records larger than max_message_bytes, and records the broker finds too
// large, are refused for good; the others go through.
func TestTooLargeIsPermanent(t *testing.T) {
	c := kafkatest.Start(t, []kafkatest.Topic{{Name: "logs", Partitions: 1}},
		kfake.BrokerConfigs(map[string]string{"message.max.bytes": "2048"}))
	cfg := testConfig(c.Addrs, "logs")
	cfg.MaxMessageBytes = 100
	o, _ := newOutput(t, cfg)
	batch := encoded(2, "a")
	batch[1].Data = []byte(strings.Repeat("x", 101))
	var pe *pipeline.PartialError
	require.ErrorAs(t, write(t, o, batch), &pe)
	assert.NoError(t, pe.Errs[0])
	assert.True(t, pipeline.IsPermanent(pe.Errs[1]))

	for _, idem := range []bool{false, true} {
		cfg.MaxMessageBytes, cfg.Idempotent = 1<<20, idem
		o, _ = newOutput(t, cfg)
		batch = encoded(1, "a")
		batch[0].Data = []byte(strings.Repeat("x", 4096))
		err := write(t, o, batch)
		require.ErrorAs(t, err, &pe, "idempotent=%v", idem)
		assert.True(t, pipeline.IsPermanent(pe.Errs[0]), "idempotent=%v: %v", idem, pe.Errs[0])
	}
}

// A broker that is gone makes Write fail with a retriable error (never nil,
// never a drop); once it is back, the same batch goes through and is all
// in the topic.
func TestBrokerDownIsRetried(t *testing.T) {
	for _, idem := range []bool{false, true} {
		t.Run(fmt.Sprintf("idempotent=%v", idem), func(t *testing.T) {
			c := kafkatest.Start(t, []kafkatest.Topic{{Name: "logs", Partitions: 2}})
			cfg := testConfig(c.Addrs, "logs")
			cfg.Idempotent = idem
			cfg.WriteTimeout = config.Duration(500 * time.Millisecond)
			o, _ := newOutput(t, cfg)
			require.NoError(t, write(t, o, encoded(10, "a")))
			c.Stop()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := o.Write(ctx, encoded(10, "b"))
			cancel()
			require.Error(t, err)
			assert.False(t, pipeline.IsPermanent(err))
			var pe *pipeline.PartialError
			if errors.As(err, &pe) {
				for _, e := range pe.Errs {
					require.Error(t, e)
					assert.False(t, pipeline.IsPermanent(e), "%v", e)
				}
			}
			c.Restart()
			deadline := time.Now().Add(30 * time.Second)
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err = o.Write(ctx, encoded(10, "b"))
				cancel()
				if err == nil || time.Now().After(deadline) {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			require.NoError(t, err)
			seen := map[string]bool{}
			for _, r := range c.ReadAll("logs", 20*time.Second) {
				seen[string(r.Value)] = true
			}
			for i := range 10 {
				assert.True(t, seen[fmt.Sprintf("b-%04d", i)], "b-%04d", i)
			}
		})
	}
}

// A Write cut short by its context returns an error and leaves the batch's
// bytes alone: the producer got copies.
// A write cut short by its context fails with the context's error for
// every record, and not permanently: the engine retries the batch (the
// producer may still deliver some: duplicates, never losses), it does not
// dead-letter it.
func TestWriteCancelled(t *testing.T) {
	for _, idem := range []bool{false, true} { // kafka-go, sarama's idempotent producer
		t.Run(fmt.Sprintf("idempotent=%v", idem), func(t *testing.T) {
			c := kafkatest.Start(t, []kafkatest.Topic{{Name: "logs", Partitions: 1}})
			cfg := testConfig(c.Addrs, "logs")
			cfg.Idempotent = idem
			o, _ := newOutput(t, cfg)
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			err := o.Write(ctx, encoded(5, "a"))
			require.Error(t, err)
			t.Log(err)
			assert.False(t, pipeline.IsPermanent(err), "a cancelled write is not permanent: %v", err)
			var pe *pipeline.PartialError
			if errors.As(err, &pe) {
				require.Len(t, pe.Errs, 5)
				for i, e := range pe.Errs {
					if e != nil {
						assert.ErrorIs(t, e, context.Canceled, "record %d", i)
						assert.False(t, pipeline.IsPermanent(e), "record %d", i)
					}
				}
			} else {
				assert.ErrorIs(t, err, context.Canceled)
			}
			// The same batch with a live context goes through.
			require.NoError(t, o.Write(context.Background(), encoded(5, "b")))
			assert.GreaterOrEqual(t, len(c.ReadAll("logs", 10*time.Second)), 5)
		})
	}
}

func TestValidate(t *testing.T) {
	c := DefaultConfig()
	err := c.Validate()
	require.Error(t, err)
	for _, want := range []string{"brokers: required", "topic: required"} {
		assert.Contains(t, err.Error(), want)
	}
	c = testConfig([]string{"k:9092"}, "x")
	c.RequiredAcks, c.Compression, c.Idempotent = "none", "brotli", true
	c.SASL.Mechanism = "GSSAPI"
	err = c.Validate()
	for _, want := range []string{"required_acks: must be all or one", "compression:", "sasl.mechanism:", "sasl.username: required"} {
		assert.Contains(t, err.Error(), want)
	}
}

// BenchmarkWrite produces batches of 1024 records of 300 bytes to kfake in
// the same process (so ns/op includes the broker's work).
func BenchmarkWrite(b *testing.B) {
	for _, idem := range []bool{false, true} {
		b.Run(fmt.Sprintf("idempotent=%v", idem), func(b *testing.B) {
			c := kafkatest.Start(b, []kafkatest.Topic{{Name: "logs", Partitions: 4}})
			cfg := testConfig(c.Addrs, "logs")
			cfg.Idempotent = idem
			o, _ := newOutput(b, cfg)
			batch := encoded(1024, "a")
			for i := range batch {
				batch[i].Data = []byte(strings.Repeat("x", 300))
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.SetBytes(300 * 1024)
			stop := benchutil.CPU(b)
			for b.Loop() {
				if err := o.Write(ctx, batch); err != nil {
					b.Fatal(err)
				}
			}
			stop()
			b.ReportMetric(float64(b.N)*1024/b.Elapsed().Seconds(), "records/s")
		})
	}
}

func TestTLS(t *testing.T) {
	c, caFile := kafkatest.StartTLS(t, []kafkatest.Topic{{Name: "logs", Partitions: 1}})
	for _, idem := range []bool{false, true} {
		cfg := testConfig(c.Addrs, "logs")
		cfg.Idempotent = idem
		cfg.TLS.CAFile = caFile
		o, _ := newOutput(t, cfg)
		require.NoError(t, o.Check())
		require.NoError(t, write(t, o, encoded(3, fmt.Sprint(idem))), "idempotent=%v", idem)

		cfg.TLS.CAFile, cfg.TLS.Enabled = "", true // system roots do not know the test CA
		cfg.WriteTimeout = config.Duration(500 * time.Millisecond)
		o, _ = newOutput(t, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		assert.Error(t, o.Write(ctx, encoded(1, "x")), "idempotent=%v", idem)
		cancel()
	}
	assert.Len(t, c.ReadAll("logs", 10*time.Second), 6)
}

// A missing topic is retried (not dropped) unless the output asks the
// brokers to create it.
func TestAutoCreateTopics(t *testing.T) {
	c := kafkatest.Start(t, nil, kfake.AllowAutoTopicCreation())
	for _, idem := range []bool{false, true} {
		topic := fmt.Sprintf("auto-%v", idem)
		cfg := testConfig(c.Addrs, topic)
		cfg.Idempotent = idem
		cfg.WriteTimeout = config.Duration(500 * time.Millisecond)
		o, _ := newOutput(t, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := o.Write(ctx, encoded(1, "a"))
		cancel()
		require.Error(t, err, "idempotent=%v", idem)
		assert.False(t, pipeline.IsPermanent(err))

		cfg.AutoCreateTopics = true
		o, _ = newOutput(t, cfg)
		// The first metadata request creates the topic; the engine's retry
		// then finds it.
		deadline := time.Now().Add(10 * time.Second)
		for err = write(t, o, encoded(2, "b")); err != nil && time.Now().Before(deadline); err = write(t, o, encoded(2, "b")) {
			time.Sleep(100 * time.Millisecond)
		}
		require.NoError(t, err, "idempotent=%v", idem)
		assert.Len(t, c.ReadAll(topic, 10*time.Second), 2)
	}
}
