// Package payload is the decoder that keeps a record whole: its bytes become
// the message Payload.
package payload

import (
	_ "embed"

	"github.com/ternlog/tern/pipeline"
)

//go:embed sample.toml
var sample string

// Type selects this decoder.
const Type = "payload"

// Config is the [decoders.<name>] table with type = "payload".
type Config struct {
	// MessageType sets the message Type (empty leaves it empty).
	MessageType string `toml:"message_type"`
	// Severity sets the message severity (0..7).
	Severity int32 `toml:"severity"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config { return Config{Severity: pipeline.DefaultSeverity} }

// Validate checks the config.
func (c Config) Validate() error {
	if c.Severity < 0 || c.Severity > 7 {
		return errSeverity
	}
	return nil
}

type constError string

func (e constError) Error() string { return string(e) }

const errSeverity = constError("severity: must be 0..7")

// Decoder copies each record into the payload.
type Decoder struct{ cfg Config }

var _ pipeline.Decoder = (*Decoder)(nil)

// New returns a payload decoder.
func New(_ pipeline.Settings, cfg Config) (*Decoder, error) { return &Decoder{cfg: cfg}, nil }

// Factory registers the decoder.
func Factory() pipeline.Factory[pipeline.Decoder] {
	return pipeline.NewFactory(Type, sample, DefaultConfig, func(s pipeline.Settings, c Config) (pipeline.Decoder, error) {
		return New(s, c)
	}).WithSummary("the record becomes the payload")
}

func (d *Decoder) Decode(rec pipeline.Record, out *pipeline.Batch) error {
	m := out.Add()
	m.Payload = out.Str(rec.Data)
	m.Type = d.cfg.MessageType
	m.Severity = d.cfg.Severity
	return nil
}
