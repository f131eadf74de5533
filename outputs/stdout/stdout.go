// Package stdout is the output that writes encoded records to standard output.
package stdout

import (
	"context"
	_ "embed"
	"io"
	"os"

	"github.com/ternlog/tern/pipeline"
)

//go:embed sample.toml
var sample string

// Type selects this output.
const Type = "stdout"

// Config is the [outputs.<name>] table with type = "stdout".
type Config struct {
	// Delimiter ends each record; default: the encoder's own, else "\n".
	Delimiter *string `toml:"delimiter"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config { return Config{} }

// Output writes to stdout.
type Output struct {
	w     io.Writer
	delim []byte
	buf   []byte
}

var _ pipeline.Output = (*Output)(nil)

// New returns a stdout output.
func New(set pipeline.Settings, cfg Config) (*Output, error) {
	o := &Output{w: os.Stdout, delim: []byte("\n")}
	if d, ok := set.Encoder.(pipeline.Delimited); ok {
		o.delim = []byte(d.Delimiter())
	}
	if cfg.Delimiter != nil {
		o.delim = []byte(*cfg.Delimiter)
	}
	return o, nil
}

// Factory registers the output.
func Factory() pipeline.Factory[pipeline.Output] {
	return pipeline.NewFactory(Type, sample, DefaultConfig, func(s pipeline.Settings, c Config) (pipeline.Output, error) {
		return New(s, c)
	}).WithDefaultEncoder("json").WithSummary("standard output")
}

func (o *Output) Write(_ context.Context, batch []pipeline.Encoded) error {
	o.buf = o.buf[:0]
	for _, e := range batch {
		o.buf = append(o.buf, e.Data...)
		o.buf = append(o.buf, o.delim...)
	}
	_, err := o.w.Write(o.buf)
	return err
}
