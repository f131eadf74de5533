package engine

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"

	dto "github.com/prometheus/client_model/go"
)

// Stats is what GET /api/stats answers: the engine's counters shaped for
// the dashboard, read from the same registry as /metrics. Counters are
// totals since the engine started; a reader computes rates from two
// snapshots (Now is the snapshot's time).
type Stats struct {
	Now      int64         `json:"now"`     // Unix milliseconds
	Started  int64         `json:"started"` // Unix milliseconds
	Hostname string        `json:"hostname"`
	Plugins  []PluginStats `json:"plugins"`
	// Drops (tern_dropped_total) and DeadLetters (tern_dead_letters_total)
	// by plugin and reason, non-zero ones only.
	Drops       []ReasonCount `json:"drops"`
	DeadLetters []ReasonCount `json:"dead_letters"`
	// Lua lists every Lua script (decoders and filters) with its health.
	Lua  []LuaStats `json:"lua"`
	Taps int        `json:"taps"` // taps open now
}

// PluginStats is one input, filter or output.
type PluginStats struct {
	ID    string `json:"id"`
	Kind  string `json:"kind"` // input, filter, output
	State string `json:"state"`
	Error string `json:"error,omitempty"`
	// Count is the plugin's throughput counter: records read (inputs),
	// messages processed (filters), messages delivered (outputs).
	Count float64 `json:"count"`
	// Counters: records, messages (inputs); processed, injected, errors
	// (filters); delivered, retries (outputs); plugin_errors (all).
	Counters map[string]float64 `json:"counters"`
	// The queue of a filter or output, and its bound (queue_max_bytes, or
	// the disk buffer's max_buffer_size).
	QueueBytes    float64 `json:"queue_bytes"`
	QueueMessages float64 `json:"queue_messages"`
	QueueMaxBytes int64   `json:"queue_max_bytes,omitempty"`
}

// ReasonCount is one series of a counter labelled by plugin and reason.
type ReasonCount struct {
	Plugin string  `json:"plugin"`
	Reason string  `json:"reason"`
	Count  float64 `json:"count"`
}

// LuaStats is a Lua script's health (tern_lua_failures_total, tern_lua_disabled).
type LuaStats struct {
	Plugin   string             `json:"plugin"`
	Failures float64            `json:"failures"`
	ByKind   map[string]float64 `json:"by_kind"`
	Disabled bool               `json:"disabled"`
}

// Stats snapshots the counters.
func (e *Engine) Stats() Stats {
	s := Stats{Now: e.now().UnixMilli(), Hostname: e.hostname, Drops: []ReasonCount{}, DeadLetters: []ReasonCount{}, Lua: []LuaStats{}}
	s.Started = e.started.Load()
	byID := map[string]*PluginStats{}
	add := func(id, kind string, qmax int64) {
		var st, msg string
		if ps := e.states[id]; ps != nil {
			st, msg, _ = ps.get()
		}
		s.Plugins = append(s.Plugins, PluginStats{ID: id, Kind: kind, State: st, Error: msg, Counters: map[string]float64{}, QueueMaxBytes: qmax})
	}
	for _, in := range e.inputs {
		add(in.id, "input", 0)
	}
	for _, f := range e.filters {
		var qmax int64
		if sec := findFilter(e.plan, f.id); sec != nil {
			qmax = int64(sec.QueueMaxBytes)
		}
		add(f.id, "filter", qmax)
	}
	for _, o := range e.outputs {
		qmax := int64(o.cfg.QueueMaxBytes)
		if o.cfg.UseBuffering {
			qmax = int64(o.cfg.Buffering.MaxBufferSize)
		}
		add(o.id, "output", qmax)
	}
	for i := range s.Plugins {
		byID[s.Plugins[i].ID] = &s.Plugins[i]
	}
	lua := map[string]*LuaStats{}
	luaOf := func(id string) *LuaStats {
		if l := lua[id]; l != nil {
			return l
		}
		l := &LuaStats{Plugin: id, ByKind: map[string]float64{}}
		lua[id] = l
		return l
	}
	// Which counter of which family feeds Count and Counters.
	type target struct {
		key   string
		count bool
	}
	counters := map[string]target{
		"tern_input_records_total":   {"records", true},
		"tern_input_messages_total":  {"messages", false},
		"tern_filter_messages_total": {"processed", true},
		"tern_filter_injected_total": {"injected", false},
		"tern_filter_errors_total":   {"errors", false},
		"tern_output_messages_total": {"delivered", true},
		"tern_output_retries_total":  {"retries", false},
		"tern_plugin_errors_total":   {"plugin_errors", false},
		"tern_queue_bytes":           {"", false},
		"tern_queue_messages":        {"", false},
		"tern_dropped_total":         {"", false},
		"tern_dead_letters_total":    {"", false},
		"tern_lua_failures_total":    {"", false},
		"tern_lua_disabled":          {"", false},
	}
	mfs, _ := e.metrics.reg.Gather()
	for _, mf := range mfs {
		name := mf.GetName()
		tg, ok := counters[name]
		if !ok {
			continue
		}
		for _, m := range mf.GetMetric() {
			v := value(m)
			plugin := label(m, "plugin")
			switch name {
			case "tern_queue_bytes":
				if p := byID[plugin]; p != nil {
					p.QueueBytes = v
				}
			case "tern_queue_messages":
				if p := byID[plugin]; p != nil {
					p.QueueMessages = v
				}
			case "tern_dropped_total":
				if v > 0 {
					s.Drops = append(s.Drops, ReasonCount{plugin, label(m, "reason"), v})
				}
			case "tern_dead_letters_total":
				if v > 0 {
					s.DeadLetters = append(s.DeadLetters, ReasonCount{plugin, label(m, "reason"), v})
				}
			case "tern_lua_failures_total":
				l := luaOf(plugin)
				l.Failures += v
				l.ByKind[label(m, "kind")] += v
			case "tern_lua_disabled":
				luaOf(plugin).Disabled = v != 0
			default:
				if p := byID[plugin]; p != nil {
					p.Counters[tg.key] += v
					if tg.count {
						p.Count += v
					}
				}
			}
		}
	}
	for _, l := range lua {
		s.Lua = append(s.Lua, *l)
	}
	sort.Slice(s.Lua, func(i, j int) bool { return s.Lua[i].Plugin < s.Lua[j].Plugin })
	byReason := func(rs []ReasonCount) func(i, j int) bool {
		return func(i, j int) bool {
			if c := strings.Compare(rs[i].Plugin, rs[j].Plugin); c != 0 {
				return c < 0
			}
			return rs[i].Reason < rs[j].Reason
		}
	}
	sort.Slice(s.Drops, byReason(s.Drops))
	sort.Slice(s.DeadLetters, byReason(s.DeadLetters))
	e.tapMu.Lock()
	s.Taps = len(e.tapList)
	e.tapMu.Unlock()
	return s
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	return 0
}

func label(m *dto.Metric, name string) string {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}

func (e *Engine) serveStats(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(e.Stats())
}
