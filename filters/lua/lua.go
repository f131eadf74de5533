// Package lua is the filter that runs a Lua script (Heka's sandbox filter
// API) with Haka's alert and log API and ntopng-style alert definitions, in
// the bounded sandbox of internal/sandbox.
package lua

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	golua "github.com/Shopify/go-lua"

	"github.com/ternlog/tern/internal/alert"
	"github.com/ternlog/tern/internal/alertdef"
	"github.com/ternlog/tern/internal/sandbox"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
)

//go:embed sample.toml
var sample string

// Type selects this filter.
const Type = "lua"

// Config is the [filters.<name>] table with type = "lua".
type Config struct {
	// Filename is the script, relative to the config file's directory.
	Filename string `toml:"filename"`
	// Limits are the sandbox's limits and what a failing script costs:
	// failure_policy is what happens to a message the script failed on:
	// count, deadletter or pass.
	sandbox.Limits
	// OutputLimit caps one injected message (its Message.Size) and the
	// add_to_payload buffer.
	OutputLimit config.Size `toml:"output_limit"`
	// PreserveData saves the script's globals on a clean stop and restores
	// them at the next start.
	PreserveData bool `toml:"preserve_data"`
	// AlertDefinitions is a directory of ntopng-style alert definitions
	// (relative to the config file's directory); empty means none.
	AlertDefinitions string `toml:"alert_definitions"`
	// Locale selects the catalogs titles and descriptions come from.
	Locale string `toml:"locale"`
	// Config is the [filters.<name>.config] table that read_config reads.
	Config map[string]any `toml:"config"`
}

// DefaultConfig returns the defaults (Heka's limits).
func DefaultConfig() Config {
	return Config{
		Limits:      sandbox.DefaultLimits(sandbox.PolicyCount),
		OutputLimit: 64 << 10,
		Locale:      alertdef.DefaultLocale,
	}
}

// Validate checks the config.
func (c Config) Validate() error {
	var errs []error
	if c.Filename == "" {
		errs = append(errs, errors.New("filename: required"))
	}
	errs = append(errs, c.Limits.Check("count, deadletter or pass")...)
	if c.OutputLimit < 1<<10 {
		errs = append(errs, errors.New("output_limit: must be at least 1KiB"))
	}
	if c.Locale == "" || strings.ContainsAny(c.Locale, "/\\.") {
		errs = append(errs, errors.New("locale: a language code such as en or fr"))
	}
	return errors.Join(errs...)
}

// AlertDefinitionDir returns the definitions directory (resolved against
// configDir) and the locale; cmd/tern's `alerts list` uses it.
func (c Config) AlertDefinitionDir(configDir string) (dir, locale string) {
	if c.AlertDefinitions == "" {
		return "", c.Locale
	}
	return pipeline.Settings{ConfigDir: configDir}.Resolve(c.AlertDefinitions), c.Locale
}

// Filter runs one script.
type Filter struct {
	set  pipeline.Settings
	cfg  Config
	path string
	sb   *sandbox.Sandbox
	fail *sandbox.Failures
	defs *alertdef.Set

	restored bool // preserved data was considered (first load only)
	dead     bool // a load error or a fatal return disabled the script

	// per call
	cur     *pipeline.Message
	pending []*pipeline.Message
	payload strings.Builder
	now     time.Time // see callTime
	nowSet  bool

	ids      *alert.IDs
	stateMsg pipeline.Message // scratch for alert handles' state
	stateBuf []byte

	readReturn func(*golua.State) error // f.returnCode, made once
	retCode    int
	retMsg     string

	clock int64 // ns: the message's timestamp, or the timer's (tickClock)
	// The message clock as ticks see it (tickClock): the newest message
	// timestamp, and the router's time when it arrived.
	msgMax  int64
	msgWall time.Time
	metrics stateMetrics
}

var (
	_ pipeline.Filter = (*Filter)(nil)
	_ pipeline.Ticker = (*Filter)(nil)
	_ pipeline.Closer = (*Filter)(nil)
)

