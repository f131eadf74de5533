// Package payload is the encoder that writes a message's Payload as is.
package payload

import (
	_ "embed"
	"time"

	"github.com/ternlog/tern/pipeline"
)

//go:embed sample.toml
var sample string

// Type selects this encoder.
const Type = "payload"

// Config is the [encoders.<name>] table with type = "payload".
type Config struct {
	// PrefixTimestamp writes the message timestamp before the payload.
	PrefixTimestamp bool `toml:"prefix_ts"`
	// TimestampLayout is the Go time layout of that prefix.
	TimestampLayout string `toml:"ts_format"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config { return Config{TimestampLayout: time.RFC3339Nano} }

// Encoder writes payloads.
type Encoder struct{ cfg Config }

var _ pipeline.Encoder = (*Encoder)(nil)

// New returns a payload encoder.
func New(_ pipeline.Settings, cfg Config) (*Encoder, error) { return &Encoder{cfg: cfg}, nil }

// Factory registers the encoder.
func Factory() pipeline.Factory[pipeline.Encoder] {
	return pipeline.NewFactory(Type, sample, DefaultConfig, func(s pipeline.Settings, c Config) (pipeline.Encoder, error) {
		return New(s, c)
	}).WithSummary("the payload as is")
}

func (e *Encoder) Encode(dst []byte, m *pipeline.Message) ([]byte, error) {
	if e.cfg.PrefixTimestamp {
		dst = time.Unix(0, m.Timestamp).UTC().AppendFormat(dst, e.cfg.TimestampLayout)
		dst = append(dst, ' ')
	}
	return append(dst, m.Payload...), nil
}
