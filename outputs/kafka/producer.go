package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"

	"github.com/ternlog/tern/internal/kafkax"
)

// record is one Kafka record to produce. Its bytes belong to the producer
// until produce returns.
type record struct {
	topic      string
	key, value []byte
	headers    []header
}

// header is one record header.
type header struct {
	key   string
	value []byte
}

// producer is what the output needs from a Kafka client.
type producer interface {
	// produce sends recs and returns once the broker has acknowledged each
	// of them (with the configured acks) or each has failed, or ctx ended:
	// errs[i] (len(recs) long, all nil on entry) gets the error of recs[i].
	// A record whose fate is unknown when ctx ends gets ctx's error; it may
	// still be delivered later, which is a duplicate, never a loss.
	produce(ctx context.Context, recs []record, errs []error)
	close(ctx context.Context) error
}

// kafkaGoProducer writes with segmentio/kafka-go: synchronous
// WriteMessages calls, one per topic in the batch, which return per-record
// errors (kafka.WriteErrors).
type kafkaGoProducer struct {
	w         *kafkago.Writer
	transport *kafkago.Transport
	msgs      []kafkago.Message
}

func newKafkaGo(cfg Config, tlsCfg *tls.Config) (*kafkaGoProducer, error) {
	mech, err := cfg.SASL.KafkaGo()
	if err != nil {
		return nil, err
	}
	tr := &kafkago.Transport{
		ClientID: cfg.ClientID, TLS: tlsCfg, SASL: mech,
		DialTimeout: 10 * time.Second, IdleTimeout: 5 * time.Minute, MetadataTTL: 30 * time.Second,
	}
	w := &kafkago.Writer{
		Addr:      kafkago.TCP(cfg.Brokers...),
		Transport: tr,
		// The engine retries failed records forever; a few attempts here
		// ride out leader moves without a round trip through it.
		MaxAttempts:     3,
		WriteBackoffMin: 100 * time.Millisecond,
		WriteBackoffMax: time.Second,
		// Batches are bounded by bytes; kafka-go preallocates BatchSize
		// slots per batch, so the count cap stays modest.
		BatchSize:              1024,
		BatchBytes:             max(int64(cfg.BatchBytes), int64(cfg.MaxMessageBytes)+recordOverhead),
		BatchTimeout:           cfg.Linger.D(),
		ReadTimeout:            cfg.WriteTimeout.D(),
		WriteTimeout:           cfg.WriteTimeout.D(),
		RequiredAcks:           kafkago.RequireAll,
		AllowAutoTopicCreation: cfg.AutoCreateTopics,
	}
	if cfg.RequiredAcks == "one" {
		w.RequiredAcks = kafkago.RequireOne
	}
	if cfg.KeyField != "" {
		w.Balancer = &kafkago.Hash{}
	} else {
		w.Balancer = &kafkago.RoundRobin{}
	}
	switch cfg.Compression {
	case "gzip":
		w.Compression = compress.Gzip
	case "snappy":
		w.Compression = compress.Snappy
	case "lz4":
		w.Compression = compress.Lz4
	case "zstd":
		w.Compression = compress.Zstd
	}
	return &kafkaGoProducer{w: w, transport: tr}, nil
}

func (p *kafkaGoProducer) produce(ctx context.Context, recs []record, errs []error) {
	// One call per topic: kafka-go fails a whole call when one topic's
	// metadata cannot be had, and that must not hold the other topics.
	for start := 0; start < len(recs); {
		end := start + 1
		for end < len(recs) && recs[end].topic == recs[start].topic {
			end++
		}
		p.msgs = p.msgs[:0]
		for _, r := range recs[start:end] {
			m := kafkago.Message{Topic: r.topic, Key: r.key, Value: r.value}
			if len(r.headers) > 0 {
				m.Headers = make([]kafkago.Header, len(r.headers))
				for j, h := range r.headers {
					m.Headers[j] = kafkago.Header{Key: h.key, Value: h.value}
				}
			}
			p.msgs = append(p.msgs, m)
		}
		err := p.w.WriteMessages(ctx, p.msgs...)
		var werr kafkago.WriteErrors
		switch {
		case err == nil:
		case errors.As(err, &werr) && len(werr) == end-start:
			copy(errs[start:end], werr)
		default:
			for i := start; i < end; i++ {
				errs[i] = err
			}
		}
		start = end
	}
	clear(p.msgs) // drop references to the batch's bytes
}

func (p *kafkaGoProducer) close(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- p.w.Close() }()
	select {
	case err := <-done:
		p.transport.CloseIdleConnections()
		return err
	case <-ctx.Done():
		return fmt.Errorf("kafka-go writer did not close: %w", ctx.Err())
	}
}

// saramaProducer writes with IBM/sarama's AsyncProducer, for the
// idempotent producer kafka-go lacks. Successes and Errors are drained by
// two goroutines (they are unbuffered: an undrained channel stalls Input).
type saramaProducer struct {
	ap      sarama.AsyncProducer
	drained sync.WaitGroup
}

