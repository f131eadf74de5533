package engine

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
)

// metrics are the engine's Prometheus series. Hot paths hold pre-curried
// counters, so a batch costs one atomic add per series.
type metrics struct {
	reg *prometheus.Registry

	inRecords   *prometheus.CounterVec
	inMessages  *prometheus.CounterVec
	deadLetters *prometheus.CounterVec
	drops       *prometheus.CounterVec
	errs        *prometheus.CounterVec
	filtered    *prometheus.CounterVec
	filterErrs  *prometheus.CounterVec
	injected    *prometheus.CounterVec
	delivered   *prometheus.CounterVec
	retries     *prometheus.CounterVec
	latency     *prometheus.HistogramVec

	mu     sync.Mutex
	custom map[string]prometheus.Collector
}

func newMetrics(reg *prometheus.Registry) *metrics {
	f := func(name, help string, labels ...string) *prometheus.CounterVec {
		v := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "tern", Name: name, Help: help}, labels)
		reg.MustRegister(v)
		return v
	}
	m := &metrics{
		reg:         reg,
		inRecords:   f("input_records_total", "Records read by an input.", "plugin"),
		inMessages:  f("input_messages_total", "Messages decoded from an input's records.", "plugin"),
		deadLetters: f("dead_letters_total", "Records or messages sent to the dead-letter route.", "plugin", "reason"),
		drops:       f("dropped_total", "Events not delivered, by plugin and reason.", "plugin", "reason"),
		errs:        f("plugin_errors_total", "Plugin failures that are not events.", "plugin", "kind"),
		filtered:    f("filter_messages_total", "Messages processed by a filter.", "plugin"),
		filterErrs:  f("filter_errors_total", "Messages a filter failed on.", "plugin"),
		injected:    f("filter_injected_total", "Messages injected by a filter.", "plugin"),
		delivered:   f("output_messages_total", "Messages an output delivered.", "plugin"),
		retries:     f("output_retries_total", "Write attempts that failed and were retried.", "plugin"),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "tern", Name: "output_write_seconds", Help: "Duration of output writes.",
			Buckets: []float64{.0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5},
		}, []string{"plugin"}),
		custom: map[string]prometheus.Collector{},
	}
	reg.MustRegister(m.latency)
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// declare exports at zero every series the engine counts for the plugins
// of plan, so a scrape before any traffic shows each one and rate() and
// alerts work from the first sample. Plugins declare the drops and errors
// they count themselves (pipeline.Settings.DeclareDrops).
func (m *metrics) declare(plan *config.Plan) {
	m.drops.WithLabelValues("engine", "deadletter_lost")
	m.drops.WithLabelValues("engine", "deadletter_queue_full")
	for _, in := range plan.Inputs {
		id := in.ID()
		m.input(id)
		m.drops.WithLabelValues(id, "no_match")
		m.errs.WithLabelValues(id, "restart")
		for _, name := range in.Decoders {
			if sec := plan.Decoders[name]; sec != nil {
				m.deadLetters.WithLabelValues(sec.ID(), "decode_error")
			}
		}
	}
	for _, f := range plan.Filters {
		id := f.ID()
		m.filter(id)
		m.drops.WithLabelValues(id, "no_match") // injected messages nobody wants
		m.drops.WithLabelValues(id, "loop")
		// Injected messages and dead letters past the overflow allowance.
		m.drops.WithLabelValues(id, "overflow_full")
	}
	for _, o := range plan.Outputs {
		id := o.ID()
		m.output(id)
		m.deadLetters.WithLabelValues(id, "output_rejected")
		if sec := plan.Encoders[o.Encoder]; sec != nil {
			m.deadLetters.WithLabelValues(sec.ID(), "encode_error")
		}
		// Only a queue that may shed drops: a memory queue with
		// drop_newest, or a disk buffer (its own full_action, and dead
		// letters that cannot wait for room).
		if o.FullAction == "drop_newest" || o.UseBuffering {
			m.drops.WithLabelValues(id, "queue_full")
		}
		m.drops.WithLabelValues(id, "overflow_full")
	}
}

func (m *metrics) dropped(plugin, reason string, n int) {
	m.drops.WithLabelValues(plugin, reason).Add(float64(n))
}

func (m *metrics) deadLetter(plugin, reason string) {
	m.deadLetters.WithLabelValues(plugin, reason).Inc()
}