// New returns a Lua filter. It reads nothing: the script and its alert
// definitions are loaded by the first call.
func New(set pipeline.Settings, cfg Config) (*Filter, error) {
	if set.Now == nil {
		set.Now = time.Now
	}
	f := &Filter{set: set, cfg: cfg, path: set.Resolve(cfg.Filename), ids: alert.NewIDs()}
	f.readReturn = f.returnCode
	f.fail = sandbox.NewFailures(set, cfg.MaxFailures)
	set.DeclareDrops("lua_failed_call", "inject_failed", "filter_disabled")
	if cfg.FailurePolicy == sandbox.PolicyDeadLetter {
		set.DeclareDrops("deadletter_failed")
		set.DeclareDeadLetters()
	}
	f.sb = sandbox.New(cfg.Limits.SandboxConfig(set), f.path, "", f.setup)
	f.sb.SetClock(func() int64 { return f.clock })
	f.metrics = newStateMetrics(set.Telemetry)
	return f, nil
}

// Factory registers the filter.
func Factory() pipeline.Factory[pipeline.Filter] {
	return pipeline.NewFactory(Type, sample, DefaultConfig, func(s pipeline.Settings, c Config) (pipeline.Filter, error) {
		return New(s, c)
	}).WithSummary("Heka's sandbox API, Haka's alerts, ntopng-style alert definitions")
}

// load builds the State on first use and after a Go panic poisoned it.
func (f *Filter) load() error {
	if f.sb.Loaded() {
		return nil
	}
	if !f.sb.HasSource() {
		src, err := os.ReadFile(f.path)
		if err != nil {
			return &sandbox.Error{Kind: sandbox.KindLoad, Msg: err.Error()}
		}
		f.sb.SetSource(string(src))
		if f.cfg.AlertDefinitions != "" {
			defs, err := f.loadDefs()
			if err != nil {
				return err
			}
			f.defs = defs
		}
	}
	fresh, err := f.sb.Load()
	if err != nil {
		return err
	}
	if fresh && !f.restored && f.cfg.PreserveData {
		f.restored = true
		ok, err := f.sb.RestoreGlobals(f.preservePath())
		if err == nil && ok {
			if err = f.sb.CheckMemory(); err != nil {
				f.sb.Close()
			}
		}
		if err != nil {
			f.set.Logger.Error("lua: preserved data not restored", "err", err)
			if !f.sb.Loaded() {
				// The saved data did not fit memory_limit: start from
				// the script alone.
				if _, err := f.sb.Load(); err != nil {
					return err
				}
			}
		} else if ok {
			n := reattachHandles(f.sb.State())
			f.set.Logger.Info("lua: preserved data restored", "file", f.preservePath(), "alert_handles", n)
		}
	}
	if !f.sb.HasFunction("process_message") {
		return &sandbox.Error{Kind: sandbox.KindLoad, Msg: "the script defines no process_message function"}
	}
	return nil
}

func (f *Filter) preservePath() string {
	return filepath.Join(f.set.DataDir, "preserved.lua")
}

// Process calls process_message() for m.
func (f *Filter) Process(ctx context.Context, m *pipeline.Message, out pipeline.Injector) error {
	if f.dead || f.fail.Disabled() {
		return f.failed(ctx, m, out, nil, true)
	}
	f.begin(m)
	defer f.end()
	if err := f.load(); err != nil {
		return f.loadFailed(ctx, m, out, err)
	}
	err := f.sb.Call("process_message", nil, 2, f.readReturn)
	code, msg := f.retCode, f.retMsg
	if err == nil && code != 0 {
		err = &sandbox.Error{Kind: sandbox.KindReturn, Msg: fmt.Sprintf("process_message returned %d%s", code, withMsg(msg))}
		if code > 0 {
			f.disable(err)
		}
	}
	if err != nil {
		return f.failed(ctx, m, out, err, false)
	}
	f.fail.Succeeded()
	if f.metrics.calls++; f.metrics.calls&1023 == 0 {
		if now := f.callTime(); now.Sub(f.metrics.at) >= time.Second {
			f.metrics.export(f.sb, now)
		}
	}
	return f.flush(ctx, out)
}

