// Package kafka is the output that produces each message as a Kafka record,
// acknowledged by the brokers before the batch counts as delivered.
package kafka

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ternlog/tern/internal/kafkax"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
)

//go:embed sample.toml
var sample string

// Type selects this output.
const Type = "kafka"

// recordOverhead is what a record adds to its key and value in a batch
// (offsets, lengths, timestamp, attributes), rounded up.
const recordOverhead = 64

// Config is the [outputs.<name>] table with type = "kafka".
type Config struct {
	// Client is brokers, client_id, version (for idempotent = true), tls
	// and sasl.
	kafkax.Client
	// Topic is the topic of every record. It may take parts of the message
	// (pipeline/template: %{Type}, %{Fields[name]}, %{Fields[name]:-dflt},
	// …) after a literal prefix; a record whose topic leaves the prefix, is
	// not a valid topic name or misses a value goes to the dead-letter route.
	Topic string `toml:"topic"`
	// KeyField names the message field whose first value is the record key
	// (records with equal keys share a partition); empty: no key, records
	// spread over the partitions.
	KeyField string `toml:"key_field"`
	// HeaderFields names the message fields written as record headers, one
	// header per value, in message order; a name ending in "*" takes every
	// field with that prefix. A field from the kafka input's headers
	// ("kafka.header.<key>") becomes the header <key> again, so
	// "kafka.header.*" carries a consumed record's headers on; other
	// fields keep their names.
	HeaderFields []string `toml:"header_fields"`
	// RequiredAcks is "all" (every in-sync replica has the record) or "one"
	// (the partition leader has it).
	RequiredAcks string `toml:"required_acks"`
	// Compression of record batches: none, gzip, snappy, lz4 or zstd.
	Compression string `toml:"compression"`
	// Idempotent uses sarama's idempotent producer, so its own retries
	// add no duplicates (kafka-go, the default client, has none).
	Idempotent bool `toml:"idempotent"`
	// MaxMessageBytes caps a record's key and value; larger records go to
	// the dead-letter route (match the brokers' message.max.bytes).
	MaxMessageBytes config.Size `toml:"max_message_bytes"`
	// BatchBytes caps a produce batch per partition; Linger is how long a
	// batch that is not full waits for more records.
	BatchBytes config.Size     `toml:"batch_bytes"`
	Linger     config.Duration `toml:"linger"`
	// WriteTimeout bounds one produce request; one that times out fails and
	// is retried (never dropped).
	WriteTimeout config.Duration `toml:"write_timeout"`
	// AutoCreateTopics asks the brokers to create a missing topic on first
	// use (when they allow it: auto.create.topics.enable); otherwise
	// records for a missing topic are retried until it exists.
	AutoCreateTopics bool `toml:"auto_create_topics"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Client:       kafkax.DefaultClient(),
		RequiredAcks: "all", Compression: "none", MaxMessageBytes: 1 << 20,
		BatchBytes: 1 << 20, Linger: config.Duration(5 * time.Millisecond),
		WriteTimeout: config.Duration(10 * time.Second),
	}
}

// Validate checks the config.
func (c Config) Validate() error {
	errs := []error{c.Client.Validate()}
	if _, err := parseTopic(c.Topic); err != nil {
		errs = append(errs, fmt.Errorf("topic: %v", err))
	}
	if c.RequiredAcks != "all" && c.RequiredAcks != "one" {
		errs = append(errs, fmt.Errorf("required_acks: must be all or one, not %q", c.RequiredAcks))
	}
	if c.Idempotent && c.RequiredAcks != "all" {
		errs = append(errs, errors.New("required_acks: must be all with idempotent = true"))
	}
	switch c.Compression {
	case "none", "gzip", "snappy", "lz4", "zstd":
	default:
		errs = append(errs, fmt.Errorf("compression: must be none, gzip, snappy, lz4 or zstd, not %q", c.Compression))
	}
	if c.MaxMessageBytes < 1 || c.MaxMessageBytes > 1<<30 {
		errs = append(errs, errors.New("max_message_bytes: must be between 1 and 1GiB"))
	}
	if c.BatchBytes < 1<<10 || c.BatchBytes > 1<<30 {
		errs = append(errs, errors.New("batch_bytes: must be between 1KiB and 1GiB"))
	}
	if c.WriteTimeout <= 0 {
		errs = append(errs, errors.New("write_timeout: must be positive"))
	}
	for _, h := range c.HeaderFields {
		if h == "" || h == "*" || strings.Contains(strings.TrimSuffix(h, "*"), "*") {
			errs = append(errs, fmt.Errorf("header_fields: %q must be a field name or a prefix ending in *", h))
		}
	}
	return errors.Join(errs...)
}

// Output produces records to Kafka.
type Output struct {
	cfg   Config
	set   pipeline.Settings
	topic *topicTemplate

	mu   sync.Mutex // prod, across Write and Close
	prod producer

	recs       []record
	idx        []int // recs[j] is batch[idx[j]]
	errs       []error
	scratch    []byte
	buf        []byte
	hdrs       []header
	violations func(float64, ...string)
}

var _ pipeline.Output = (*Output)(nil)

// New returns a Kafka output; it connects on the first Write.
func New(set pipeline.Settings, cfg Config) (*Output, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t, _ := parseTopic(cfg.Topic)
	o := &Output{cfg: cfg, set: set, topic: t, violations: func(float64, ...string) {}}
	if set.Telemetry != nil {
		o.violations = set.Telemetry.Counter("template_confinement_violations_total",
			"records whose rendered topic or path left its configured prefix")
	}
	return o, nil
}

// Factory registers the output.
func Factory() pipeline.Factory[pipeline.Output] {
	return pipeline.NewFactory(Type, sample, DefaultConfig, func(s pipeline.Settings, c Config) (pipeline.Output, error) {
		return New(s, c)
	}).WithDefaultEncoder("json").WithSummary("kafka-go, or sarama's idempotent producer")
}

// Check reads the TLS files the config names.
func (o *Output) Check() error {
	_, err := o.cfg.TLSConfig(o.set)
	return err
}

func (o *Output) producer() (producer, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.prod != nil {
		return o.prod, nil
	}
	tlsCfg, err := o.cfg.TLSConfig(o.set)
	if err != nil {
		return nil, err
	}
	if o.cfg.Idempotent {
		p, err := newSarama(o.cfg, tlsCfg)
		if err != nil {
			return nil, err
		}
		o.prod = p
	} else {
		p, err := newKafkaGo(o.cfg, tlsCfg)
		if err != nil {
			return nil, err
		}
		o.prod = p
	}
	return o.prod, nil
}

func (o *Output) Write(ctx context.Context, batch []pipeline.Encoded) error {
	prod, err := o.producer()
	if err != nil {
		return err
	}
	var refused []error // per batch record, set only when some are refused here
	refuse := func(i int, err error) {
		if refused == nil {
			refused = make([]error, len(batch))
		}
		refused[i] = pipeline.Permanent(err)
	}
	// The producer may still hold records after a Write cut short by ctx,
	// while the engine reuses Data: give it copies, in one allocation.
	total := 0
	for _, e := range batch {
		total += len(e.Data)
	}
	o.buf = make([]byte, 0, total)
	o.recs, o.idx = o.recs[:0], o.idx[:0]
	o.hdrs = nil // held by the producer like buf, when cut short
	for i, e := range batch {
		topic, scratch, err := o.topic.render(o.scratch, e.Msg)
		o.scratch = scratch
		if err != nil {
			if errors.Is(err, errConfined) {
				o.violations(1)
			}
			refuse(i, fmt.Errorf("topic: %w", err))
			continue
		}
		key := o.key(e.Msg)
		hdrStart := len(o.hdrs)
		o.hdrs = o.headers(o.hdrs, e.Msg)
		size := len(key) + len(e.Data)
		for _, h := range o.hdrs[hdrStart:] {
			size += len(h.key) + len(h.value)
		}
		if size > o.cfg.MaxMessageBytes.N() {
			o.hdrs = o.hdrs[:hdrStart]
			refuse(i, fmt.Errorf("record of %d bytes is larger than max_message_bytes %d", size, o.cfg.MaxMessageBytes.N()))
			continue
		}
		start := len(o.buf)
		o.buf = append(o.buf, e.Data...)
		o.recs = append(o.recs, record{topic: topic, key: key, value: o.buf[start:len(o.buf):len(o.buf)],
			headers: o.hdrs[hdrStart:len(o.hdrs):len(o.hdrs)]})
		o.idx = append(o.idx, i)
	}
	o.errs = o.errs[:0]
	for range o.recs {
		o.errs = append(o.errs, nil)
	}
	if len(o.recs) > 0 {
		groupByTopic(o.recs, o.idx)
		prod.produce(ctx, o.recs, o.errs)
	}
	failed := refused != nil
	for _, err := range o.errs {
		if err != nil {
			failed = true
			break
		}
	}
	if !failed {
		return nil
	}
	out := refused
	if out == nil {
		out = make([]error, len(batch))
	}
	for j, err := range o.errs {
		if err != nil && kafkax.Permanent(err) {
			err = pipeline.Permanent(err)
		}
		out[o.idx[j]] = err
	}
	return &pipeline.PartialError{Errs: out}
}

// headerPrefix is what the kafka input puts before a header's key to name
// its field.
const headerPrefix = "kafka.header."

// headers appends the record headers of m from HeaderFields: every value
// of every field whose name is listed or has a listed prefix, as text.
func (o *Output) headers(dst []header, m *pipeline.Message) []header {
	if len(o.cfg.HeaderFields) == 0 {
		return dst
	}
	for fi := range m.Fields {
		f := &m.Fields[fi]
		if !o.headerField(f.Name) {
			continue
		}
		name := strings.TrimPrefix(f.Name, headerPrefix)
		for j := range f.Len() {
			dst = append(dst, header{key: name, value: fieldText(nil, f, j)})
		}
	}
	return dst
}

func (o *Output) headerField(name string) bool {
	for _, h := range o.cfg.HeaderFields {
		if p, ok := strings.CutSuffix(h, "*"); ok {
			if strings.HasPrefix(name, p) {
				return true
			}
		} else if name == h {
			return true
		}
	}
	return false
}

// fieldText appends value j of f as text: strings and bytes as they are,
// numbers and bools as Go formats them.
func fieldText(dst []byte, f *pipeline.Field, j int) []byte {
	v := f.Value(j)
	switch f.Type {
	case pipeline.TypeInteger:
		return strconv.AppendInt(dst, v.Int(), 10)
	case pipeline.TypeUnsigned:
		return strconv.AppendUint(dst, v.Uint(), 10)
	case pipeline.TypeDouble:
		return strconv.AppendFloat(dst, v.Double(), 'g', -1, 64)
	case pipeline.TypeBool:
		return strconv.AppendBool(dst, v.Bool())
	}
	return append(dst, v.Str()...)
}

// key returns the record key from KeyField, nil when unset or absent.
func (o *Output) key(m *pipeline.Message) []byte {
	if o.cfg.KeyField == "" {
		return nil
	}
	f := m.FirstField(o.cfg.KeyField)
	if f == nil || f.Len() == 0 {
		return nil
	}
	return fieldText(nil, f, 0)
}

// groupByTopic orders records by topic, stably, keeping idx in step, so
// the producer sees one run per topic. Batches usually have one topic.
func groupByTopic(recs []record, idx []int) {
	sorted := true
	for i := 1; i < len(recs); i++ {
		if recs[i].topic != recs[i-1].topic {
			for j := i + 1; j < len(recs); j++ {
				if recs[j].topic == recs[i-1].topic {
					sorted = false
				}
			}
		}
	}
	if sorted {
		return
	}
	order := map[string]int{}
	for _, r := range recs {
		if _, ok := order[r.topic]; !ok {
			order[r.topic] = len(order)
		}
	}
	type pair struct {
		r record
		i int
	}
	ps := make([]pair, len(recs))
	for i := range recs {
		ps[i] = pair{recs[i], idx[i]}
	}
	k := 0
	for t := range len(order) {
		for _, p := range ps {
			if order[p.r.topic] == t {
				recs[k], idx[k] = p.r, p.i
				k++
			}
		}
	}
}

func (o *Output) Close(ctx context.Context) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.prod == nil {
		return nil
	}
	err := o.prod.close(ctx)
	o.prod = nil
	return err
}