func (m *metrics) pluginError(plugin, kind string) {
	m.errs.WithLabelValues(plugin, kind).Inc()
}

func (m *metrics) queueGauges(plugin string, bytes, msgs func() int) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "tern", Name: "queue_bytes", Help: "Bytes held by a plugin's queue.",
		ConstLabels: prometheus.Labels{"plugin": plugin},
	}, func() float64 { return float64(bytes()) }))
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: "tern", Name: "queue_messages", Help: "Messages waiting in a plugin's queue.",
		ConstLabels: prometheus.Labels{"plugin": plugin},
	}, func() float64 { return float64(msgs()) }))
}

type inputMetrics struct{ records, messages prometheus.Counter }

func (m *metrics) input(id string) *inputMetrics {
	return &inputMetrics{m.inRecords.WithLabelValues(id), m.inMessages.WithLabelValues(id)}
}

type filterMetrics struct{ processed, errors, injected prometheus.Counter }

func (m *metrics) filter(id string) *filterMetrics {
	return &filterMetrics{m.filtered.WithLabelValues(id), m.filterErrs.WithLabelValues(id), m.injected.WithLabelValues(id)}
}

type outputMetrics struct {
	delivered, retries prometheus.Counter
	latency            prometheus.Observer
}

func (m *metrics) output(id string) *outputMetrics {
	return &outputMetrics{m.delivered.WithLabelValues(id), m.retries.WithLabelValues(id), m.latency.WithLabelValues(id)}
}

// telemetry is the pipeline.Telemetry a plugin gets.
type telemetry struct {
	m      *metrics
	plugin string
}

var (
	_ pipeline.Telemetry = telemetry{}
	_ pipeline.Declarer  = telemetry{}
)

func (t telemetry) Drop(reason string, n int) { t.m.dropped(t.plugin, reason, n) }
func (t telemetry) Error(kind string)         { t.m.pluginError(t.plugin, kind) }

func (t telemetry) DeclareDrops(reasons ...string) {
	for _, r := range reasons {
		t.m.drops.WithLabelValues(t.plugin, r)
	}
}

// DeclareDeadLetters: see pipeline.Settings.DeclareDeadLetters.
func (t telemetry) DeclareDeadLetters() {
	t.m.deadLetters.WithLabelValues(t.plugin, "filter_failed")
}

func (t telemetry) DeclareErrors(kinds ...string) {
	for _, k := range kinds {
		t.m.errs.WithLabelValues(t.plugin, k)
	}
}

func (t telemetry) Counter(name, help string, labelNames ...string) func(float64, ...string) {
	v, ok := t.m.vec(name, func() prometheus.Collector {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "tern", Name: name, Help: help}, append([]string{"plugin"}, labelNames...))
	}).(*prometheus.CounterVec)
	if !ok {
		return func(float64, ...string) {}
	}
	cur, err := v.CurryWith(prometheus.Labels{"plugin": t.plugin})
	if err != nil {
		return func(float64, ...string) {}
	}
	if len(labelNames) == 0 {
		c, err := cur.GetMetricWithLabelValues()
		if err != nil {
			return func(float64, ...string) {}
		}
		return func(d float64, _ ...string) { c.Add(d) }
	}
	return func(d float64, lv ...string) {
		if c, err := cur.GetMetricWithLabelValues(lv...); err == nil {
			c.Add(d)
		}
	}
}

func (t telemetry) Gauge(name, help string, labelNames ...string) func(float64, ...string) {
	v, ok := t.m.vec(name, func() prometheus.Collector {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "tern", Name: name, Help: help}, append([]string{"plugin"}, labelNames...))
	}).(*prometheus.GaugeVec)
	if !ok {
		return func(float64, ...string) {}
	}
	cur, err := v.CurryWith(prometheus.Labels{"plugin": t.plugin})
	if err != nil {
		return func(float64, ...string) {}
	}
	return func(val float64, lv ...string) {
		if g, err := cur.GetMetricWithLabelValues(lv...); err == nil {
			g.Set(val)
		}
	}
}

// vec returns the collector registered under name, creating it once; plugins
// of the same type share their series and differ by the plugin label.
func (m *metrics) vec(name string, mk func() prometheus.Collector) prometheus.Collector {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c, ok := m.custom[name]; ok {
		return c
	}
	c := mk()
	if err := m.reg.Register(c); err != nil {
		return nil
	}
	m.custom[name] = c
	return c
}
