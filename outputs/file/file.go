// Package file is the output that appends encoded records to files. The
// path may be a template filled from each message (one file per host, per
// Zeek stream…), always confined under a base directory; files rotate by
// time and size with Zeek's names, carry a framing encoder's header and
// trailer, and reach the configured durability before a batch is
// acknowledged.
package file

import (
	"container/list"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/ternlog/tern/internal/ratelog"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/template"
)

//go:embed sample.toml
var sample string

// Type selects this output.
const Type = "file"

// Config is the [outputs.<name>] table with type = "file".
type Config struct {
	// Path of the file, or a template filled from each message:
	// %{Hostname}, %{Fields[name]}, %{%Y-%m-%d}… (see README). Relative
	// paths start at base_dir when it is set, else at the config file's
	// directory.
	Path string `toml:"path"`
	// BaseDir is the directory every file must stay in; default: the
	// literal directory part of path, up to its first substitution.
	BaseDir string `toml:"base_dir"`
	// Perm is the mode of a created file, in octal.
	Perm string `toml:"perm"`
	// FolderPerm is the mode of created directories, in octal.
	FolderPerm string `toml:"folder_perm"`
	// Sync is the durability a batch reaches before it is acknowledged:
	// "none" (written to the OS: survives a crash of tern, not of the
	// machine), "always" (fsync first) or "interval" (fsync every
	// sync_interval, after the acknowledgement).
	Sync string `toml:"sync"`
	// SyncInterval is the fsync period with sync = "interval".
	SyncInterval config.Duration `toml:"sync_interval"`
	// Delimiter ends each record; default: the encoder's own, else "\n".
	Delimiter *string `toml:"delimiter"`
	// MaxOpenFiles caps open descriptors; the least recently written file
	// is closed first (and reopened when written again).
	MaxOpenFiles int `toml:"max_open_files"`
	// RotateInterval rotates every file at multiples of this interval
	// since midnight ("1h" rotates on the hour); 0 never.
	RotateInterval config.Duration `toml:"rotate_interval"`
	// RotateSize rotates a file before a record would make it larger than
	// this; 0 never.
	RotateSize config.Size `toml:"rotate_size"`
	// LocalTime uses local time, not UTC, for rotated names, rotation
	// times and %{%…} time substitutions (Zeek uses local time).
	LocalTime bool `toml:"local_time"`
	// WriteEmpty makes an interval with no records still produce a file,
	// holding only the encoder's header and trailer, as Zeek does; it
	// needs rotate_interval and an encoder that frames files (zeek).
	WriteEmpty bool `toml:"write_empty"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Perm: "0640", FolderPerm: "0750", Sync: "none", SyncInterval: config.Duration(time.Second),
		MaxOpenFiles: 256,
	}
}

// Validate checks the config.
func (c Config) Validate() error {
	var errs []error
	if c.Path == "" {
		errs = append(errs, errors.New("path: required"))
	} else if _, _, err := layout(c.Path, c.BaseDir); err != nil {
		errs = append(errs, err)
	}
	if _, err := parsePerm(c.Perm); err != nil {
		errs = append(errs, fmt.Errorf("perm: %v", err))
	}
	if _, err := parsePerm(c.FolderPerm); err != nil {
		errs = append(errs, fmt.Errorf("folder_perm: %v", err))
	}
	switch c.Sync {
	case "none", "always":
	case "interval":
		if c.SyncInterval <= 0 {
			errs = append(errs, errors.New("sync_interval: must be positive"))
		}
	default:
		errs = append(errs, fmt.Errorf("sync: must be none, always or interval, not %q", c.Sync))
	}
	if c.MaxOpenFiles < 1 {
		errs = append(errs, errors.New("max_open_files: must be positive"))
	}
	if c.RotateInterval != 0 && c.RotateInterval < config.Duration(time.Second) {
		errs = append(errs, errors.New("rotate_interval: must be 0 (never) or at least 1s"))
	}
	if c.WriteEmpty && c.RotateInterval == 0 {
		errs = append(errs, errors.New("write_empty: needs rotate_interval"))
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

// Output appends to files.
type Output struct {
	cfg        Config
	set        pipeline.Settings
	base       string
	tmpl       *template.Template
	static     string // the path below base when the template has no substitution
	staticFile *lfile // its file, once opened: static paths skip the map
	perm, dirs os.FileMode
	delim      []byte
	framer     pipeline.Framer
	loc        *time.Location
	violations func(float64, ...string)
	fsync      func(*os.File) error // (*os.File).Sync; tests slow it down

	mu      sync.Mutex
	root    *os.Root
	files   map[string]*lfile
	lru     list.List // open files, most recently written first
	nextDue time.Time // earliest interval rotation
	pathBuf []byte
	scratch []byte
	errs    []error
	touched []*lfile
	bgStop  chan struct{}
	bgDone  chan struct{}
	closed  bool
	warns   *ratelog.Keyed // by kind
}

// lfile is one output file as the output knows it, open or not.
type lfile struct {
	name        string // below base, slash-separated
	f           *os.File
	elem        *list.Element
	size        int64 // bytes in the file; -1 unknown (reopen and look)
	opened      time.Time
	due         time.Time // next interval rotation
	owesTrailer bool      // a header was written: a trailer is due
	needDelim   bool      // the file ends inside a record: terminate it first
	dirty       bool      // written since the last fsync
	newEntry    bool      // created since the last directory fsync
	gen         uint64    // counts writes and creations, for the background fsync

	// this batch
	pending []byte
	run     []byte // or records as the engine laid them out, separators included (addRun)
	idx     []int  // batch indices of the records in pending or run
	err     error
	touched bool
}

var (
	_ pipeline.Output    = (*Output)(nil)
	_ pipeline.Separated = (*Output)(nil)
)

// Separator is the delimiter: the engine writes it after each record, so
// a batch of records for one file is written from the engine's buffer as
// it is (addRun).
func (o *Output) Separator() []byte { return o.delim }

// New returns a file output; nothing is opened until the first write.
func New(set pipeline.Settings, cfg Config) (*Output, error) {
	base, rest, err := layout(cfg.Path, cfg.BaseDir)
	if err != nil {
		return nil, err
	}
	perm, _ := parsePerm(cfg.Perm)
	dirs, _ := parsePerm(cfg.FolderPerm)
	if set.Now == nil {
		set.Now = time.Now
	}
	if set.Logger == nil {
		set.Logger = slog.New(slog.DiscardHandler)
	}
	o := &Output{
		cfg: cfg, set: set, base: set.Resolve(base), tmpl: rest, perm: perm, dirs: dirs,
		delim: []byte("\n"), loc: time.UTC, files: map[string]*lfile{}, warns: ratelog.EveryKeyed(10 * time.Second),
		violations: func(float64, ...string) {}, fsync: (*os.File).Sync,
	}
	if cfg.LocalTime {
		o.loc = time.Local
	}
	rest.SetLocation(o.loc)
	if rest.IsStatic() {
		o.static = rest.LiteralPrefix()
	}
	if d, ok := set.Encoder.(pipeline.Delimited); ok {
		o.delim = []byte(d.Delimiter())
	}
	if cfg.Delimiter != nil {
		o.delim = []byte(*cfg.Delimiter)
	}
	o.framer, _ = set.Encoder.(pipeline.Framer)
	if cfg.WriteEmpty && o.framer == nil {
		return nil, errors.New("write_empty: the encoder writes no file header and trailer (zeek does)")
	}
	set.DeclareErrors("path_template", "partial_write", "fsync", "rotate")
	if set.Telemetry != nil {
		o.violations = set.Telemetry.Counter("template_confinement_violations_total",
			"Messages refused because their path template would leave the output's directory.")
	}
	return o, nil
}

// Factory registers the output.
func Factory() pipeline.Factory[pipeline.Output] {
	return pipeline.NewFactory(Type, sample, DefaultConfig, func(s pipeline.Settings, c Config) (pipeline.Output, error) {
		return New(s, c)
	}).WithDefaultEncoder("json").WithSummary("files from path templates, rotation, fsync policy")
}

func (o *Output) Write(_ context.Context, batch []pipeline.Encoded) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return errors.New("file output closed")
	}
	if o.root == nil {
		if err := os.MkdirAll(o.base, o.dirs); err != nil {
			return err
		}
		r, err := os.OpenRoot(o.base)
		if err != nil {
			return err
		}
		o.root = r
		o.startBackground()
	}
	now := o.set.Now()
	o.rotateDue(now)
	o.errs = slices.Grow(o.errs[:0], len(batch))[:len(batch)]
	clear(o.errs)
	failed := 0
	fail := func(i int, err error) {
		if o.errs[i] == nil {
			o.errs[i] = err
			failed++
		}
	}
	for i := range batch {
		lf, err := o.fileFor(batch[i].Msg, now)
		if err == nil {
			err = lf.err
		}
		if err == nil {
			err = o.add(lf, &batch[i], i, now)
		}
		if err != nil {
			if lf != nil && !pipeline.IsPermanent(err) {
				// Later records of this file fail too, so a retry keeps
				// their order; the mark is cleared after this batch.
				lf.err = err
				if !lf.touched {
					lf.touched = true
					o.touched = append(o.touched, lf)
				}
				for _, j := range lf.idx {
					fail(j, err)
				}
				lf.idx = lf.idx[:0]
				lf.pending, lf.run = lf.pending[:0], nil
			}
			fail(i, err)
		}
	}
	for _, lf := range o.touched {
		if lf.err == nil && len(lf.idx) > 0 {
			before := lf.size
			err := o.flush(lf)
			if err == nil && o.cfg.Sync == "always" {
				if err = o.syncFile(lf); err != nil {
					o.undo(lf, before)
				}
			}
			if err != nil {
				for _, j := range lf.idx {
					fail(j, err)
				}
			}
		}
		lf.pending, lf.run, lf.idx, lf.err, lf.touched = lf.pending[:0], nil, lf.idx[:0], nil, false
	}
	o.touched = o.touched[:0]
	if failed == 0 {
		return nil
	}
	return &pipeline.PartialError{Errs: append([]error(nil), o.errs...)}
}

// fileFor renders the message's path and returns its file, opening it the
// first time this process sees it.
func (o *Output) fileFor(m *pipeline.Message, now time.Time) (*lfile, error) {
	if o.staticFile != nil {
		return o.staticFile, nil // one entry, which trim never forgets
	}
	name := o.static
	if name == "" {
		b, err := o.tmpl.Append(o.pathBuf[:0], m, checkValue)
		o.pathBuf = b
		if err == nil {
			err = checkRendered(b)
		}
		if err != nil {
			if errors.Is(err, errConfinement) {
				o.violations(1)
				o.warn("confinement", "message refused: its path would leave base_dir", "base_dir", o.base, "err", err)
			} else {
				o.set.Error("path_template")
				o.warn("template", "message refused: its path template cannot be filled", "err", err)
			}
			return nil, pipeline.Permanent(fmt.Errorf("path template: %w", err))
		}
		if lf := o.files[string(b)]; lf != nil {
			return lf, nil
		}
		name = string(b)
	} else if lf := o.files[name]; lf != nil {
		return lf, nil
	}
	lf := &lfile{name: name, opened: now}
	if _, err := o.fd(lf, now); err != nil {
		return nil, err
	}
	o.files[name] = lf
	if o.static != "" {
		o.staticFile = lf
	}
	if o.framer != nil && lf.size > 0 {
		// A file an earlier run left (after a crash, without its
		// trailer): set it aside so every file has one header.
		if fi, err := lf.f.Stat(); err == nil {
			lf.opened = fi.ModTime()
		}
		if err := o.rotate(lf, now); err != nil {
			return nil, err
		}
	}
	lf.opened = now
	o.schedule(lf, now)
	o.trim()
	return lf, nil
}

// add appends one record to its file's pending bytes, rotating first when
// the record would take the file over rotate_size.
func (o *Output) add(lf *lfile, e *pipeline.Encoded, i int, now time.Time) error {
	if o.cfg.RotateSize > 0 {
		cur := lf.size + int64(len(lf.pending)+len(lf.run))
		if cur > 0 && cur+int64(len(e.Data)+len(o.delim)) > int64(o.cfg.RotateSize) {
			if err := o.flush(lf); err != nil {
				return err
			}
			lf.idx = lf.idx[:0]
			if err := o.rotate(lf, now); err != nil {
				return err
			}
		}
	}
	if lf.size <= 0 && len(lf.pending) == 0 && len(lf.run) == 0 {
		if lf.size < 0 {
			if _, err := o.fd(lf, now); err != nil {
				return err
			}
		}
		if o.framer != nil && lf.size == 0 {
			lf.pending = o.framer.Header(lf.pending, e.Msg, now)
			lf.owesTrailer = true
		}
	}
	if !o.addRun(lf, e) {
		lf.pending = append(lf.pending, e.Data...)
		lf.pending = append(lf.pending, o.delim...)
	}
	lf.idx = append(lf.idx, i)
	if !lf.touched {
		lf.touched = true
		o.touched = append(o.touched, lf)
	}
	return nil
}

// addRun adds e to lf's run when e follows it in the engine's buffer with
// the delimiter after it (pipeline.Separated): a batch of records for one
// file then goes out in one write without being copied. Anything else
// (a header, a record from elsewhere) ends the run, which is copied to
// pending, and addRun reports false: e is the caller's to copy.
func (o *Output) addRun(lf *lfile, e *pipeline.Encoded) bool {
	if len(o.delim) == 0 || len(lf.pending) > 0 || len(e.Data) == 0 || !e.SeparatorFollows(o.delim) {
		if len(lf.run) > 0 {
			lf.pending = append(lf.pending, lf.run...)
			lf.run = nil
		}
		return false
	}
	n := len(e.Data) + len(o.delim)
	if len(lf.run) == 0 {
		lf.run = e.Data[:n]
		return true
	}
	end := unsafe.Add(unsafe.Pointer(unsafe.SliceData(lf.run)), len(lf.run))
	if end != unsafe.Pointer(unsafe.SliceData(e.Data)) {
		lf.pending = append(lf.pending, lf.run...)
		lf.run = nil
		return false
	}
	// e.Data starts where the run ends, within the engine's one buffer.
	lf.run = unsafe.Slice(unsafe.SliceData(lf.run), len(lf.run)+n)
	return true
}

// flush writes lf's pending bytes (or its run) with one write. A short
// write is cut back, so a retry never follows half a record.
func (o *Output) flush(lf *lfile) error {
	out := lf.pending
	if len(lf.run) > 0 {
		out = lf.run
	}
	if len(out) == 0 {
		return nil
	}
	f, err := o.fd(lf, time.Time{})
	if err != nil {
		return err
	}
	if lf.needDelim {
		if _, err := f.Write(o.delim); err != nil {
			o.drop(lf)
			return err
		}
		lf.size += int64(len(o.delim))
		lf.needDelim = false
	}
	before := lf.size
	n, err := f.Write(out)
	lf.pending, lf.run = lf.pending[:0], nil
	if err != nil {
		lf.size += int64(n)
		o.undo(lf, before)
		return err
	}
	lf.size += int64(n)
	lf.dirty = true
	lf.gen++
	return nil
}

// undo cuts lf back to size; when that fails the file is reopened before
// the next write and its partial record terminated (resync).
func (o *Output) undo(lf *lfile, size int64) {
	if lf.size == size {
		return
	}
	if lf.f != nil && lf.f.Truncate(size) == nil {
		lf.size = size
		return
	}
	o.set.Error("partial_write")
	o.drop(lf)
}

// drop closes lf's descriptor after an error; its size is learned again.
func (o *Output) drop(lf *lfile) {
	if lf.f != nil {
		lf.f.Close()
		o.lru.Remove(lf.elem)
		lf.f, lf.elem = nil, nil
	}
	lf.size = -1
}

// fd returns lf's open descriptor, opening (and creating) the file when
// needed and closing the least recently written one beyond max_open_files.
func (o *Output) fd(lf *lfile, now time.Time) (*os.File, error) {
	if lf.f != nil {
		o.lru.MoveToFront(lf.elem)
		return lf.f, nil
	}
	for o.lru.Len() >= o.cfg.MaxOpenFiles {
		o.evict(o.lru.Back().Value.(*lfile))
	}
	if dir := path.Dir(lf.name); dir != "." {
		if err := o.mkdirs(dir); err != nil {
			return nil, o.classify(err)
		}
	}
	f, err := o.root.OpenFile(lf.name, os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_EXCL, o.perm)
	created := err == nil
	if errors.Is(err, fs.ErrExist) {
		f, err = o.root.OpenFile(lf.name, os.O_RDWR|os.O_APPEND, 0)
	}
	if err != nil {
		return nil, o.classify(err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, pipeline.Permanent(fmt.Errorf("%s is not a regular file", lf.name))
	}
	lf.f, lf.size = f, fi.Size()
	lf.elem = o.lru.PushFront(lf)
	if created {
		lf.newEntry = true
		lf.gen++
		if !now.IsZero() {
			lf.opened = now
		}
	}
	if n := int64(len(o.delim)); lf.size > 0 && n > 0 {
		// Terminate a record a crash cut short, so the next one starts
		// on its own line.
		tail := make([]byte, n)
		if k, _ := f.ReadAt(tail, lf.size-min(n, lf.size)); k < int(n) || string(tail) != string(o.delim) {
			lf.needDelim = true
		}
	}
	return f, nil
}

// classify turns refusals of os.Root (a symlink leading out of base_dir)
// into permanent confinement errors.
func (o *Output) classify(err error) error {
	if err != nil && strings.Contains(err.Error(), "escapes") {
		o.violations(1)
		o.warn("confinement", "message refused: its path leads out of base_dir", "base_dir", o.base, "err", err)
		return pipeline.Permanent(fmt.Errorf("%w: %v", errConfinement, err))
	}
	return err
}

// mkdirs creates dir below the root; with a sync policy the new directory
// entries are made durable too.
func (o *Output) mkdirs(dir string) error {
	if _, err := o.root.Stat(dir); err == nil {
		return nil
	}
	if err := o.root.MkdirAll(dir, o.dirs); err != nil {
		return err
	}
	if o.cfg.Sync != "none" {
		for d := dir; ; d = path.Dir(d) {
			o.syncDir(path.Dir(d))
			if d == "." || path.Dir(d) == "." {
				break
			}
		}
	}
	return nil
}

func (o *Output) evict(lf *lfile) {
	if lf.dirty && o.cfg.Sync != "none" {
		if err := o.fsync(lf.f); err != nil {
			o.set.Error("fsync")
			o.warn("fsync", "fsync failed", "file", lf.name, "err", err)
		}
		lf.dirty = false
	}
	if lf.newEntry && o.cfg.Sync != "none" {
		o.syncDir(path.Dir(lf.name))
		lf.newEntry = false
	}
	lf.f.Close()
	o.lru.Remove(lf.elem)
	lf.f, lf.elem = nil, nil
}

// trim forgets closed files that owe nothing once there are many, so a
// template over many values does not grow memory without bound.
func (o *Output) trim() {
	if len(o.files) <= 16*o.cfg.MaxOpenFiles {
		return
	}
	for name, lf := range o.files {
		if lf.f == nil && !lf.owesTrailer && !lf.touched {
			delete(o.files, name)
		}
	}
}

func (o *Output) syncFile(lf *lfile) error {
	if lf.f != nil && lf.dirty {
		if err := o.fsync(lf.f); err != nil {
			o.set.Error("fsync")
			return err
		}
		lf.dirty = false
	}
	if lf.newEntry {
		if err := o.syncDir(path.Dir(lf.name)); err != nil {
			return err
		}
		lf.newEntry = false
	}
	return nil
}

func (o *Output) syncDir(dir string) error {
	d, err := o.root.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		o.set.Error("fsync")
		return err
	}
	return nil
}

// ---- rotation

const rotateLayout = "2006-01-02-15-04-05"

// rotate closes lf's current file (its trailer first) and renames it to
// <stem>.<open time>.<ext> (Zeek's name, formats.md §2.6); the next record
// creates a new file.
func (o *Output) rotate(lf *lfile, now time.Time) error {
	if lf.size < 0 {
		if _, err := o.fd(lf, time.Time{}); err != nil {
			return err
		}
	}
	if lf.size == 0 {
		if !o.cfg.WriteEmpty || lf.opened.IsZero() {
			o.schedule(lf, now)
			return nil
		}
		// An interval without records still gets its file: header, then
		// the trailer below, as Zeek rotates a log nobody wrote to.
		f, err := o.fd(lf, time.Time{})
		if err != nil {
			return err
		}
		hdr := o.framer.Header(o.scratch[:0], nil, lf.opened)
		o.scratch = hdr[:0]
		n, err := f.Write(hdr)
		lf.size += int64(n)
		if err != nil {
			o.undo(lf, 0)
			return err
		}
		lf.owesTrailer, lf.dirty = true, true
		lf.gen++
	}
	if o.framer != nil && lf.owesTrailer {
		f, err := o.fd(lf, time.Time{})
		if err != nil {
			return err
		}
		tr := o.framer.Trailer(o.scratch[:0], now)
		o.scratch = tr[:0]
		before := lf.size
		n, err := f.Write(tr)
		lf.size += int64(n)
		if err != nil {
			o.undo(lf, before)
			return err
		}
		lf.owesTrailer = false
		lf.dirty = true
		lf.gen++
	}
	if lf.f != nil {
		if o.cfg.Sync != "none" && lf.dirty {
			if err := o.fsync(lf.f); err != nil {
				o.set.Error("fsync")
				return err
			}
		}
		lf.f.Close()
		o.lru.Remove(lf.elem)
		lf.f, lf.elem, lf.dirty = nil, nil, false
	}
	target, err := o.rotatedName(lf.name, lf.opened)
	if err != nil {
		return err
	}
	if err := o.root.Rename(lf.name, target); err != nil {
		lf.size = -1
		return err
	}
	if o.cfg.Sync != "none" {
		o.syncDir(path.Dir(lf.name))
	}
	o.set.Logger.Debug("rotated", "file", lf.name, "to", target)
	lf.size, lf.opened, lf.needDelim, lf.newEntry = 0, now, false, false
	o.schedule(lf, now)
	return nil
}

// rotatedName is name with the open time before its extension, and a
// counter when that name is taken: conn.log -> conn.2023-11-14-22-13-20.log.
func (o *Output) rotatedName(name string, opened time.Time) (string, error) {
	dir, base := path.Split(name)
	ext := path.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	if stem == "" {
		stem, ext = base, ""
	}
	ts := opened.In(o.loc).Format(rotateLayout)
	for n := 0; n < 1000; n++ {
		cand := dir + stem + "." + ts + ext
		if n > 0 {
			cand = dir + stem + "." + ts + "-" + strconv.Itoa(n) + ext
		}
		if _, err := o.root.Lstat(cand); errors.Is(err, fs.ErrNotExist) {
			return cand, nil
		}
	}
	return "", fmt.Errorf("no free rotated name for %s", name)
}

// schedule sets lf's next interval rotation: the next multiple of
// rotate_interval since midnight (or since now, for intervals that do not
// divide a day).
func (o *Output) schedule(lf *lfile, now time.Time) {
	iv := o.cfg.RotateInterval.D()
	if iv <= 0 {
		return
	}
	t := now.In(o.loc)
	var due time.Time
	if (24*time.Hour)%iv == 0 {
		midnight := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, o.loc)
		due = midnight.Add((t.Sub(midnight)/iv + 1) * iv)
	} else {
		due = t.Add(iv)
	}
	lf.due = due
	if o.nextDue.IsZero() || due.Before(o.nextDue) {
		o.nextDue = due
	}
}

// rotateDue rotates every file whose interval has passed.
func (o *Output) rotateDue(now time.Time) {
	if o.cfg.RotateInterval <= 0 || o.nextDue.IsZero() || now.Before(o.nextDue) {
		return
	}
	o.nextDue = time.Time{}
	for _, lf := range o.files {
		if !lf.due.IsZero() && !now.Before(lf.due) {
			if err := o.rotate(lf, now); err != nil {
				o.set.Error("rotate")
				o.warn("rotate", "rotation failed; retried", "file", lf.name, "err", err)
				lf.due = now.Add(time.Second)
			}
		}
		if !lf.due.IsZero() && (o.nextDue.IsZero() || lf.due.Before(o.nextDue)) {
			o.nextDue = lf.due
		}
	}
}

// ---- background work: interval rotation of idle files, interval fsync

func (o *Output) startBackground() {
	if o.cfg.RotateInterval <= 0 && o.cfg.Sync != "interval" {
		return
	}
	o.bgStop, o.bgDone = make(chan struct{}), make(chan struct{})
	go o.background()
}

func (o *Output) background() {
	defer close(o.bgDone)
	var todo []pendingSync
	for {
		o.mu.Lock()
		d := time.Minute
		if o.cfg.Sync == "interval" {
			d = o.cfg.SyncInterval.D()
		}
		if !o.nextDue.IsZero() {
			d = min(d, o.nextDue.Sub(o.set.Now()))
		}
		o.mu.Unlock()
		tm := time.NewTimer(max(d, 10*time.Millisecond))
		select {
		case <-o.bgStop:
			tm.Stop()
			return
		case <-tm.C:
		}
		o.mu.Lock()
		if !o.closed {
			o.rotateDue(o.set.Now())
			if o.cfg.Sync == "interval" {
				todo = o.snapshotDirty(todo[:0])
			}
		}
		o.mu.Unlock()
		if len(todo) > 0 {
			o.syncRound(todo)
			clear(todo) // hold no file between rounds
		}
	}
}

// pendingSync is an fsync of the background loop: lf's descriptor f and
// directory as they were at gen.
type pendingSync struct {
	lf       *lfile
	f        *os.File
	gen      uint64
	file     bool // written since its last fsync
	dir      bool // the file's directory entry is new
	fErr     error
	dirErr   error
	fileDone bool
}

// snapshotDirty lists what the interval fsync has to do; o.mu is held.
func (o *Output) snapshotDirty(todo []pendingSync) []pendingSync {
	for e := o.lru.Front(); e != nil; e = e.Next() {
		lf := e.Value.(*lfile)
		if lf.dirty || lf.newEntry {
			todo = append(todo, pendingSync{lf: lf, f: lf.f, gen: lf.gen, file: lf.dirty, dir: lf.newEntry})
		}
	}
	return todo
}

// syncRound fsyncs the files (and new directory entries) of todo without
// o.mu, so Write never waits for the disk on the interval policy. Write may
// meanwhile evict, rotate or drop a file: those paths sync what they close
// themselves (dirty stays set until the loop learns, under o.mu, that
// nothing changed since its snapshot), and an fsync of a descriptor closed
// meanwhile fails with os.ErrClosed, which is no error here. (An *os.File
// keeps its descriptor number until every call on it has returned, so the
// number cannot be reused under a running Sync.)
func (o *Output) syncRound(todo []pendingSync) {
	for i := range todo {
		p := &todo[i]
		if p.file {
			p.fErr = o.fsync(p.f)
			p.fileDone = p.fErr == nil
		}
		if p.dir && p.fErr == nil {
			p.dirErr = o.syncDir(path.Dir(p.lf.name))
		}
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	for i := range todo {
		p := &todo[i]
		lf := p.lf
		if lf.f != p.f || lf.gen != p.gen {
			continue // written, closed or rotated since: the next round looks again
		}
		if p.fErr != nil && !errors.Is(p.fErr, os.ErrClosed) {
			o.set.Error("fsync")
			o.warn("fsync", "fsync failed", "file", lf.name, "err", p.fErr)
			continue
		}
		if p.fileDone {
			lf.dirty = false
		}
		if p.dir && p.dirErr == nil {
			lf.newEntry = false
		} else if p.dir {
			o.warn("fsync", "fsync of a directory failed", "file", lf.name, "err", p.dirErr)
		}
	}
}

// Close writes the trailers a framing encoder owes and closes every file.
// With a framing encoder (zeek) files are also rotated, as Zeek does at
// shutdown, so the next run starts each with a header.
func (o *Output) Close(context.Context) error {
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return nil
	}
	o.closed = true
	o.mu.Unlock()
	if o.bgStop != nil {
		close(o.bgStop)
		<-o.bgDone
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.root == nil {
		return nil
	}
	var errs []error
	now := o.set.Now()
	for _, lf := range o.files {
		if o.framer != nil && (lf.owesTrailer || lf.size != 0) {
			if err := o.rotate(lf, now); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", lf.name, err))
			}
			continue
		}
		if lf.f != nil {
			if o.cfg.Sync != "none" {
				if err := o.syncFile(lf); err != nil {
					errs = append(errs, fmt.Errorf("%s: %w", lf.name, err))
				}
			}
			lf.f.Close()
			lf.f = nil
		}
	}
	o.lru.Init()
	errs = append(errs, o.root.Close())
	o.root = nil
	return errors.Join(errs...)
}

// warn logs at most once every ten seconds per kind.
func (o *Output) warn(kind, msg string, args ...any) {
	o.warns.For(kind).Warn(o.set.Logger, msg, args...)
}
