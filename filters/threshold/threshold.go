// Package threshold is the filter that counts events per key over a sliding
// window and raises one tern.alert per key and window when the count
// reaches a threshold: brute force, scans and ntopng's flow flood, with the
// key as the attacker (alert source) or the victim (alert target).
package threshold

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/ternlog/tern/internal/alert"
	"github.com/ternlog/tern/internal/alertdef"
	"github.com/ternlog/tern/internal/msgvar"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
)

//go:embed sample.toml
var sample string

// Type selects this filter.
const Type = "threshold"

// Config is the [filters.<name>] table with type = "threshold".
type Config struct {
	// Key is what events are counted by: a header or Fields[name].
	Key string `toml:"key"`
	// Role is the key's side in the alert: attacker (a source node) or
	// victim (a target node).
	Role string `toml:"role"`
	// Node is the type of the key's node: address or service.
	Node string `toml:"node"`
	// Threshold is the number of events within Window that raises the alert.
	Threshold int `toml:"threshold"`
	// Window is the sliding window, measured on message timestamps.
	Window config.Duration `toml:"window"`
	// AlertKey is the builtin alert key name the alert carries.
	AlertKey string `toml:"alert_key"`
	// Severity of the alert: low, medium or high.
	Severity string `toml:"severity"`
	// Description overrides the catalog's; %{key}, %{count} and %{window}
	// are replaced.
	Description string `toml:"description"`
	// Method is the alert's method description (empty: none).
	Method string `toml:"method"`
	// Locale selects the catalog of the title and description.
	Locale string `toml:"locale"`
	// MaxKeys caps the keys tracked at once; events of further keys are
	// dropped and counted (reason "threshold_keys").
	MaxKeys int `toml:"max_keys"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{
		Role: "attacker", Node: alert.NodeAddress, Window: config.Duration(time.Minute),
		AlertKey: "alert_threshold_exceeded", Severity: "medium", Locale: alertdef.DefaultLocale, MaxKeys: 10000,
	}
}

// Validate checks the config.
func (c Config) Validate() error {
	var errs []error
	if c.Key == "" {
		errs = append(errs, errors.New("key: required (a header or Fields[name])"))
	} else if _, err := msgvar.Parse(c.Key); err != nil {
		errs = append(errs, fmt.Errorf("key: %v", err))
	}
	if c.Role != "attacker" && c.Role != "victim" {
		errs = append(errs, errors.New("role: must be attacker or victim"))
	}
	if c.Node != alert.NodeAddress && c.Node != alert.NodeService {
		errs = append(errs, errors.New("node: must be address or service"))
	}
	if c.Threshold < 1 || c.Threshold > 100000 {
		errs = append(errs, errors.New("threshold: must be 1..100000"))
	}
	if c.Window.D() <= 0 {
		errs = append(errs, errors.New("window: must be positive"))
	}
	if _, ok := alertdef.BuiltinKey(c.AlertKey); !ok {
		names := make([]string, len(alertdef.BuiltinKeys))
		for i, k := range alertdef.BuiltinKeys {
			names[i] = k.Name
		}
		errs = append(errs, fmt.Errorf("alert_key: must be a builtin key (%s)", strings.Join(names, ", ")))
	}
	if !alert.ValidLevel(c.Severity) {
		errs = append(errs, errors.New("severity: must be low, medium or high"))
	}
	if c.MaxKeys < 1 {
		errs = append(errs, errors.New("max_keys: must be at least 1"))
	}
	return errors.Join(errs...)
}

// Filter counts events per key.
type Filter struct {
	set  pipeline.Settings
	cfg  Config
	key  msgvar.Var
	keys map[string]*window
	ids  *alert.IDs
	// high-water mark of message time, to expire keys on ticks
	latest int64
}

// window holds the last Threshold event times of a key (a ring), so
// "Threshold events within Window" is one comparison.
type window struct {
	times   []int64
	next    int
	n       int
	last    int64
	alerted int64 // time of the last alert, 0 if none in this window
}

var (
	_ pipeline.Filter = (*Filter)(nil)
	_ pipeline.Ticker = (*Filter)(nil)
)

// New returns a threshold filter.
func New(set pipeline.Settings, cfg Config) (*Filter, error) {
	k, err := msgvar.Parse(cfg.Key)
	if err != nil {
		return nil, err
	}
	if set.Now == nil {
		set.Now = time.Now
	}
	set.DeclareDrops("threshold_keys")
	return &Filter{set: set, cfg: cfg, key: k, keys: map[string]*window{}, ids: alert.NewIDs()}, nil
}

// Factory registers the filter.
func Factory() pipeline.Factory[pipeline.Filter] {
	return pipeline.NewFactory(Type, sample, DefaultConfig, func(s pipeline.Settings, c Config) (pipeline.Filter, error) {
		return New(s, c)
	}).WithSummary("events per key over a sliding window raise an alert")
}

// Process counts m under its key and raises the alert on the event that
// reaches the threshold.
func (f *Filter) Process(_ context.Context, m *pipeline.Message, out pipeline.Injector) error {
	k, ok := f.key.String(m)
	if !ok || k == "" {
		return nil
	}
	ts := m.Timestamp
	f.latest = max(f.latest, ts)
	w := f.keys[k]
	if w == nil {
		if len(f.keys) >= f.cfg.MaxKeys {
			f.expire(f.latest)
			if len(f.keys) >= f.cfg.MaxKeys {
				f.set.Drop("threshold_keys", 1)
				return nil
			}
		}
		w = &window{times: make([]int64, f.cfg.Threshold)}
		f.keys[k] = w
	}
	win := int64(f.cfg.Window.D())
	if w.alerted != 0 && ts-w.alerted >= win {
		w.alerted, w.n = 0, 0 // a new window for this key
	}
	w.times[w.next] = ts
	w.next = (w.next + 1) % len(w.times)
	w.n = min(w.n+1, len(w.times))
	w.last = ts
	if w.alerted != 0 || w.n < len(w.times) {
		return nil
	}
	oldest := w.times[w.next] // the ring is full: next is the oldest
	if ts-oldest >= win {
		return nil
	}
	w.alerted = ts
	return out.Inject(f.alert(k, oldest, ts))
}

func (f *Filter) alert(key string, start, end int64) *pipeline.Message {
	now := f.set.Now()
	title, desc := alertdef.BuiltinText(f.cfg.Locale, f.cfg.AlertKey)
	if f.cfg.Description != "" {
		desc = f.cfg.Description
	}
	params := map[string]string{"key": key, "count": strconv.Itoa(f.cfg.Threshold), "window": f.cfg.Window.String(),
		"src": key, "attempts": strconv.Itoa(f.cfg.Threshold)}
	num, _ := alertdef.BuiltinKey(f.cfg.AlertKey)
	a := &alert.Alert{
		ID: f.ids.New(now), StartTime: &start, EndTime: &end, Severity: f.cfg.Severity,
		Description:    alertdef.Render(desc, func(k string) (string, bool) { v, ok := params[k]; return v, ok }),
		HasDescription: desc != "",
		Key:            num, KeyName: f.cfg.AlertKey, Title: title,
	}
	if f.cfg.Method != "" {
		a.Method = &alert.Method{Description: f.cfg.Method, HasDesc: true}
	}
	n := alert.Node{Type: f.cfg.Node, Values: []string{key}}
	if f.cfg.Role == "attacker" {
		a.Sources = []alert.Node{n}
	} else {
		a.Targets = []alert.Node{n}
	}
	return a.Message(now, f.set.Hostname, name(f.set.Name))
}

func name(id string) string {
	if i := strings.IndexByte(id, '.'); i >= 0 {
		return id[i+1:]
	}
	return id
}

// Tick forgets keys quiet for a whole window.
func (f *Filter) Tick(_ context.Context, now time.Time, _ pipeline.Injector) error {
	f.expire(max(f.latest, now.UnixNano()))
	return nil
}

func (f *Filter) expire(now int64) {
	win := int64(f.cfg.Window.D())
	for k, w := range f.keys {
		if now-w.last > win {
			delete(f.keys, k)
		}
	}
}
