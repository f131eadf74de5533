package sandbox

import (
	"errors"
	"log/slog"
	"sync"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/codec"
)

// Failure policies: what happens to the message whose script call failed.
const (
	PolicyCount      = "count"      // count and log it; the message goes on as if the script had not seen it
	PolicyDeadLetter = "deadletter" // send it to the dead-letter route
	PolicyPass       = "pass"       // pass it on unchanged
)

// ValidPolicy reports whether p names a failure policy.
func ValidPolicy(p string) bool {
	return p == PolicyCount || p == PolicyDeadLetter || p == PolicyPass
}

// Failures counts script failures by kind and disables the script after
// max consecutive ones (0 never disables). It is safe for concurrent use.
type Failures struct {
	max    int
	log    *slog.Logger
	set    pipeline.Settings
	count  func(float64, ...string)
	gauge  func(float64, ...string)
	mu     sync.Mutex
	streak int
	off    bool
	total  map[string]int
}

// NewFailures registers the metrics tern_lua_failures_total{kind} and
// tern_lua_disabled (1 once the script is disabled), at zero.
func NewFailures(set pipeline.Settings, max int) *Failures {
	f := &Failures{max: max, set: set, log: set.Logger, total: map[string]int{}}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if set.Telemetry != nil {
		f.count = set.Telemetry.Counter("lua_failures_total", "Failed calls into a Lua script, by kind.", "kind")
		f.gauge = set.Telemetry.Gauge("lua_disabled", "1 when the Lua script was disabled after consecutive failures.")
		f.gauge(0)
		// Every kind is exported from zero, and as the plugin error
		// lua_<kind> that Failed counts too.
		for _, k := range kinds {
			f.count(0, k)
			set.DeclareErrors("lua_" + k)
		}
	}
	return f
}

// kinds are the failure kinds, in the order of their constants.
var kinds = []string{KindLoad, KindInstruction, KindDeadline, KindMemory, KindRuntime, KindPanic, KindReturn}

// Failed records a failed call and reports whether the script is now
// disabled (true on the call that disables it and after). A fatal error
// (the script held more than its memory limit: Error.Fatal) disables it at
// once unless max is 0; then the next call starts from a fresh State.
func (f *Failures) Failed(err error) bool {
	kind := KindOf(err)
	if kind == "" {
		kind = KindRuntime
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.total[kind]++
	f.streak++
	if f.count != nil {
		f.count(1, kind)
	}
	f.set.Error("lua_" + kind)
	if f.off {
		return true
	}
	var e *Error
	fatal := errors.As(err, &e) && e.Fatal
	if f.max > 0 && (f.streak >= f.max || fatal) {
		f.off = true
		if f.gauge != nil {
			f.gauge(1)
		}
		if fatal {
			f.log.Error("lua: script disabled: it held more than its memory limit", "err", err.Error())
		} else {
			f.log.Error("lua: script disabled after consecutive failures", "failures", f.streak, "last_error", err.Error())
		}
		return true
	}
	return false
}

// Rejected counts a message the script refused (a negative return code):
// a data problem, so it does not count towards disabling the script.
func (f *Failures) Rejected(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.total[KindReturn]++
	if f.count != nil {
		f.count(1, KindReturn)
	}
}

// Succeeded ends a streak of failures.
func (f *Failures) Succeeded() {
	f.mu.Lock()
	f.streak = 0
	f.mu.Unlock()
}

// Disabled reports whether the script was disabled.
func (f *Failures) Disabled() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.off
}

// Total returns the failures counted for kind ("" for all kinds).
func (f *Failures) Total(kind string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if kind != "" {
		return f.total[kind]
	}
	n := 0
	for _, v := range f.total {
		n += v
	}
	return n
}

// DeadLetter builds the dead letter for a message a script failed on: the
// payload is the message's canonical JSON, the fields say why (the
// engine's dead-letter field names).
func DeadLetter(m *pipeline.Message, plugin, hostname string, err error) *pipeline.Message {
	d := pipeline.NewMessage()
	d.Type = "tern.deadletter"
	d.Severity = pipeline.SeverityError
	d.Hostname = hostname
	d.Logger = plugin
	d.Payload = string(codec.AppendJSON(nil, m))
	d.AddString("deadletter.reason", "lua_error")
	msg := err.Error()
	if len(msg) > 1000 {
		msg = msg[:1000]
	}
	d.AddString("deadletter.error", msg)
	d.AddString("deadletter.plugin", plugin)
	if m.Logger != "" {
		d.AddString("deadletter.source", m.Logger)
	}
	return d
}