// Tick calls timer_event(ns) when the script defines it.
func (f *Filter) Tick(ctx context.Context, now time.Time, out pipeline.Injector) error {
	if f.dead || f.fail.Disabled() {
		return nil
	}
	f.begin(nil)
	defer f.end()
	if err := f.load(); err != nil {
		f.loadFailed(ctx, nil, out, err)
		return err
	}
	defer f.metrics.export(f.sb, now)
	if !f.sb.HasFunction("timer_event") {
		return nil
	}
	ns := now.UnixNano()
	f.clock = f.tickClock(now)
	err := f.sb.Call("timer_event", func(l *golua.State) int {
		l.PushNumber(float64(ns))
		l.PushString(fmt.Sprint(ns))
		return 2
	}, 2, f.readReturn)
	code, msg := f.retCode, f.retMsg
	if err == nil && code != 0 {
		err = &sandbox.Error{Kind: sandbox.KindReturn, Msg: fmt.Sprintf("timer_event returned %d%s", code, withMsg(msg))}
		if code > 0 {
			f.disable(err)
		}
	}
	if err != nil {
		f.dropPending()
		if sandbox.KindOf(err) != sandbox.KindReturn || code > 0 {
			f.countFailure(err)
		}
		return err
	}
	f.fail.Succeeded()
	return f.flush(ctx, out)
}

func withMsg(msg string) string {
	if msg == "" {
		return ""
	}
	return ": " + msg
}

// returnCode reads Heka's `int[, string]` result (nil counts as 0) into
// retCode and retMsg.
func (f *Filter) returnCode(l *golua.State) error {
	f.retCode, f.retMsg = 0, ""
	if n, ok := l.ToValue(-2).(float64); ok {
		f.retCode = int(n)
	}
	if s, ok := l.ToValue(-1).(string); ok {
		f.retMsg = s
	}
	return nil
}

func (f *Filter) begin(m *pipeline.Message) {
	f.cur = m
	f.pending = f.pending[:0]
	f.payload.Reset()
	f.now, f.nowSet = time.Time{}, false
	if m != nil && m.Timestamp != 0 {
		f.clock = m.Timestamp
		if m.Timestamp > f.msgMax {
			f.msgMax, f.msgWall = m.Timestamp, f.callTime()
		}
	} else {
		f.clock = f.callTime().UnixNano()
	}
}

// tickClock is the time Go-backed state sees in timer_event. Scripts count
// in message time, so a tick at the wall clock would expire every key of a
// replayed or delayed log at once. A tick sees the newest message's
// timestamp plus the time that has passed since it arrived, so quiet keys
// still expire. It never runs ahead of the wall clock: a message stamped in
// the future (its sender chooses the timestamp) cannot make a tick expire
// everything.
func (f *Filter) tickClock(now time.Time) int64 {
	wall := now.UnixNano()
	if f.msgMax == 0 {
		return wall
	}
	return min(f.msgMax+int64(max(now.Sub(f.msgWall), 0)), wall)
}

// callTime is the router's clock at the call, read once and only when
// needed (alert ids and times, injected messages): most calls need none.
func (f *Filter) callTime() time.Time {
	if !f.nowSet {
		f.now, f.nowSet = f.set.Now(), true
	}
	return f.now
}

func (f *Filter) end() { f.cur = nil }

// flush injects what the call produced; injections are all-or-nothing per
// call, so a failed call injects nothing.
func (f *Filter) flush(ctx context.Context, out pipeline.Injector) error {
	for i, m := range f.pending {
		if err := out.Inject(m); err != nil {
			f.set.Drop("inject_failed", len(f.pending)-i)
			f.pending = f.pending[:0]
			return err
		}
	}
	f.pending = f.pending[:0]
	return nil
}

func (f *Filter) dropPending() {
	if n := len(f.pending); n > 0 {
		f.set.Drop("lua_failed_call", n)
		f.pending = f.pending[:0]
	}
}

