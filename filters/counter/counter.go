// Package counter is the filter that counts messages per Type and Logger
// and injects their rates every ticker_interval, like Heka's CounterFilter.
package counter

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/ternlog/tern/internal/msgvar"
	"github.com/ternlog/tern/pipeline"
)

//go:embed sample.toml
var sample string

// Type selects this filter.
const Type = "counter"

// OutputType is the Type of the messages the filter injects.
const OutputType = "tern.counter"

// Config is the [filters.<name>] table with type = "counter".
type Config struct {
	// GroupBy lists the headers or Fields[name] messages are counted by.
	GroupBy []string `toml:"group_by"`
	// MaxGroups caps the groups counted at once; further groups are counted
	// together under the group "_other_".
	MaxGroups int `toml:"max_groups"`
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{GroupBy: []string{"Type", "Logger"}, MaxGroups: 1000}
}

// Validate checks the config.
func (c Config) Validate() error {
	var errs []error
	for _, g := range c.GroupBy {
		if _, err := msgvar.Parse(g); err != nil {
			errs = append(errs, fmt.Errorf("group_by: %v", err))
		}
	}
	if c.MaxGroups < 1 {
		errs = append(errs, errors.New("max_groups: must be at least 1"))
	}
	return errors.Join(errs...)
}

type group struct {
	values []string
	count  int64
}

// Filter counts messages.
type Filter struct {
	set    pipeline.Settings
	cfg    Config
	vars   []msgvar.Var
	groups map[string]*group
	since  time.Time // start of the current interval
	total  int64
	buf    []string
}

var (
	_ pipeline.Filter = (*Filter)(nil)
	_ pipeline.Ticker = (*Filter)(nil)
)

// New returns a counter filter.
func New(set pipeline.Settings, cfg Config) (*Filter, error) {
	f := &Filter{set: set, cfg: cfg, groups: map[string]*group{}}
	for _, g := range cfg.GroupBy {
		v, err := msgvar.Parse(g)
		if err != nil {
			return nil, err
		}
		f.vars = append(f.vars, v)
	}
	if f.set.Now == nil {
		f.set.Now = time.Now
	}
	return f, nil
}

// Factory registers the filter.
func Factory() pipeline.Factory[pipeline.Filter] {
	return pipeline.NewFactory(Type, sample, DefaultConfig, func(s pipeline.Settings, c Config) (pipeline.Filter, error) {
		return New(s, c)
	}).WithSummary("message rates per type and logger")
}

// Process counts m.
func (f *Filter) Process(_ context.Context, m *pipeline.Message, _ pipeline.Injector) error {
	if f.since.IsZero() {
		f.since = f.set.Now()
	}
	f.buf = f.buf[:0]
	for _, v := range f.vars {
		s, _ := v.String(m)
		f.buf = append(f.buf, s)
	}
	k := strings.Join(f.buf, "\x1f")
	g := f.groups[k]
	if g == nil {
		if len(f.groups) >= f.cfg.MaxGroups {
			k = "_other_"
			if g = f.groups[k]; g == nil {
				g = &group{values: []string{"_other_"}}
				f.groups[k] = g
			}
		} else {
			// Kept across calls: copies, not views into the batch.
			g = &group{values: make([]string, len(f.buf))}
			for i, v := range f.buf {
				g.values[i] = pipeline.Retain(v)
			}
			f.groups[pipeline.Retain(k)] = g
		}
	}
	g.count++
	f.total++
	return nil
}

// Tick injects one message per group seen in the interval (sorted), with
// fields counter.<group_by>, counter.count (integer), counter.rate (double,
// messages per second) and counter.interval (seconds), then starts a new
// interval. The payload is Heka's "Got N messages. R msg/sec".
func (f *Filter) Tick(_ context.Context, now time.Time, out pipeline.Injector) error {
	if f.since.IsZero() {
		f.since = now
		return nil
	}
	secs := now.Sub(f.since).Seconds()
	f.since = now
	keys := make([]string, 0, len(f.groups))
	for k := range f.groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		g := f.groups[k]
		m := pipeline.NewMessage()
		m.Type = OutputType
		m.Timestamp = now.UnixNano()
		m.Severity = pipeline.SeverityInfo
		rate := 0.0
		if secs > 0 {
			rate = float64(g.count) / secs
		}
		m.Payload = fmt.Sprintf("Got %d messages. %0.2f msg/sec", g.count, rate)
		for i, v := range f.cfg.GroupBy {
			val := "_other_"
			if i < len(g.values) && (len(g.values) > 1 || k != "_other_") {
				val = g.values[i]
			}
			m.AddString("counter."+groupName(v), val)
		}
		m.AddInt("counter.count", g.count)
		m.AddDouble("counter.rate", rate)
		m.AddField(pipeline.NewField("counter.interval", pipeline.TypeDouble, "s", pipeline.DoubleValue(secs)))
		if err := out.Inject(m); err != nil {
			return err
		}
	}
	clear(f.groups)
	f.total = 0
	return nil
}

// groupName is the field name part of a group_by entry: "type" for Type,
// "src_ip" for Fields[src_ip].
func groupName(v string) string {
	if strings.HasPrefix(v, "Fields[") {
		return v[7 : len(v)-1]
	}
	return strings.ToLower(v)
}
