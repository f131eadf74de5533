// Package stdin is the input that reads newline-delimited records from the
// process's standard input.
package stdin

import (
	"context"
	_ "embed"
	"errors"
	"io"
	"os"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/framing"
)

//go:embed sample.toml
var sample string

// Type selects this input.
const Type = "stdin"

// Config is the [inputs.<name>] table with type = "stdin".
type Config struct {
	// MaxLineBytes caps one line; longer lines are dropped and counted.
	MaxLineBytes config.Size `toml:"max_line_bytes"`
	// BatchMaxCount caps the records handed on at once (framing.Emit may
	// add the small rest of a read, up to twice as many).
	BatchMaxCount int `toml:"batch_max_count"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{MaxLineBytes: framing.DefaultMaxLine, BatchMaxCount: 1024}
}

// Validate checks the config.
func (c Config) Validate() error {
	var errs []error
	if c.MaxLineBytes < 1 {
		errs = append(errs, errors.New("max_line_bytes: must be positive"))
	}
	if c.BatchMaxCount < 1 {
		errs = append(errs, errors.New("batch_max_count: must be positive"))
	}
	return errors.Join(errs...)
}

// Input reads stdin.
type Input struct {
	cfg Config
	set pipeline.Settings
	r   io.Reader
}

var _ pipeline.Input = (*Input)(nil)

// New returns a stdin input.
func New(set pipeline.Settings, cfg Config) (*Input, error) {
	framing.Declare(set)
	return &Input{cfg: cfg, set: set, r: os.Stdin}, nil
}

// Factory registers the input.
func Factory() pipeline.Factory[pipeline.Input] {
	return pipeline.NewFactory(Type, sample, DefaultConfig, func(s pipeline.Settings, c Config) (pipeline.Input, error) {
		return New(s, c)
	}).WithSummary("lines from standard input")
}

// Run reads until EOF, then reports the end of input.
func (in *Input) Run(ctx context.Context, out pipeline.Emitter) error {
	lines := framing.NewLineReader(in.r, in.cfg.MaxLineBytes.N())
	err := framing.Emit(ctx, lines, pipeline.Record{Source: "stdin"}, in.cfg.BatchMaxCount, out, in.set, nil)
	if errors.Is(err, io.EOF) {
		return pipeline.ErrEndOfInput
	}
	return err
}
