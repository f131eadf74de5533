// Package tail is the input that follows files named by globs across
// rotation and truncation, and remembers, in a crash-safe checkpoint, how far
// each file has been delivered.
//
// Files are identified by content, not by name or inode: a file's identity
// is the hash of its first fingerprint_bytes bytes (fewer while the file is
// shorter), with device and inode kept only as a hint. So a rotated file
// (renamed, copied, or gzipped) resumes where its original stopped, and a
// new file that reuses an old inode starts from its beginning.
//
// Positions advance only on the delivery acknowledgement and only over the
// contiguous acknowledged prefix of each file, so a crash replays at most
// what was read after the last checkpoint and never skips a line.
package tail

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ternlog/tern/internal/ratelog"
	"github.com/ternlog/tern/internal/watermark"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/framing"
)

//go:embed sample.toml
var sample string

// Type selects this input.
const Type = "tail"

// Config is the [inputs.<name>] table with type = "tail".
type Config struct {
	// Paths are glob patterns (filepath.Match syntax) of the files to follow;
	// relative patterns start at the config file's directory.
	Paths []string `toml:"paths"`
	// Exclude are glob patterns matched against each file's base name; a
	// matching file is not followed (e.g. "*.bak").
	Exclude []string `toml:"exclude"`
	// ReadFrom is where reading starts in the files found when there is no
	// usable checkpoint (first start, or a checkpoint that could not be
	// read): "beginning" or "end" (Heka's initial_tail). Files that appear
	// later are always read from their beginning.
	ReadFrom string `toml:"read_from"`
	// MaxLineBytes caps one line; longer lines are skipped and counted
	// (reason "oversize") and tailing continues after them.
	MaxLineBytes config.Size `toml:"max_line_bytes"`
	// FingerprintBytes is how many leading bytes identify a file.
	FingerprintBytes config.Size `toml:"fingerprint_bytes"`
	// CheckpointInterval is how often acknowledged positions are saved.
	CheckpointInterval config.Duration `toml:"checkpoint_interval"`
	// CheckpointLines saves positions early once this many lines have been
	// acknowledged since the last save.
	CheckpointLines int `toml:"checkpoint_lines"`
	// ScanInterval is how often the globs are re-evaluated even when no
	// file-system event arrived (a safety net for missed events).
	ScanInterval config.Duration `toml:"scan_interval"`
	// Poll disables file-system notifications and polls instead.
	Poll bool `toml:"poll"`
	// PollInterval is the longest wait between polls; polling starts fast
	// after activity and slows down to this while files are idle.
	PollInterval config.Duration `toml:"poll_interval"`
	// CloseInactive closes a file that has been at its end for this long;
	// it is reopened when it grows. Files no longer matched by the globs
	// (rotated away, deleted) are finished and forgotten after it.
	CloseInactive config.Duration `toml:"close_inactive"`
	// CloseEOF closes each file as soon as its end is reached, delivering an
	// unterminated last line as it is.
	CloseEOF bool `toml:"close_eof"`
	// ExitAfterEOF reads every matched file to its end once, then ends the
	// input (tern run stops when every input has ended): replaying files.
	ExitAfterEOF bool `toml:"exit_after_eof"`
	// ForgetAfter drops the saved position of a file no glob has matched
	// for this long.
	ForgetAfter config.Duration `toml:"forget_after"`
	// PathField names a string field set to the file's path ("" = none).
	PathField string `toml:"path_field"`
	// OffsetField names an integer field set to the line's byte offset in
	// the file ("" = none).
	OffsetField string `toml:"offset_field"`
	// BatchMaxCount caps the lines handed on at once.
	BatchMaxCount int `toml:"batch_max_count"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		ReadFrom:           "beginning",
		MaxLineBytes:       framing.DefaultMaxLine,
		FingerprintBytes:   1024,
		CheckpointInterval: config.Duration(time.Second),
		CheckpointLines:    1000,
		ScanInterval:       config.Duration(10 * time.Second),
		PollInterval:       config.Duration(time.Second),
		CloseInactive:      config.Duration(5 * time.Minute),
		ForgetAfter:        config.Duration(72 * time.Hour),
		BatchMaxCount:      1024,
	}
}

// Validate checks the config.
func (c Config) Validate() error {
	var errs []error
	if len(c.Paths) == 0 {
		errs = append(errs, errors.New("paths: required (at least one glob)"))
	}
	for _, p := range c.Paths {
		if p == "" {
			errs = append(errs, errors.New("paths: empty pattern"))
		} else if _, err := filepath.Match(p, ""); err != nil {
			errs = append(errs, fmt.Errorf("paths: %q: %v", p, err))
		}
	}
	for _, p := range c.Exclude {
		if _, err := filepath.Match(p, ""); err != nil {
			errs = append(errs, fmt.Errorf("exclude: %q: %v", p, err))
		}
	}
	if c.ReadFrom != "beginning" && c.ReadFrom != "end" {
		errs = append(errs, fmt.Errorf("read_from: must be beginning or end, not %q", c.ReadFrom))
	}
	if c.MaxLineBytes < 1 {
		errs = append(errs, errors.New("max_line_bytes: must be positive"))
	}
	if c.FingerprintBytes < 16 || c.FingerprintBytes > 1<<20 {
		errs = append(errs, errors.New("fingerprint_bytes: must be between 16 and 1MiB"))
	}
	if c.CheckpointInterval <= 0 {
		errs = append(errs, errors.New("checkpoint_interval: must be positive"))
	}
	if c.CheckpointLines < 1 {
		errs = append(errs, errors.New("checkpoint_lines: must be positive"))
	}
	if c.ScanInterval <= 0 {
		errs = append(errs, errors.New("scan_interval: must be positive"))
	}
	if c.PollInterval <= 0 {
		errs = append(errs, errors.New("poll_interval: must be positive"))
	}
	if c.CloseInactive <= 0 {
		errs = append(errs, errors.New("close_inactive: must be positive"))
	}
	if c.ForgetAfter <= 0 {
		errs = append(errs, errors.New("forget_after: must be positive"))
	}
	if c.BatchMaxCount < 1 {
		errs = append(errs, errors.New("batch_max_count: must be positive"))
	}
	return errors.Join(errs...)
}

// Warnings names each pattern of paths that selects no regular file now,
// excluded ones aside: most often a typo or a missing permission. It is a
// warning, not an error, as the files may appear later; the input follows
// them then.
func (c Config) Warnings(configDir string) []string {
	var out []string
	for _, p := range c.Paths {
		pattern := filepath.Clean(pipeline.Settings{ConfigDir: configDir}.Resolve(p))
		ms, err := filepath.Glob(pattern)
		if err != nil {
			continue // Validate reports it
		}
		found := false
		for _, m := range ms {
			if fi, err := os.Stat(m); err == nil && fi.Mode().IsRegular() && !c.excluded(m) {
				found = true
				break
			}
		}
		if !found {
			out = append(out, fmt.Sprintf("paths: no file matches %q yet", pattern))
		}
	}
	return out
}

func (c Config) excluded(path string) bool {
	base := filepath.Base(path)
	for _, x := range c.Exclude {
		if ok, _ := filepath.Match(x, base); ok {
			return true
		}
	}
	return false
}

// Input follows files.
type Input struct {
	cfg      Config
	set      pipeline.Settings
	log      *slog.Logger
	patterns []string // resolved globs
	ckpt     checkpointFiles

	// mu guards the entries and everything the acknowledgement and the
	// checkpoint writer touch; the Run loop owns the harvesters.
	mu       sync.Mutex
	entries  []*entry
	loaded   bool // the checkpoint was read (first Run)
	fresh    bool // no usable checkpoint: read_from applies to the first scan
	gen      uint64
	dirty    bool // acknowledged positions not yet saved
	unsaved  int  // lines acknowledged since the last save
	inflight int  // batches handed on and not yet settled
	closed   bool
	kick     chan struct{} // wakes the checkpoint writer early
	settled  chan struct{} // signalled when inflight drops to zero

	saveMu sync.Mutex     // one checkpoint write at a time
	warns  *ratelog.Keyed // by kind and path

	loopState
	held   atomic.Pointer[map[string]bool] // paths of open files, for the waker
	rounds atomic.Int64                    // loop rounds, to check idleness
}

var _ pipeline.Input = (*Input)(nil)

// New returns a tail input; it touches no file until it runs.
func New(set pipeline.Settings, cfg Config) (*Input, error) {
	if set.Logger == nil {
		set.Logger = slog.New(slog.DiscardHandler)
	}
	if set.Now == nil {
		set.Now = time.Now
	}
	t := &Input{
		cfg: cfg, set: set, log: set.Logger,
		ckpt:    checkpointFiles{dir: set.DataDir},
		kick:    make(chan struct{}, 1),
		settled: make(chan struct{}, 1),
		warns:   ratelog.EveryKeyed(10 * time.Second).Bounded(1024),
	}
	for _, p := range cfg.Paths {
		t.patterns = append(t.patterns, filepath.Clean(set.Resolve(p)))
	}
	set.DeclareDrops("oversize", "truncated")
	set.DeclareErrors("open", "read", "gzip", "checkpoint")
	return t, nil
}

// Factory registers the input.
func Factory() pipeline.Factory[pipeline.Input] {
	return pipeline.NewFactory(Type, sample, DefaultConfig, func(s pipeline.Settings, c Config) (pipeline.Input, error) {
		return New(s, c)
	}).WithSummary("follow files through rotation, checkpointed after delivery")
}

// Close saves the acknowledged positions one last time: the engine calls it
// after the last acknowledgement, so a clean stop replays nothing.
func (t *Input) Close(context.Context) error {
	t.mu.Lock()
	loaded := t.loaded
	t.mu.Unlock()
	var err error
	if loaded {
		err = t.save()
	}
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	return err
}

// warnLimited logs at most one warning per key every ten seconds, so a file
// that keeps failing cannot flood the log.
func (t *Input) warnLimited(key, msg string, args ...any) {
	t.warns.For(key).Warn(t.log, msg, args...)
}

// snapshot copies the known files' state (for tests and debugging).
func (t *Input) snapshot() []entry {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]entry, len(t.entries))
	for i, e := range t.entries {
		out[i] = *e
		out[i].acked = *watermark.New(e.acked.Pos())
	}
	return out
}
