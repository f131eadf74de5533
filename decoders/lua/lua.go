// Package lua is the decoder that runs a Lua script (Heka's sandbox decoder
// API) in the bounded sandbox of internal/sandbox. First in a chain it
// receives each record as the Payload of a new message; after another
// decoder (decoder = ["syslog", "sshd"]) it rewrites the message that
// decoder produced. Either way the script shapes the message with
// write_message.
package lua

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"sync"

	golua "github.com/Shopify/go-lua"

	"github.com/ternlog/tern/internal/sandbox"
	"github.com/ternlog/tern/pipeline"
)

//go:embed sample.toml
var sample string

// Type selects this decoder.
const Type = "lua"

// Config is the [decoders.<name>] table with type = "lua".
type Config struct {
	// Filename is the script, relative to the config file's directory.
	Filename string `toml:"filename"`
	// Limits are the sandbox's limits and what a failing script costs:
	// failure_policy is what happens to a record the script failed on:
	// deadletter (the whole record), pass (the message unchanged) or count
	// (the message is dropped and counted).
	sandbox.Limits
	// Config is the [decoders.<name>.config] table that read_config reads.
	Config map[string]any `toml:"config"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{Limits: sandbox.DefaultLimits(sandbox.PolicyDeadLetter)}
}

// Validate checks the config.
func (c Config) Validate() error {
	var errs []error
	if c.Filename == "" {
		errs = append(errs, errors.New("filename: required"))
	}
	errs = append(errs, c.Limits.Check("deadletter, pass or count")...)
	return errors.Join(errs...)
}

// Decoder runs one script; a mutex serialises the connections of an input
// over its single Lua State.
type Decoder struct {
	set  pipeline.Settings
	cfg  Config
	path string
	fail *sandbox.Failures

	mu      sync.Mutex
	sb      *sandbox.Sandbox
	dead    bool
	cur     *pipeline.Message
	pending []*pipeline.Message
}

var (
	_ pipeline.Decoder     = (*Decoder)(nil)
	_ pipeline.Transformer = (*Decoder)(nil)
)

// New returns a Lua decoder. It reads nothing: the first record loads the
// script.
func New(set pipeline.Settings, cfg Config) (*Decoder, error) {
	d := &Decoder{set: set, cfg: cfg, path: set.Resolve(cfg.Filename)}
	d.fail = sandbox.NewFailures(set, cfg.MaxFailures)
	set.DeclareDrops("lua_error")
	d.sb = sandbox.New(cfg.Limits.SandboxConfig(set), d.path, "", d.setup)
	// Go-backed state (require "tern.window", …) counts in the message's
	// time once a decoder before this one has set it.
	d.sb.SetClock(func() int64 {
		if d.cur != nil && d.cur.Timestamp != 0 {
			return d.cur.Timestamp
		}
		return d.sb.Config().Now().UnixNano()
	})
	return d, nil
}

// Factory registers the decoder.
func Factory() pipeline.Factory[pipeline.Decoder] {
	return pipeline.NewFactory(Type, sample, DefaultConfig, func(s pipeline.Settings, c Config) (pipeline.Decoder, error) {
		return New(s, c)
	}).WithSummary("a sandboxed Lua script shapes the message")
}

func (d *Decoder) setup(sb *sandbox.Sandbox) error {
	l := sb.State()
	l.Register("read_config", func(l *golua.State) int {
		v, ok := d.cfg.Config[golua.CheckString(l, 1)]
		if !ok {
			l.PushNil()
			return 1
		}
		if i, isInt := v.(int64); isInt {
			v = float64(i)
		}
		sandbox.PushGo(l, v)
		return 1
	})
	l.Register("read_message", func(l *golua.State) int { return sb.ReadMessage(l, d.cur, sandbox.ReadPlain) })
	l.Register("read_exact", func(l *golua.State) int { return sb.ReadMessage(l, d.cur, sandbox.ReadExact) })
	l.Register("read_timestamp", func(l *golua.State) int { return sandbox.ReadTimestamp(l, d.cur) })
	l.Register("write_message", func(l *golua.State) int {
		if d.cur == nil {
			golua.Errorf(l, "write_message: no current message")
		}
		if err := sandbox.WriteMessage(l, d.cur); err != nil {
			golua.Errorf(l, "%s", err.Error())
		}
		return 0
	})
	l.Register("inject_message", func(l *golua.State) int {
		if len(d.pending) >= d.cfg.MaxInject {
			golua.Errorf(l, "max_inject exceeded: more than %d messages in one call", d.cfg.MaxInject)
		}
		m, err := sandbox.MessageFromTable(l, 1)
		if err != nil {
			golua.Errorf(l, "%s", err.Error())
		}
		d.pending = append(d.pending, m)
		return 0
	})
	return nil
}

func (d *Decoder) load() error {
	if d.sb.Loaded() {
		return nil
	}
	if !d.sb.HasSource() {
		src, err := os.ReadFile(d.path)
		if err != nil {
			return &sandbox.Error{Kind: sandbox.KindLoad, Msg: err.Error()}
		}
		d.sb.SetSource(string(src))
	}
	if _, err := d.sb.Load(); err != nil {
		return err
	}
	if !d.sb.HasFunction("process_message") {
		return &sandbox.Error{Kind: sandbox.KindLoad, Msg: "the script defines no process_message function"}
	}
	return nil
}

// errSkip is the script's "no message" (return -2).
var errSkip = errors.New("skip")

// run calls process_message on m. It returns errSkip when the script
// dropped the message, and the injected messages.
func (d *Decoder) run(m *pipeline.Message) ([]*pipeline.Message, error) {
	if d.dead || d.fail.Disabled() {
		return nil, errDisabled
	}
	d.cur = m
	d.pending = d.pending[:0]
	defer func() { d.cur = nil }()
	if err := d.load(); err != nil {
		d.disable(err)
		return nil, err
	}
	code, msg := 0, ""
	err := d.sb.Call("process_message", nil, 2, func(l *golua.State) error {
		if n, ok := l.ToNumber(-2); ok {
			code = int(n)
		}
		if l.TypeOf(-1) == golua.TypeString {
			msg, _ = l.ToString(-1)
		}
		return nil
	})
	switch {
	case err != nil:
		if d.fail.Failed(err) {
			d.sb.Release() // disabled: give back what the script held
		}
		return nil, err
	case code == -2:
		d.fail.Succeeded()
		return nil, errSkip
	case code < 0:
		err = &sandbox.Error{Kind: sandbox.KindReturn, Msg: fmt.Sprintf("process_message returned %d%s", code, suffix(msg))}
		d.fail.Rejected(err)
		return nil, err
	case code > 0:
		err = &sandbox.Error{Kind: sandbox.KindReturn, Msg: fmt.Sprintf("process_message returned %d%s", code, suffix(msg))}
		d.disable(err)
		return nil, err
	}
	d.fail.Succeeded()
	return d.pending, nil
}

var errDisabled = errors.New("lua: script disabled")

func suffix(msg string) string {
	if msg == "" {
		return ""
	}
	return ": " + msg
}

func (d *Decoder) disable(err error) {
	if !d.dead {
		d.dead = true
		d.set.Logger.Error("lua: script disabled", "err", err.Error())
		d.fail.Failed(err)
		d.sb.Release()
	}
}

// Decode makes a message whose Payload is the record and runs the script
// on it.
func (d *Decoder) Decode(rec pipeline.Record, out *pipeline.Batch) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	start := out.Len()
	m := out.Add()
	m.Payload = out.Str(rec.Data)
	injected, err := d.run(m)
	if err == errSkip {
		out.Truncate(start)
		return nil
	}
	if err != nil {
		switch d.cfg.FailurePolicy {
		case sandbox.PolicyPass:
			out.Truncate(start)
			m = out.Add()
			m.Payload = out.Str(rec.Data)
			return nil
		case sandbox.PolicyCount:
			out.Truncate(start)
			d.set.Drop("lua_error", 1)
			return nil
		}
		return err
	}
	if len(injected) > 0 {
		out.Truncate(start)
		for _, im := range injected {
			*out.Add() = *im
		}
	}
	return nil
}

// Transform runs the script on a message an earlier decoder produced.
func (d *Decoder) Transform(m *pipeline.Message, out *pipeline.Batch) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var saved *pipeline.Message
	if d.cfg.FailurePolicy == sandbox.PolicyPass {
		saved = m.Clone()
	}
	injected, err := d.run(m)
	if err == errSkip {
		return false, nil
	}
	if err != nil {
		switch d.cfg.FailurePolicy {
		case sandbox.PolicyPass:
			*m = *saved
			return true, nil
		case sandbox.PolicyCount:
			d.set.Drop("lua_error", 1)
			return false, nil
		}
		return false, err
	}
	if len(injected) > 0 {
		for _, im := range injected {
			*out.Add() = *im
		}
		return false, nil
	}
	return true, nil
}

// Failures exposes the failure counters.
func (d *Decoder) Failures() *sandbox.Failures { return d.fail }

// Check loads the script, for `tern check`.
func (d *Decoder) Check() error { return d.load() }

// MemoryBudget is the script's memory_limit (pipeline.MemoryBudgeter).
func (d *Decoder) MemoryBudget() int64 { return int64(d.cfg.MemoryLimit) }

var _ pipeline.Checker = (*Decoder)(nil)
