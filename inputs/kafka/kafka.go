// Package kafka is the input that consumes Kafka topics as a member of a
// consumer group, committing each partition's offset only once the records
// before it are delivered.
package kafka

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/ternlog/tern/internal/kafkax"
	"github.com/ternlog/tern/internal/ratelog"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
)

//go:embed sample.toml
var sample string

// Type selects this input.
const Type = "kafka"

// Field names the input adds to every message.
const (
	FieldTopic        = "kafka.topic"
	FieldPartition    = "kafka.partition"
	FieldOffset       = "kafka.offset"
	FieldKey          = "kafka.key"
	FieldHeaderPrefix = "kafka.header."
)

// Config is the [inputs.<name>] table with type = "kafka".
type Config struct {
	// Client is brokers, client_id, version, tls and sasl.
	kafkax.Client
	// Topics to consume.
	Topics []string `toml:"topics"`
	// Group is the consumer group: every member shares the topics'
	// partitions, each partition read by one member at a time.
	Group string `toml:"group"`
	// InitialOffset is where a partition without a committed offset
	// starts: "oldest" or "newest".
	InitialOffset string `toml:"initial_offset"`
	// BalanceStrategy assigns partitions to members: "roundrobin",
	// "range" or "sticky" (moves the fewest partitions on a rebalance).
	BalanceStrategy string `toml:"balance_strategy"`
	// SessionTimeout removes a member that sent no heartbeat for this long;
	// HeartbeatInterval is how often members send one.
	SessionTimeout    config.Duration `toml:"session_timeout"`
	HeartbeatInterval config.Duration `toml:"heartbeat_interval"`
	// RebalanceTimeout is how long the group waits for members to let go
	// of their partitions in a rebalance.
	RebalanceTimeout config.Duration `toml:"rebalance_timeout"`
	// RevokeTimeout is how long a member losing its partitions (rebalance
	// or stop) waits for the records it handed on to be delivered, so their
	// offsets are committed before another member takes over. Records still
	// undelivered then are read again by the next owner (duplicates).
	RevokeTimeout config.Duration `toml:"revoke_timeout"`
	// CommitInterval is how often delivered offsets are committed.
	CommitInterval config.Duration `toml:"commit_interval"`
	// BatchMaxCount caps the records of one partition handed on at once.
	BatchMaxCount int `toml:"batch_max_count"`
	// MaxRecordBytes caps a record; larger ones are skipped and counted
	// (reason "oversize").
	MaxRecordBytes config.Size `toml:"max_record_bytes"`
	// FetchMaxWait is how long the broker may hold a fetch while it has
	// too little data.
	FetchMaxWait config.Duration `toml:"fetch_max_wait"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Client:        kafkax.DefaultClient(),
		InitialOffset: "oldest", BalanceStrategy: "roundrobin",
		SessionTimeout: config.Duration(10 * time.Second), HeartbeatInterval: config.Duration(3 * time.Second),
		RebalanceTimeout: config.Duration(60 * time.Second), RevokeTimeout: config.Duration(20 * time.Second),
		CommitInterval: config.Duration(time.Second), BatchMaxCount: 1024, MaxRecordBytes: 1 << 20,
		FetchMaxWait: config.Duration(250 * time.Millisecond),
	}
}

// Validate checks the config.
func (c Config) Validate() error {
	errs := []error{c.Client.Validate()}
	if len(c.Topics) == 0 {
		errs = append(errs, errors.New("topics: required"))
	}
	for _, t := range c.Topics {
		if !kafkax.IsValidTopic(t) {
			errs = append(errs, fmt.Errorf("topics: %q is not a Kafka topic (1..249 of a-z A-Z 0-9 . _ -)", t))
		}
	}
	if c.Group == "" {
		errs = append(errs, errors.New("group: required"))
	}
	if c.InitialOffset != "oldest" && c.InitialOffset != "newest" {
		errs = append(errs, fmt.Errorf("initial_offset: must be oldest or newest, not %q", c.InitialOffset))
	}
	if _, ok := strategies[c.BalanceStrategy]; !ok {
		errs = append(errs, fmt.Errorf("balance_strategy: must be roundrobin, range or sticky, not %q", c.BalanceStrategy))
	}
	if c.HeartbeatInterval <= 0 || c.SessionTimeout <= c.HeartbeatInterval {
		errs = append(errs, errors.New("heartbeat_interval: must be positive and shorter than session_timeout"))
	}
	if c.RevokeTimeout >= c.RebalanceTimeout {
		errs = append(errs, errors.New("revoke_timeout: must be shorter than rebalance_timeout (the group would drop the member)"))
	}
	if c.CommitInterval <= 0 {
		errs = append(errs, errors.New("commit_interval: must be positive"))
	}
	if c.BatchMaxCount < 1 {
		errs = append(errs, errors.New("batch_max_count: must be positive"))
	}
	if c.MaxRecordBytes < 1<<10 || c.MaxRecordBytes > 1<<30 {
		errs = append(errs, errors.New("max_record_bytes: must be between 1KiB and 1GiB"))
	}
	return errors.Join(errs...)
}

var strategies = map[string]func() sarama.BalanceStrategy{
	"roundrobin": sarama.NewBalanceStrategyRoundRobin,
	"range":      sarama.NewBalanceStrategyRange,
	"sticky":     sarama.NewBalanceStrategySticky,
}

// Input consumes Kafka topics.
type Input struct {
	cfg Config
	set pipeline.Settings
	lag func(float64, ...string)
}

var _ pipeline.Input = (*Input)(nil)

// New returns a Kafka input; it connects only when run.
func New(set pipeline.Settings, cfg Config) (*Input, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	in := &Input{cfg: cfg, set: set, lag: func(float64, ...string) {}}
	set.DeclareDrops("oversize")
	set.DeclareErrors("consumer")
	if set.Telemetry != nil {
		in.lag = set.Telemetry.Gauge("kafka_consumer_lag",
			"records of a partition after its last delivered offset (high watermark - next offset to commit)",
			"topic", "partition")
	}
	return in, nil
}

// Factory registers the input.
func Factory() pipeline.Factory[pipeline.Input] {
	return pipeline.NewFactory(Type, sample, DefaultConfig, func(s pipeline.Settings, c Config) (pipeline.Input, error) {
		return New(s, c)
	}).WithSummary("a consumer group; offsets committed after delivery")
}

// Check reads the TLS files the config names.
func (in *Input) Check() error {
	_, err := in.cfg.TLSConfig(in.set)
	return err
}

func (in *Input) saramaConfig() (*sarama.Config, error) {
	c := in.cfg
	sc := sarama.NewConfig()
	sc.Version, _ = kafkax.ParseVersion(c.Version)
	sc.ClientID = c.ClientID
	tlsCfg, err := c.TLSConfig(in.set) // the files are read at every Run
	if err != nil {
		return nil, err
	}
	sc.Net.TLS.Enable = tlsCfg != nil
	sc.Net.TLS.Config = tlsCfg
	c.SASL.Sarama(sc)
	sc.Consumer.Return.Errors = true
	sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	if c.InitialOffset == "newest" {
		sc.Consumer.Offsets.Initial = sarama.OffsetNewest
	}
	sc.Consumer.Offsets.AutoCommit.Enable = true
	sc.Consumer.Offsets.AutoCommit.Interval = c.CommitInterval.D()
	sc.Consumer.Group.Rebalance.GroupStrategies = []sarama.BalanceStrategy{strategies[c.BalanceStrategy]()}
	sc.Consumer.Group.Session.Timeout = c.SessionTimeout.D()
	sc.Consumer.Group.Heartbeat.Interval = c.HeartbeatInterval.D()
	sc.Consumer.Group.Rebalance.Timeout = c.RebalanceTimeout.D()
	sc.Consumer.MaxWaitTime = c.FetchMaxWait.D()
	sc.Consumer.Fetch.Max = int32(c.MaxRecordBytes)
	sc.Consumer.Fetch.Default = min(1<<20, int32(c.MaxRecordBytes))
	sc.ChannelBufferSize = min(2*c.BatchMaxCount, 8192)
	return sc, sc.Validate()
}

func (in *Input) Run(ctx context.Context, out pipeline.Emitter) error {
	sc, err := in.saramaConfig()
	if err != nil {
		return err
	}
	group, err := sarama.NewConsumerGroup(in.cfg.Brokers, in.cfg.Group, sc)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	wg.Go(func() { in.drainErrors(group.Errors()) })
	h := &handler{in: in, out: out}
	var runErr error
	for ctx.Err() == nil {
		// Consume joins the group and returns when the generation ends
		// (a rebalance, or ctx); the next call joins the next one.
		if err := group.Consume(ctx, in.cfg.Topics, h); err != nil && ctx.Err() == nil {
			runErr = err
			break
		}
	}
	// Consume's ctx is done (or it failed) before Close: sarama#2717.
	if err := group.Close(); err != nil && runErr == nil && ctx.Err() == nil {
		runErr = err
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return runErr
}

func (in *Input) drainErrors(errs <-chan error) {
	logs := ratelog.Every(10 * time.Second)
	for err := range errs {
		if errors.Is(err, sarama.ErrMessageTooLarge) {
			in.set.Drop("oversize", 1)
		} else {
			in.set.Error("consumer")
		}
		logs.Warn(in.set.Logger, "kafka consumer error", "err", err)
	}
}

// handler is the sarama ConsumerGroupHandler: one generation at a time.
type handler struct {
	in  *Input
	out pipeline.Emitter

	mu  sync.Mutex
	gen *generation
}

func (h *handler) Setup(sess sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	h.gen = &generation{sess: sess, parts: map[topicPartition]*tracker{}}
	h.mu.Unlock()
	h.in.set.Logger.Info("kafka partitions assigned", "generation", sess.GenerationID(), "claims", fmt.Sprint(sess.Claims()))
	return nil
}

// Cleanup runs once every ConsumeClaim has returned, before the partitions
// go to their next owner: wait (bounded) for what was handed on to be
// delivered, and commit it.
func (h *handler) Cleanup(sess sarama.ConsumerGroupSession) error {
	h.mu.Lock()
	gen := h.gen
	h.mu.Unlock()
	left := gen.wait(h.in.cfg.RevokeTimeout.D())
	gen.close()
	sess.Commit()
	for tp := range gen.parts {
		h.in.lag(0, tp.topic, strconv.Itoa(int(tp.partition)))
	}
	if left > 0 {
		h.in.set.Logger.Warn("kafka partitions revoked with records still undelivered; their next owner reads them again",
			"batches", left, "revoke_timeout", h.in.cfg.RevokeTimeout.String())
	}
	return nil
}

func (h *handler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	h.mu.Lock()
	gen := h.gen
	h.mu.Unlock()
	tp := topicPartition{claim.Topic(), claim.Partition()}
	tr := gen.tracker(tp, claim.InitialOffset())
	ctx := sess.Context()
	partLabel := strconv.Itoa(int(tp.partition))
	max := h.in.cfg.BatchMaxCount
	msgs := make([]*sarama.ConsumerMessage, 0, max)
	for {
		msgs = msgs[:0]
		select {
		case <-ctx.Done():
			return nil
		case m, ok := <-claim.Messages():
			if !ok {
				return nil
			}
			msgs = append(msgs, m)
		}
		// Take what is already buffered, up to a batch.
	more:
		for len(msgs) < max {
			select {
			case m, ok := <-claim.Messages():
				if !ok {
					break more
				}
				msgs = append(msgs, m)
			default:
				break more
			}
		}
		mark := tr.add(msgs[0].Offset, msgs[len(msgs)-1].Offset)
		recs := h.toRecords(msgs)
		if len(recs) == 0 { // all oversize: dropped, counted, settled
			tr.ack(mark, nil)
			continue
		}
		err := h.out.Emit(ctx, recs, func(err error) { tr.ack(mark, err) })
		h.in.lag(float64(claim.HighWaterMarkOffset()-tr.next()), tp.topic, partLabel)
		if err != nil {
			return nil // the session is ending; the ack tells the batch's fate
		}
	}
}

// toRecords makes the records of a batch; their fields share one slice.
// Records over max_record_bytes are left out and counted.
func (h *handler) toRecords(msgs []*sarama.ConsumerMessage) []pipeline.Record {
	n := 0
	for _, m := range msgs {
		n += 4 + len(m.Headers)
	}
	fields := make([]pipeline.Field, 0, n)
	recs := make([]pipeline.Record, 0, len(msgs))
	max := h.in.cfg.MaxRecordBytes.N()
	for _, m := range msgs {
		if len(m.Value)+len(m.Key) > max {
			h.in.set.Drop("oversize", 1)
			continue
		}
		start := len(fields)
		fields = append(fields,
			pipeline.NewField(FieldTopic, pipeline.TypeString, "", pipeline.StringValue(m.Topic)),
			pipeline.NewField(FieldPartition, pipeline.TypeInteger, "", pipeline.IntValue(int64(m.Partition))),
			pipeline.NewField(FieldOffset, pipeline.TypeInteger, "", pipeline.IntValue(m.Offset)))
		if m.Key != nil {
			fields = append(fields, pipeline.NewField(FieldKey, pipeline.TypeString, "", pipeline.BytesValue(m.Key)))
		}
		for _, h := range m.Headers {
			if h == nil {
				continue
			}
			fields = append(fields, pipeline.NewField(FieldHeaderPrefix+string(h.Key), pipeline.TypeString, "", pipeline.BytesValue(h.Value)))
		}
		recs = append(recs, pipeline.Record{
			Data:   m.Value,
			Source: "kafka://" + m.Topic + "/" + strconv.Itoa(int(m.Partition)) + "@" + strconv.FormatInt(m.Offset, 10),
			Fields: fields[start:len(fields):len(fields)],
		})
	}
	return recs
}

type topicPartition struct {
	topic     string
	partition int32
}

// generation is one consumer-group session: the partitions it owns and
// their trackers.
type generation struct {
	sess sarama.ConsumerGroupSession

	mu    sync.Mutex
	parts map[topicPartition]*tracker
}

func (g *generation) tracker(tp topicPartition, initial int64) *tracker {
	g.mu.Lock()
	defer g.mu.Unlock()
	t := g.parts[tp]
	if t == nil {
		t = newTracker(g.sess, tp, initial)
		g.parts[tp] = t
	}
	return t
}

// wait waits until no partition has a batch in flight, or d passes, and
// returns the batches still in flight.
func (g *generation) wait(d time.Duration) int {
	deadline := time.Now().Add(d)
	for {
		g.mu.Lock()
		n := 0
		for _, t := range g.parts {
			n += t.inFlight()
		}
		g.mu.Unlock()
		if n == 0 || time.Now().After(deadline) {
			return n
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (g *generation) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, t := range g.parts {
		t.close()
	}
}
