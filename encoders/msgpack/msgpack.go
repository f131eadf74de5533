// Package msgpack is the encoder for tern's native binary form: each
// message as an 'M' frame holding its msgpack encoding, for tern-to-tern
// transport and native files.
package msgpack

import (
	_ "embed"
	"fmt"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
	"github.com/ternlog/tern/pipeline/framing"
)

//go:embed sample.toml
var sample string

// Type selects this encoder.
const Type = "msgpack"

// Config is the [encoders.<name>] table with type = "msgpack".
type Config struct {
	// Framed writes each message in its frame (magic, kind 'M', length);
	// false writes the bare msgpack, for message outputs that keep record
	// boundaries themselves (Kafka).
	Framed bool `toml:"framed"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config { return Config{Framed: true} }

// Encoder writes native messages. It implements pipeline.Delimited with
// "": frames delimit themselves, so stream outputs add nothing.
type Encoder struct{ cfg Config }

var (
	_ pipeline.Encoder   = (*Encoder)(nil)
	_ pipeline.Delimited = (*Encoder)(nil)
)

// New returns a msgpack encoder.
func New(_ pipeline.Settings, cfg Config) (*Encoder, error) { return &Encoder{cfg: cfg}, nil }

// Factory registers the encoder.
func Factory() pipeline.Factory[pipeline.Encoder] {
	return pipeline.NewFactory(Type, sample, DefaultConfig, func(s pipeline.Settings, c Config) (pipeline.Encoder, error) {
		return New(s, c)
	}).WithSummary("tern's native frames")
}

// Delimiter is empty: records follow each other directly.
func (e *Encoder) Delimiter() string { return "" }

func (e *Encoder) Encode(dst []byte, m *pipeline.Message) ([]byte, error) {
	start := len(dst)
	if e.cfg.Framed {
		dst = framing.AppendMessageFrame(dst, m)
	} else {
		dst = codec.AppendMsgpack(dst, m)
	}
	if n := len(dst) - start; n > framing.DefaultMaxFrame+framing.FrameHeaderLen {
		// Readers refuse it; better a dead letter here than a stream
		// that breaks at the receiver.
		return dst[:start], fmt.Errorf("message encodes to %d bytes, more than the %d a frame may hold", n, framing.DefaultMaxFrame)
	}
	return dst, nil
}