func (f *Filter) disable(err error) {
	if !f.dead {
		f.dead = true
		f.set.Logger.Error("lua: script disabled", "err", err.Error())
		f.fail.Failed(err)
		f.release()
	}
}

// countFailure counts a failed call and releases the script once that
// disabled it.
func (f *Filter) countFailure(err error) {
	if f.fail.Failed(err) {
		f.release()
	}
}

// release drops the State of a disabled script so the collector frees what
// it held; with preserve_data its globals are saved first (a State dropped
// for holding more than its memory limit is already gone).
func (f *Filter) release() {
	if f.sb.Loaded() && f.cfg.PreserveData {
		if err := f.sb.SaveGlobals(f.preservePath()); err != nil {
			f.set.Logger.Error("lua: preserving data failed", "err", err)
		}
	}
	f.sb.Release()
}

func (f *Filter) loadFailed(ctx context.Context, m *pipeline.Message, out pipeline.Injector, err error) error {
	// A script that does not load will not load on the next message
	// either: disable at once rather than re-read it per message.
	f.disable(err)
	if m == nil {
		return err
	}
	return f.failed(ctx, m, out, err, true)
}

// failed applies the failure policy to m after a failed call (err) or
// because the script is disabled (err nil).
func (f *Filter) failed(ctx context.Context, m *pipeline.Message, out pipeline.Injector, err error, counted bool) error {
	f.dropPending()
	if err != nil && !counted {
		if sandbox.KindOf(err) == sandbox.KindReturn {
			f.fail.Rejected(err)
		} else {
			f.countFailure(err)
		}
	}
	reason := err
	if reason == nil {
		reason = errors.New("lua: script disabled")
	}
	switch f.cfg.FailurePolicy {
	case sandbox.PolicyDeadLetter:
		if ierr := out.Inject(sandbox.DeadLetter(m, f.set.Name, f.set.Hostname, reason)); ierr != nil {
			f.set.Drop("deadletter_failed", 1)
			return ierr
		}
		return nil
	case sandbox.PolicyPass:
		c := m.Clone()
		c.UUID = [16]byte{}
		c.Logger = ""
		if ierr := out.Inject(c); ierr != nil {
			f.set.Drop("inject_failed", 1)
			return ierr
		}
		return nil
	}
	if err == nil {
		f.set.Drop("filter_disabled", 1)
		return nil
	}
	return err
}

// Close saves the globals when preserve_data is on.
func (f *Filter) Close(context.Context) error {
	defer f.sb.Close()
	f.metrics.export(f.sb, f.set.Now())
	if !f.cfg.PreserveData || !f.sb.Loaded() {
		return nil
	}
	if err := f.sb.SaveGlobals(f.preservePath()); err != nil {
		f.set.Logger.Error("lua: preserving data failed", "err", err)
		return err
	}
	return nil
}

// Failures exposes the failure counters (tests and metrics).
func (f *Filter) Failures() *sandbox.Failures { return f.fail }

// MemoryBudget is the script's memory_limit (pipeline.MemoryBudgeter).
func (f *Filter) MemoryBudget() int64 { return int64(f.cfg.MemoryLimit) }

// Check loads the script and its alert definitions, for `tern check`.
func (f *Filter) Check() error {
	err := f.load()
	if err != nil && f.cfg.AlertDefinitions != "" && f.defs == nil && !strings.Contains(err.Error(), "alert_definitions: ") {
		// load stops at the script; the definitions are checked too, so
		// that every mistake shows at once.
		if _, derr := f.loadDefs(); derr != nil {
			return errors.Join(err, derr)
		}
	}
	return err
}

// loadDefs loads the alert definitions directory.
func (f *Filter) loadDefs() (*alertdef.Set, error) {
	defs, err := alertdef.Load(f.set.Resolve(f.cfg.AlertDefinitions), f.cfg.Locale)
	if err != nil {
		return nil, &sandbox.Error{Kind: sandbox.KindLoad, Msg: "alert_definitions: " + strings.TrimPrefix(err.Error(), "alert definitions: ")}
	}
	return defs, nil
}

var _ pipeline.Checker = (*Filter)(nil)
