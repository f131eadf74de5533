// Package msgpack is the decoder for tern's native binary form: one
// message in msgpack (codec.AppendMsgpack), bare or in its 'M' frame.
package msgpack

import (
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/framing"
)

//go:embed sample.toml
var sample string

// Type selects this decoder.
const Type = "msgpack"

// Config is the [decoders.<name>] table with type = "msgpack".
type Config struct {
	// MaxBytes caps a record; larger ones are refused before any decoding.
	MaxBytes config.Size `toml:"max_bytes"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{MaxBytes: framing.DefaultMaxFrame + framing.FrameHeaderLen}
}

// Validate checks the config.
func (c Config) Validate() error {
	if c.MaxBytes < 16 {
		return errors.New("max_bytes: must be at least 16")
	}
	return nil
}

// Decoder reads native messages. It keeps no state and is safe for
// concurrent use.
type Decoder struct{ max int }

var _ pipeline.Decoder = (*Decoder)(nil)

// New returns a msgpack decoder.
func New(_ pipeline.Settings, cfg Config) (*Decoder, error) {
	return &Decoder{max: cfg.MaxBytes.N()}, nil
}

// Factory registers the decoder.
func Factory() pipeline.Factory[pipeline.Decoder] {
	return pipeline.NewFactory(Type, sample, DefaultConfig, func(s pipeline.Settings, c Config) (pipeline.Decoder, error) {
		return New(s, c)
	}).WithSummary("tern's native form")
}

// Decode reads one message. A record that starts with the frame magic
// (0x1E, which no msgpack message array starts with) is a whole frame:
// its kind must be 'M' and its length the rest of the record.
func (d *Decoder) Decode(rec pipeline.Record, out *pipeline.Batch) error {
	data := rec.Data
	if len(data) > d.max {
		return fmt.Errorf("record of %d bytes, more than max_bytes %d", len(data), d.max)
	}
	if len(data) > 0 && data[0] == framing.FrameMagic {
		if len(data) < framing.FrameHeaderLen {
			return errors.New("frame: truncated header")
		}
		if data[1] != framing.FrameMessage {
			return fmt.Errorf("frame: kind %q, want 'M'", data[1])
		}
		if n := binary.BigEndian.Uint32(data[2:]); uint64(n) != uint64(len(data)-framing.FrameHeaderLen) {
			return fmt.Errorf("frame: header says %d bytes, record holds %d", n, len(data)-framing.FrameHeaderLen)
		}
		data = data[framing.FrameHeaderLen:]
	}
	n := out.Len()
	if err := codec.DecodeMsgpackBytes(data, out.Add(), out); err != nil {
		out.Truncate(n)
		return err
	}
	return nil
}
