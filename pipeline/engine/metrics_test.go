package engine_test

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/engine"
)

// series lists every sample of reg as name{label="value",…}=value.
func series(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(labels)
			key := mf.GetName() + "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.Counter != nil:
				out[key] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[key] = m.Gauge.GetValue()
			case m.Histogram != nil:
				out[key] = float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return out
}

// Every counter the engine keeps for a plugin exists at zero once the
// engine is built, before any traffic, as do the drops and errors a plugin
// declares; counters that cannot apply (queue_full on a blocking queue) do
// not appear.
func TestCountersExistFromZero(t *testing.T) {
	reg := registry()
	reg.Inputs = append(reg.Inputs, pipeline.NewFactory("declaring", "", func() feedConfig { return feedConfig{} },
		func(s pipeline.Settings, c feedConfig) (pipeline.Input, error) {
			s.DeclareDrops("oversize")
			s.DeclareErrors("accept", "tls_handshake")
			return getFeed(c.Name), nil
		}))
	dir := t.TempDir()
	cfg := fmt.Sprintf(`[tern]
metrics_address = ""
data_dir = %q
[decoders.first]
type = "line"
[decoders.second]
type = "line"
[inputs.in]
type = "declaring"
name = "zero-in"
decoder = "first"
[inputs.other]
type = "feed"
name = "zero-other"
decoder = "second"
[filters.echo]
type = "echo"
message_matcher = "TRUE"
[encoders.enc]
type = "payload"
[outputs.shed]
type = "sink"
name = "zero-shed"
message_matcher = "TRUE"
encoder = "enc"
full_action = "drop_newest"
[outputs.wait]
type = "sink"
name = "zero-wait"
message_matcher = "TRUE"
`, dir)
	plan, err := config.Parse(filepath.Join(dir, "t.toml"), []byte(cfg), reg, config.Options{})
	require.NoError(t, err)
	prom := prometheus.NewRegistry()
	_, err = engine.New(plan, reg, engine.Options{Metrics: prom})
	require.NoError(t, err)
	got := series(t, prom)
	for _, want := range []string{
		`tern_input_records_total{plugin="inputs.in"}`,
		`tern_input_messages_total{plugin="inputs.other"}`,
		`tern_dropped_total{plugin="inputs.in",reason="no_match"}`,
		`tern_plugin_errors_total{plugin="inputs.other",kind="restart"}`,
		`tern_dead_letters_total{plugin="decoders.first",reason="decode_error"}`,
		`tern_dead_letters_total{plugin="decoders.second",reason="decode_error"}`,
		`tern_filter_messages_total{plugin="filters.echo"}`,
		`tern_filter_errors_total{plugin="filters.echo"}`,
		`tern_filter_injected_total{plugin="filters.echo"}`,
		`tern_dropped_total{plugin="filters.echo",reason="loop"}`,
		`tern_dropped_total{plugin="filters.echo",reason="no_match"}`,
		`tern_output_messages_total{plugin="outputs.wait"}`,
		`tern_output_retries_total{plugin="outputs.shed"}`,
		`tern_output_write_seconds{plugin="outputs.shed"}`,
		`tern_dead_letters_total{plugin="outputs.shed",reason="output_rejected"}`,
		`tern_dead_letters_total{plugin="encoders.enc",reason="encode_error"}`,
		`tern_dead_letters_total{plugin="encoders.payload",reason="encode_error"}`,
		`tern_dropped_total{plugin="outputs.shed",reason="queue_full"}`,
		`tern_dropped_total{plugin="engine",reason="deadletter_lost"}`,
		// declared by the plugin
		`tern_dropped_total{plugin="inputs.in",reason="oversize"}`,
		`tern_plugin_errors_total{plugin="inputs.in",kind="accept"}`,
		`tern_plugin_errors_total{plugin="inputs.in",kind="tls_handshake"}`,
	} {
		v, ok := got[canon(want)]
		if assert.True(t, ok, "missing %s", want) {
			assert.Zero(t, v, want)
		}
	}
	assert.NotContains(t, got, canon(`tern_dropped_total{plugin="outputs.wait",reason="queue_full"}`), "a blocking queue never drops")
	assert.NotContains(t, got, canon(`tern_dropped_total{plugin="inputs.other",reason="oversize"}`), "declared by another plugin only")
}

// canon sorts the labels of name{a="x",b="y"} as series does.
func canon(s string) string {
	name, rest, _ := strings.Cut(s, "{")
	labels := strings.Split(strings.TrimSuffix(rest, "}"), ",")
	sort.Strings(labels)
	return name + "{" + strings.Join(labels, ",") + "}"
}
