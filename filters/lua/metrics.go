package lua

import (
	"time"

	"github.com/ternlog/tern/internal/keyed"
	"github.com/ternlog/tern/internal/sandbox"
	"github.com/ternlog/tern/pipeline"
)

// stateMetrics exports the Go-backed state of the script (windows,
// throttles, top-N, LRU tables) per state: tern_lua_state_keys and
// tern_lua_state_bytes (gauges), tern_lua_state_evictions_total,
// tern_lua_state_expirations_total and tern_lua_state_rejected_total, with
// labels kind and name. The filter exports them from its own goroutine at
// most once a second (looking at the clock every 1,024 calls), on every
// tick and at the end.
type stateMetrics struct {
	keys, bytes                     func(float64, ...string)
	evictions, expirations, rejects func(float64, ...string)
	last                            map[[2]string]keyed.Stats
	at                              time.Time
	calls                           uint // since the filter started: exports are checked every 1024
}

func newStateMetrics(t pipeline.Telemetry) stateMetrics {
	if t == nil {
		return stateMetrics{}
	}
	return stateMetrics{
		keys:        t.Gauge("lua_state_keys", "Keys held by a Go-backed state of the Lua script.", "kind", "name"),
		bytes:       t.Gauge("lua_state_bytes", "Estimated bytes held by a Go-backed state of the Lua script.", "kind", "name"),
		evictions:   t.Counter("lua_state_evictions_total", "Keys a Go-backed state evicted to stay within its caps.", "kind", "name"),
		expirations: t.Counter("lua_state_expirations_total", "Keys whose time ran out in a Go-backed state.", "kind", "name"),
		rejects:     t.Counter("lua_state_rejected_total", "Keys or values a Go-backed state refused for their length.", "kind", "name"),
		last:        map[[2]string]keyed.Stats{},
	}
}

func (m *stateMetrics) export(sb *sandbox.Sandbox, now time.Time) {
	m.at = now
	if m.keys == nil {
		return
	}
	for _, st := range sb.States() {
		id := [2]string{st.Kind, st.Name}
		prev := m.last[id]
		m.keys(float64(st.Keys), st.Kind, st.Name)
		m.bytes(float64(st.Bytes), st.Kind, st.Name)
		m.evictions(delta(st.Evictions, prev.Evictions), st.Kind, st.Name)
		m.expirations(delta(st.Expirations, prev.Expirations), st.Kind, st.Name)
		m.rejects(delta(st.Rejected, prev.Rejected), st.Kind, st.Name)
		m.last[id] = st.Stats
	}
}

// delta is what a counter grew by since the last export; a state rebuilt
// with the Lua State starts from zero again.
func delta(cur, prev uint64) float64 {
	if cur < prev {
		return float64(cur)
	}
	return float64(cur - prev)
}
