package pipeline

import (
	"log/slog"
	"path/filepath"
	"time"
)

// Settings is what the engine hands every plugin constructor: identity,
// logging, clock and places, never the user's config (that is the plugin's
// own Config).
type Settings struct {
	// Name is the instance id, "<kind>.<name>", e.g. "outputs.siem". It
	// appears in logs, metrics and errors.
	Name string
	// Logger is tagged with plugin=Name.
	Logger *slog.Logger
	// Now is the clock; tests fix it so golden files are stable.
	Now func() time.Time
	// Hostname is the router's host name ([tern] hostname).
	Hostname string
	// ConfigDir is the directory of the config file; relative paths in a
	// plugin's config are relative to it (see Resolve).
	ConfigDir string
	// DataDir is a directory this instance owns for state (checkpoints,
	// preserved Lua globals): <[tern] data_dir>/<kind>/<name>. The engine
	// creates it before the plugin runs; constructors must not touch it.
	DataDir string
	// Telemetry counts what the plugin sees beyond the engine's own metrics.
	Telemetry Telemetry
	// Encoder is, for outputs, the encoder the engine encodes with; outputs
	// look for Framer and Delimited on it. Nil for other kinds.
	Encoder Encoder
}

// Resolve makes a config path absolute relative to ConfigDir.
func (s Settings) Resolve(path string) string {
	if path == "" || filepath.IsAbs(path) || s.ConfigDir == "" {
		return path
	}
	return filepath.Join(s.ConfigDir, path)
}

// Drop counts n events the plugin lost or refused, by reason
// (tern_dropped_total{plugin,reason}). Every drop must be counted.
func (s Settings) Drop(reason string, n int) {
	if s.Telemetry != nil && n > 0 {
		s.Telemetry.Drop(reason, n)
	}
}

// Error counts a failure that is not an event (a refused TLS handshake, a
// lost connection), by kind (tern_plugin_errors_total{plugin,kind}).
func (s Settings) Error(kind string) {
	if s.Telemetry != nil {
		s.Telemetry.Error(kind)
	}
}

// DeclareDrops makes tern_dropped_total{plugin,reason} exist at zero for
// each reason from the start, so dashboards and alerts see a series before
// the first drop. Constructors declare every reason the plugin may count.
func (s Settings) DeclareDrops(reasons ...string) {
	if d, ok := s.Telemetry.(Declarer); ok {
		d.DeclareDrops(reasons...)
	}
}

// DeclareErrors makes tern_plugin_errors_total{plugin,kind} exist at zero
// for each kind, as DeclareDrops does for drops.
func (s Settings) DeclareErrors(kinds ...string) {
	if d, ok := s.Telemetry.(Declarer); ok {
		d.DeclareErrors(kinds...)
	}
}

// DeclareDeadLetters makes tern_dead_letters_total{plugin,reason="filter_failed"}
// exist at zero, for a filter that injects dead letters (messages of Type
// "tern.deadletter", which the engine counts under that reason).
func (s Settings) DeclareDeadLetters() {
	if d, ok := s.Telemetry.(interface{ DeclareDeadLetters() }); ok {
		d.DeclareDeadLetters()
	}
}

// Declarer is implemented by a Telemetry that can export counters before
// they count (the engine's); Settings.DeclareDrops and DeclareErrors use it.
type Declarer interface {
	DeclareDrops(reasons ...string)
	DeclareErrors(kinds ...string)
}

// Telemetry is the engine's metrics sink for a plugin. Metric names get the
// prefix "tern_" and a "plugin" label.
type Telemetry interface {
	Drop(reason string, n int)
	Error(kind string)
	// Counter returns a function that adds to a counter with the given
	// label values (in labelNames order).
	Counter(name, help string, labelNames ...string) func(delta float64, labelValues ...string)
	// Gauge returns a function that sets a gauge.
	Gauge(name, help string, labelNames ...string) func(value float64, labelValues ...string)
}

// NopTelemetry discards everything; tests and `tern check` use it.
type NopTelemetry struct{}

func (NopTelemetry) Drop(string, int) {}
func (NopTelemetry) Error(string)     {}
func (NopTelemetry) Counter(string, string, ...string) func(float64, ...string) {
	return func(float64, ...string) {}
}
func (NopTelemetry) Gauge(string, string, ...string) func(float64, ...string) {
	return func(float64, ...string) {}
}