// pending is one produce call waiting for its records.
type pending struct {
	errs []error
	left atomic.Int64
	done chan struct{}
}

type slot struct {
	p *pending
	i int
}

func (s slot) settle(err error) {
	s.p.errs[s.i] = err
	if s.p.left.Add(-1) == 0 {
		close(s.p.done)
	}
}

func saramaConfig(cfg Config, tlsCfg *tls.Config) (*sarama.Config, error) {
	sc := sarama.NewConfig()
	v, err := kafkax.ParseVersion(cfg.Version)
	if err != nil {
		return nil, err
	}
	sc.Version = v
	if cfg.ClientID != "" {
		sc.ClientID = cfg.ClientID
	}
	sc.Net.TLS.Enable = tlsCfg != nil
	sc.Net.TLS.Config = tlsCfg
	cfg.SASL.Sarama(sc)
	sc.Net.ReadTimeout = cfg.WriteTimeout.D()
	sc.Net.WriteTimeout = cfg.WriteTimeout.D()
	sc.Metadata.AllowAutoTopicCreation = cfg.AutoCreateTopics
	sc.Producer.Return.Successes = true
	sc.Producer.Return.Errors = true
	sc.Producer.RequiredAcks = sarama.WaitForAll
	if cfg.RequiredAcks == "one" {
		sc.Producer.RequiredAcks = sarama.WaitForLocal
	}
	sc.Producer.Timeout = cfg.WriteTimeout.D()
	sc.Producer.MaxMessageBytes = cfg.MaxMessageBytes.N() + recordOverhead
	sc.Producer.Flush.Bytes = cfg.BatchBytes.N()
	sc.Producer.Flush.Frequency = cfg.Linger.D()
	sc.Producer.Retry.Max = 3
	sc.Producer.Retry.Backoff = 250 * time.Millisecond
	sc.ChannelBufferSize = 4096
	if cfg.KeyField != "" {
		sc.Producer.Partitioner = sarama.NewHashPartitioner
	} else {
		sc.Producer.Partitioner = sarama.NewRoundRobinPartitioner
	}
	switch cfg.Compression {
	case "gzip":
		sc.Producer.Compression = sarama.CompressionGZIP
	case "snappy":
		sc.Producer.Compression = sarama.CompressionSnappy
	case "lz4":
		sc.Producer.Compression = sarama.CompressionLZ4
	case "zstd":
		sc.Producer.Compression = sarama.CompressionZSTD
	}
	if cfg.Idempotent {
		sc.Producer.Idempotent = true
		sc.Producer.RequiredAcks = sarama.WaitForAll
		sc.Net.MaxOpenRequests = 1
	}
	return sc, sc.Validate()
}

func newSarama(cfg Config, tlsCfg *tls.Config) (*saramaProducer, error) {
	sc, err := saramaConfig(cfg, tlsCfg)
	if err != nil {
		return nil, err
	}
	ap, err := sarama.NewAsyncProducer(cfg.Brokers, sc)
	if err != nil {
		return nil, err
	}
	p := &saramaProducer{ap: ap}
	p.drained.Go(func() {
		for m := range ap.Successes() {
			m.Metadata.(slot).settle(nil)
		}
	})
	p.drained.Go(func() {
		for e := range ap.Errors() {
			e.Msg.Metadata.(slot).settle(e.Err)
		}
	})
	return p, nil
}

func (p *saramaProducer) produce(ctx context.Context, recs []record, errs []error) {
	w := &pending{errs: make([]error, len(recs)), done: make(chan struct{})}
	w.left.Store(int64(len(recs)))
	sent := 0
loop:
	for i, r := range recs {
		m := &sarama.ProducerMessage{Topic: r.topic, Value: sarama.ByteEncoder(r.value), Metadata: slot{w, i}}
		if r.key != nil {
			m.Key = sarama.ByteEncoder(r.key)
		}
		for _, h := range r.headers {
			m.Headers = append(m.Headers, sarama.RecordHeader{Key: []byte(h.key), Value: h.value})
		}
		select {
		case p.ap.Input() <- m:
			sent++
		case <-ctx.Done():
			break loop
		}
	}
	if sent < len(recs) {
		for i := sent; i < len(recs); i++ {
			errs[i] = ctx.Err()
		}
		if w.left.Add(int64(sent-len(recs))) == 0 {
			close(w.done)
		}
	}
	select {
	case <-w.done:
		copy(errs[:sent], w.errs)
	case <-ctx.Done():
		// The drain goroutines still settle w later; nobody reads it.
		for i := range sent {
			errs[i] = ctx.Err()
		}
	}
}

func (p *saramaProducer) close(ctx context.Context) error {
	p.ap.AsyncClose()
	done := make(chan struct{})
	go func() { p.drained.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sarama producer did not close: %w", ctx.Err())
	}
}
