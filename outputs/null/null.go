// Package null is the output that counts records and discards them, for
// benchmarks and for routes whose messages are meant to go nowhere.
package null

import (
	"context"
	_ "embed"
	"sync/atomic"
	"time"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
)

//go:embed sample.toml
var sample string

// Type selects this output.
const Type = "null"

// Config is the [outputs.<name>] table with type = "null".
type Config struct {
	// LogInterval is how often the counts are logged; 0 never.
	LogInterval config.Duration `toml:"log_interval"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config { return Config{} }

// Output counts and discards.
type Output struct {
	cfg            Config
	set            pipeline.Settings
	records, bytes atomic.Int64
	lastLog        time.Time
	count          func(float64, ...string)
}

var _ pipeline.Output = (*Output)(nil)

// New returns a null output.
func New(set pipeline.Settings, cfg Config) (*Output, error) {
	o := &Output{cfg: cfg, set: set, lastLog: time.Now()}
	if set.Telemetry != nil {
		o.count = set.Telemetry.Counter("null_bytes_total", "Bytes of encoded records the null output discarded.")
	}
	return o, nil
}

// Factory registers the output.
func Factory() pipeline.Factory[pipeline.Output] {
	return pipeline.NewFactory(Type, sample, DefaultConfig, func(s pipeline.Settings, c Config) (pipeline.Output, error) {
		return New(s, c)
	}).WithDefaultEncoder("payload").WithSummary("discards (benchmarks)")
}

func (o *Output) Write(_ context.Context, batch []pipeline.Encoded) error {
	n := 0
	for _, e := range batch {
		n += len(e.Data)
	}
	recs := o.records.Add(int64(len(batch)))
	total := o.bytes.Add(int64(n))
	if o.count != nil {
		o.count(float64(n))
	}
	if d := o.cfg.LogInterval.D(); d > 0 && time.Since(o.lastLog) >= d {
		o.lastLog = time.Now()
		o.set.Logger.Info("discarded", "records", recs, "bytes", total)
	}
	return nil
}

// Records is the number of records discarded so far.
func (o *Output) Records() int64 { return o.records.Load() }

// Bytes is the number of encoded bytes discarded so far.
func (o *Output) Bytes() int64 { return o.bytes.Load() }
