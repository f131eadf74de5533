// Package file is the output that appends encoded records to a file.
package file

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/ternlog/tern/pipeline"
)

//go:embed sample.toml
var sample string

// Type selects this output.
const Type = "file"

// Config is the [outputs.<name>] table with type = "file".
type Config struct {
	// Path of the file, relative to the config file's directory.
	Path string `toml:"path"`
	// Perm is the mode of a created file, in octal.
	Perm string `toml:"perm"`
	// FolderPerm is the mode of created directories, in octal.
	FolderPerm string `toml:"folder_perm"`
	// Sync is "none" (a write reaches the OS before the ack: survives a
	// crash of tern, not of the machine) or "always" (fsync before the ack).
	Sync string `toml:"sync"`
	// Delimiter ends each record; default: the encoder's own, else "\n".
	Delimiter *string `toml:"delimiter"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config { return Config{Perm: "0640", FolderPerm: "0750", Sync: "none"} }

// Validate checks the config.
func (c Config) Validate() error {
	var errs []error
	if c.Path == "" {
		errs = append(errs, errors.New("path: required"))
	}
	if _, err := parsePerm(c.Perm); err != nil {
		errs = append(errs, fmt.Errorf("perm: %v", err))
	}
	if _, err := parsePerm(c.FolderPerm); err != nil {
		errs = append(errs, fmt.Errorf("folder_perm: %v", err))
	}
	if c.Sync != "none" && c.Sync != "always" {
		errs = append(errs, fmt.Errorf("sync: must be none or always, not %q", c.Sync))
	}
	return errors.Join(errs...)
}

func parsePerm(s string) (os.FileMode, error) {
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v > 0o777 {
		return 0, fmt.Errorf("not an octal mode like \"0640\": %q", s)
	}
	return os.FileMode(v), nil
}

// Output appends to one file.
type Output struct {
	cfg       Config
	path      string
	perm, dir os.FileMode
	delim     []byte
	f         *os.File
	buf       []byte
}

var _ pipeline.Output = (*Output)(nil)

// New returns a file output; the file is opened on the first write.
func New(set pipeline.Settings, cfg Config) (*Output, error) {
	perm, _ := parsePerm(cfg.Perm)
	dir, _ := parsePerm(cfg.FolderPerm)
	o := &Output{cfg: cfg, path: set.Resolve(cfg.Path), perm: perm, dir: dir, delim: []byte("\n")}
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
	}).WithDefaultEncoder("json")
}

func (o *Output) Write(_ context.Context, batch []pipeline.Encoded) error {
	if o.f == nil {
		if err := os.MkdirAll(filepath.Dir(o.path), o.dir); err != nil {
			return err
		}
		f, err := os.OpenFile(o.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, o.perm)
		if err != nil {
			return err
		}
		o.f = f
	}
	o.buf = o.buf[:0]
	for _, e := range batch {
		o.buf = append(o.buf, e.Data...)
		o.buf = append(o.buf, o.delim...)
	}
	if _, err := o.f.Write(o.buf); err != nil {
		// A short write leaves a partial record; reopen so the retry
		// starts clean (the retry may duplicate records, never lose them).
		o.f.Close()
		o.f = nil
		return err
	}
	if o.cfg.Sync == "always" {
		return o.f.Sync()
	}
	return nil
}

func (o *Output) Close(context.Context) error {
	if o.f == nil {
		return nil
	}
	err := o.f.Close()
	o.f = nil
	return err
}
