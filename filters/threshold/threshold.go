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
	set pipeline.Settings
	cfg Config
	key msgvar.Var
	ids *alert.IDs
	win int64 // the window in ns

	// keys maps a key to its record; the records also form a list in the
	// order their keys were last seen (head: the longest quiet), so
	// forgetting quiet keys pops from the head: O(1) amortised per event,
	// never a scan of every key.
	keys       map[string]*window
	head, tail *window
	free       *window // recycled records (their rings kept), at most maxFree
	nfree      int

	// The message clock (tickClock): the newest timestamp and the router's
	// time when it arrived.
	latest     int64
	latestWall time.Time

	held      func(float64, ...string)
	expired   func(float64, ...string)
	heldShown int
}

// window holds the last Threshold event times of a key (a ring), so
// "Threshold events within Window" is one comparison.
type window struct {
	key        string // a copy: the message's strings belong to its batch
	times      []int64
	next, n    int
	last       int64
	alerted    int64 // time of the last alert, 0 if none in this window
	prev, succ *window
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
	f := &Filter{set: set, cfg: cfg, key: k, keys: map[string]*window{}, ids: alert.NewIDs(), win: int64(cfg.Window.D())}
	f.held, f.expired = func(float64, ...string) {}, func(float64, ...string) {}
	if set.Telemetry != nil {
		f.held = set.Telemetry.Gauge("threshold_keys", "Keys a threshold filter holds (at most max_keys).")
		f.expired = set.Telemetry.Counter("threshold_expired_total", "Keys a threshold filter forgot after a window without events.")
		f.held(0)
		f.expired(0)
	}
	return f, nil
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
	if ts > f.latest {
		f.latest, f.latestWall = ts, f.set.Now()
	}
	w := f.keys[k]
	if w == nil {
		if len(f.keys) >= f.cfg.MaxKeys {
			f.expire(f.latest)
			if len(f.keys) >= f.cfg.MaxKeys {
				f.set.Drop("threshold_keys", 1)
				return nil
			}
		}
		w = f.newWindow(k)
	} else {
		f.unlink(w)
	}
	f.pushBack(w)
	if w.alerted != 0 && ts-w.alerted >= f.win {
		w.alerted, w.n = 0, 0 // a new window for this key
	}
	w.times[w.next] = ts
	w.next = (w.next + 1) % len(w.times)
	w.n = min(w.n+1, len(w.times))
	w.last = max(w.last, ts)
	if w.alerted != 0 || w.n < len(w.times) {
		return nil
	}
	oldest := w.times[w.next] // the ring is full: next is the oldest
	if ts-oldest >= f.win {
		return nil
	}
	w.alerted = ts
	return out.Inject(f.alert(w.key, oldest, ts))
}

func (f *Filter) newWindow(k string) *window {
	w := f.free
	if w != nil {
		f.free, f.nfree = w.succ, f.nfree-1
		*w = window{times: w.times}
	} else {
		w = &window{times: make([]int64, f.cfg.Threshold)}
	}
	w.key = strings.Clone(k)
	f.keys[w.key] = w
	return w
}

func (f *Filter) pushBack(w *window) {
	w.prev, w.succ = f.tail, nil
	if f.tail != nil {
		f.tail.succ = w
	} else {
		f.head = w
	}
	f.tail = w
}

func (f *Filter) unlink(w *window) {
	if w.prev != nil {
		w.prev.succ = w.succ
	} else {
		f.head = w.succ
	}
	if w.succ != nil {
		w.succ.prev = w.prev
	} else {
		f.tail = w.prev
	}
	w.prev, w.succ = nil, nil
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

// Tick forgets keys quiet for a whole window, in message time (tickClock).
func (f *Filter) Tick(_ context.Context, now time.Time, _ pipeline.Injector) error {
	f.expire(f.tickClock(now))
	return nil
}

// tickClock is the time a tick expires keys at. Keys count in message time,
// so the wall clock would forget every key of a replayed or delayed log at
// each tick: a tick sees the newest message's time plus the time passed
// since it arrived, never ahead of the router's clock (a future-stamped
// message cannot make a tick forget everything).
func (f *Filter) tickClock(now time.Time) int64 {
	wall := now.UnixNano()
	if f.latest == 0 {
		return wall
	}
	return min(f.latest+int64(max(now.Sub(f.latestWall), 0)), wall)
}

// maxFree is how many forgotten records are kept for new keys.
const maxFree = 1024

// expire forgets the keys quiet for more than the window at now: they are
// at the head of the list, so it stops at the first key still active. (A key
// seen with an older timestamp than the keys after it may outlive its window
// until those expire.)
func (f *Filter) expire(now int64) {
	n := 0
	for w := f.head; w != nil && now-w.last > f.win; w = f.head {
		f.unlink(w)
		delete(f.keys, w.key)
		if f.nfree < maxFree {
			w.key, w.succ = "", f.free
			f.free = w
			f.nfree++
		}
		n++
	}
	if n > 0 {
		f.expired(float64(n))
	}
	if len(f.keys) != f.heldShown {
		f.heldShown = len(f.keys)
		f.held(float64(f.heldShown))
	}
}
