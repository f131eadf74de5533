// Package dedupe is the filter that suppresses repeats of an alert within a
// window: the first tern.alert of a key passes (re-injected under the
// filter's name, with its own id), later ones with the same key are
// counted, and when the window ends an update of the first alert reports
// how many were suppressed.
package dedupe

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ternlog/tern/internal/alert"
	"github.com/ternlog/tern/internal/alertmsg"
	"github.com/ternlog/tern/internal/msgvar"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
)

//go:embed sample.toml
var sample string

// Type selects this filter.
const Type = "dedupe"

// RepeatsContext is the context field (alert.context.repeats) of the
// update that closes a window: how many repeats were suppressed.
const RepeatsContext = "repeats"

// Config is the [filters.<name>] table with type = "dedupe".
type Config struct {
	// Key lists what makes two alerts the same: headers or Fields[name].
	Key []string `toml:"key"`
	// Window is how long repeats of a key are suppressed after its first
	// alert, on message timestamps.
	Window config.Duration `toml:"window"`
	// MaxKeys caps the keys tracked at once; alerts of further keys pass
	// without deduplication and are counted (metric dedupe_untracked_total).
	MaxKeys int `toml:"max_keys"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Key:     []string{"Fields[alert.key_name]", "Fields[alert.description]", "Fields[alert.source]", "Fields[alert.target]"},
		Window:  config.Duration(5 * time.Minute),
		MaxKeys: 10000,
	}
}

// Validate checks the config.
func (c Config) Validate() error {
	var errs []error
	if len(c.Key) == 0 {
		errs = append(errs, errors.New("key: at least one header or Fields[name]"))
	}
	for _, k := range c.Key {
		if _, err := msgvar.Parse(k); err != nil {
			errs = append(errs, fmt.Errorf("key: %v", err))
		}
	}
	if c.Window.D() <= 0 {
		errs = append(errs, errors.New("window: must be positive"))
	}
	if c.MaxKeys < 1 {
		errs = append(errs, errors.New("max_keys: must be at least 1"))
	}
	return errors.Join(errs...)
}

// srcID names an alert: ids are unique, but the integer ids of earlier
// versions counted per filter, so the Logger is part of the name.
type srcID struct {
	logger string
	id     string
}

type entry struct {
	key     string
	state   *alert.Alert // the first alert as it stands after its updates
	first   int64
	last    int64
	repeats int
	src     srcID // the alert that passed: its updates follow it
	// prev, next: the entries in the order their windows opened, so
	// expiry pops from the front instead of scanning every key.
	prev, next *entry
}

// Filter deduplicates alerts.
type Filter struct {
	set        pipeline.Settings
	cfg        Config
	vars       []msgvar.Var
	entries    map[string]*entry
	ids        map[srcID]*entry // updates of a passed alert follow it
	head, tail *entry
	// The message clock as ticks see it (tickClock): the newest timestamp
	// and the router's time when it arrived.
	latest     int64
	latestWall time.Time
	suppressed func(float64, ...string)
	untracked  func(float64, ...string)
}

var (
	_ pipeline.Filter = (*Filter)(nil)
	_ pipeline.Ticker = (*Filter)(nil)
)

// New returns a dedupe filter.
func New(set pipeline.Settings, cfg Config) (*Filter, error) {
	f := &Filter{set: set, cfg: cfg, entries: map[string]*entry{}, ids: map[srcID]*entry{}}
	for _, k := range cfg.Key {
		v, err := msgvar.Parse(k)
		if err != nil {
			return nil, err
		}
		f.vars = append(f.vars, v)
	}
	if set.Now == nil {
		f.set.Now = time.Now
	}
	tel := set.Telemetry
	if tel == nil {
		tel = pipeline.NopTelemetry{}
	}
	f.suppressed = tel.Counter("dedupe_suppressed_total", "Alerts (and their updates) suppressed as repeats.")
	f.untracked = tel.Counter("dedupe_untracked_total", "Alerts passed without deduplication because max_keys was reached.")
	return f, nil
}

// Factory registers the filter.
func Factory() pipeline.Factory[pipeline.Filter] {
	return pipeline.NewFactory(Type, sample, DefaultConfig, func(s pipeline.Settings, c Config) (pipeline.Filter, error) {
		return New(s, c)
	}).WithSummary("suppress repeats of an alert, counting them")
}

func (f *Filter) key(m *pipeline.Message) string {
	var b strings.Builder
	for i, v := range f.vars {
		if i > 0 {
			b.WriteByte(0x1f)
		}
		if s, ok := v.String(m); ok {
			b.WriteString(s)
		}
	}
	return b.String()
}

// Process passes the first alert of a key, counts its repeats and forwards
// the updates of the alert it passed.
func (f *Filter) Process(_ context.Context, m *pipeline.Message, out pipeline.Injector) error {
	if m.Type != alert.Type {
		return nil
	}
	id, _ := alertmsg.ID(m)
	// Kept as map keys: copies, not views into the message's batch.
	src := srcID{pipeline.Retain(m.Logger), pipeline.Retain(id)}
	if m.Timestamp > f.latest {
		f.latest, f.latestWall = m.Timestamp, f.set.Now()
	}
	if alertmsg.IsUpdate(m) {
		e := f.ids[src]
		if e == nil {
			f.suppressed(1) // an update of a repeat, or of an alert we never saw
			return nil
		}
		e.state = follow(e.state, m)
		return out.Inject(reinject(m))
	}
	k := f.key(m)
	e := f.entries[k]
	win := int64(f.cfg.Window.D())
	if e != nil && m.Timestamp-e.first >= win {
		if err := f.close(e, out); err != nil {
			return err
		}
		e = nil
	}
	if e != nil {
		// A repeat: counted, not kept (its updates are suppressed as
		// updates of an alert that did not pass), so a flood of repeats
		// holds no memory.
		e.repeats++
		e.last = max(e.last, m.Timestamp)
		f.suppressed(1)
		return nil
	}
	if len(f.entries) >= f.cfg.MaxKeys {
		if err := f.expire(f.latest, out); err != nil {
			return err
		}
	}
	if len(f.entries) >= f.cfg.MaxKeys {
		f.untracked(1)
		return out.Inject(reinject(m))
	}
	e = &entry{key: k, state: follow(nil, m), first: m.Timestamp, last: m.Timestamp, src: src}
	f.entries[k] = e
	f.ids[src] = e
	e.prev = f.tail
	if f.tail != nil {
		f.tail.next = e
	} else {
		f.head = e
	}
	f.tail = e
	return out.Inject(reinject(m))
}

// follow returns the alert after m: m's whole alert, or for an update
// that carries only its changes (earlier versions), state with them. The
// alert is kept until its window closes, so it is parsed from a copy of m
// that shares no memory with m's batch.
func follow(state *alert.Alert, m *pipeline.Message) *alert.Alert {
	a, err := alert.Parse(m.DeepClone())
	if err != nil && a.ID == "" {
		return state
	}
	if a.Update && a.Updated == nil && state != nil {
		state.Apply(a)
		return state
	}
	a.Update, a.Updated = false, nil
	return a
}

// reinject copies an alert to be injected under the filter's name; the
// engine sets the Logger and a new UUID.
func reinject(m *pipeline.Message) *pipeline.Message {
	c := m.Clone()
	c.UUID = [16]byte{}
	c.Logger = ""
	return c
}

// close ends an entry's window: an update with the repeat count when there
// were repeats.
func (f *Filter) close(e *entry, out pipeline.Injector) error {
	delete(f.entries, e.key)
	if f.ids[e.src] == e {
		delete(f.ids, e.src)
	}
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		f.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		f.tail = e.prev
	}
	e.prev, e.next = nil, nil
	if e.repeats == 0 || e.state == nil {
		return nil
	}
	last := e.last
	a := e.state
	a.Updated = a.Apply(&alert.Alert{EndTime: &last,
		Context: []pipeline.Field{pipeline.NewField(RepeatsContext, pipeline.TypeInteger, "", pipeline.IntValue(int64(e.repeats)))}})
	a.Update = true
	m := a.Message(f.set.Now(), f.set.Hostname, "")
	return out.Inject(m)
}

// Tick closes the windows that have ended, in message time (tickClock).
func (f *Filter) Tick(_ context.Context, now time.Time, out pipeline.Injector) error {
	return f.expire(f.tickClock(now), out)
}

// tickClock is the time a tick closes windows at. Windows are measured in
// message time, so the wall clock would close every window of a replayed or
// delayed log at each tick: a tick sees the newest message's time plus the
// time passed since it arrived, never ahead of the router's clock.
func (f *Filter) tickClock(now time.Time) int64 {
	wall := now.UnixNano()
	if f.latest == 0 {
		return wall
	}
	return min(f.latest+int64(max(now.Sub(f.latestWall), 0)), wall)
}

func (f *Filter) expire(now int64, out pipeline.Injector) error {
	// Windows close in the order they opened (an entry opened with an
	// older time than the one before it waits for that one); each close is
	// O(1), so neither ticks nor a full table scan the keys.
	win := int64(f.cfg.Window.D())
	for e := f.head; e != nil && now-e.first >= win; e = f.head {
		if err := f.close(e, out); err != nil {
			return err
		}
	}
	return nil
}
