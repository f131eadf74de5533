package faults

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"text/template"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ternlog/tern/internal/testutil/oracle"
	"github.com/ternlog/tern/internal/testutil/supervisor"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(cleanupAfter{m}) }

// cleanupAfter removes the built binary once the tests ran (VerifyTestMain
// exits the process itself).
type cleanupAfter struct{ m *testing.M }

func (c cleanupAfter) Run() int {
	defer supervisor.Cleanup()
	return c.m.Run()
}

// seedFor returns the run's seed: TERN_FAULT_SEED, or the clock.
func seedFor(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("TERN_FAULT_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err)
		seed = v
	}
	t.Logf("seed %d (replay with TERN_FAULT_SEED=%d)", seed, seed)
	return seed
}

// output is one [outputs.*] section of the rig's config.
type output struct {
	Name      string
	URL       string
	Buffering bool
	Sync      string // always or interval
	MaxBuffer string // max_buffer_size
	FileSize  string // max_file_size
	QueueMax  string // queue_max_bytes (memory queues)
	Batch     int
	Timeout   string // the HTTP output's request timeout
}

// kafkaInput is a Kafka input section; it replaces the HTTP input.
type kafkaInput struct {
	Brokers        []string
	Topic, Group   string
	CommitInterval string
	SessionTimeout string
}

// rigConfig is what a scenario's tern runs.
type rigConfig struct {
	Dir, DataDir   string
	In, Metrics    string
	Kafka          *kafkaInput // instead of the HTTP input on In, when set
	TCP            string      // a plain TCP input (newline framing) too, when set
	Shutdown       string
	AckTimeout     string
	MaxConnections int
	Outputs        []output
}

var configTmpl = template.Must(template.New("cfg").Parse(`
[tern]
data_dir = "{{.DataDir}}"
metrics_address = "{{.Metrics}}"
shutdown_timeout = "{{.Shutdown}}"
progress_interval = "0s"
log_level = "info"
{{with .Kafka}}
[inputs.kafka]
type = "kafka"
decoder = "payload"
brokers = [{{range $i, $b := .Brokers}}{{if $i}}, {{end}}"{{$b}}"{{end}}]
topics = ["{{.Topic}}"]
group = "{{.Group}}"
initial_offset = "oldest"
commit_interval = "{{.CommitInterval}}"
session_timeout = "{{.SessionTimeout}}"
heartbeat_interval = "100ms"
rebalance_timeout = "10s"
revoke_timeout = "5s"
fetch_max_wait = "50ms"
{{else}}
[inputs.in]
type = "http"
decoder = "payload"
address = "{{.In}}"
insecure_no_auth = true
ack_timeout = "{{.AckTimeout}}"
retry_after = "1s"
max_connections = {{.MaxConnections}}
{{end}}{{if .TCP}}
[inputs.tcp]
type = "tcp"
decoder = "payload"
address = "{{.TCP}}"
{{end}}{{range .Outputs}}
[outputs.{{.Name}}]
type = "http"
message_matcher = "TRUE"
encoder = "payload"
url = "{{.URL}}"
content_type = "text/plain"
timeout = "{{.Timeout}}"
max_retry_after = "1s"
batch_max_count = {{.Batch}}
{{if .QueueMax}}queue_max_bytes = "{{.QueueMax}}"
{{end}}use_buffering = {{.Buffering}}
[outputs.{{.Name}}.retries]
delay = "20ms"
max_delay = "500ms"
max_jitter = "20ms"
{{if .Buffering}}[outputs.{{.Name}}.buffering]
max_buffer_size = "{{.MaxBuffer}}"
max_file_size = "{{.FileSize}}"
sync = "{{.Sync}}"
sync_interval = "200ms"
{{end}}{{end}}
`))

// rig is one scenario's world: an oracle per sink, the sinks, tern.
type rig struct {
	t      *testing.T
	seed   uint64
	gen    *oracle.Generator
	cfg    rigConfig
	run    *supervisor.Runner
	drops  map[string]float64 // summed over the runs scraped before they ended
	starts []time.Duration    // time from start to serving, per start
	env    []string           // added to tern's environment
}

func newRig(t *testing.T, seed uint64, eventSize int) *rig {
	t.Helper()
	dir := t.TempDir()
	in, err := supervisor.FreePort()
	require.NoError(t, err)
	metrics, err := supervisor.FreePort()
	require.NoError(t, err)
	r := &rig{
		t: t, seed: seed, gen: oracle.NewGenerator(seed, eventSize), drops: map[string]float64{},
		cfg: rigConfig{
			Dir: dir, DataDir: filepath.Join(dir, "data"), In: in, Metrics: metrics,
			Shutdown: "10s", AckTimeout: "5s", MaxConnections: 256,
		},
	}
	return r
}

// sink starts an HTTP sink with its own oracle mirrored from src.
func (r *rig) sink(src *oracle.Oracle, seedOff uint64) (*oracle.Sink, *oracle.Oracle) {
	r.t.Helper()
	o := src
	if o == nil {
		o = oracle.New(r.gen)
	} else {
		o = oracle.New(r.gen)
		src.Mirror(o)
	}
	s, err := oracle.NewSink(o, r.seed+seedOff)
	require.NoError(r.t, err)
	r.t.Cleanup(func() { s.Close() })
	return s, o
}

func defaultOutput(name, url string) output {
	return output{Name: name, URL: url, Buffering: true, Sync: "always", MaxBuffer: "512MiB", FileSize: "8MiB", Batch: 500, Timeout: "5s"}
}

// start writes the config and starts tern, waiting until it serves: its
// HTTP input, or with a Kafka input (no port of its own) its metrics
// address.
func (r *rig) start() {
	r.t.Helper()
	if r.run == nil {
		var b bytes.Buffer
		require.NoError(r.t, configTmpl.Execute(&b, r.cfg))
		cfg := filepath.Join(r.cfg.Dir, "tern.toml")
		require.NoError(r.t, os.WriteFile(cfg, b.Bytes(), 0o644))
		r.run = supervisor.NewRunner(supervisor.Build(r.t), cfg, r.cfg.Dir)
		r.run.Env = r.env
		r.t.Cleanup(func() {
			if r.run.Running() {
				r.run.Kill()
			}
			if r.t.Failed() {
				r.t.Logf("tern log tail:\n%s", r.run.Tail(40))
			}
		})
	}
	t0 := time.Now()
	require.NoError(r.t, r.run.Start())
	ready := r.cfg.In
	if r.cfg.Kafka != nil {
		ready = r.cfg.Metrics
	}
	require.NoError(r.t, r.run.WaitPort(ready, 30*time.Second))
	if r.cfg.TCP != "" {
		require.NoError(r.t, r.run.WaitPort(r.cfg.TCP, 30*time.Second))
	}
	r.starts = append(r.starts, time.Since(t0))
}

// scrape adds the running tern's drop counters to the rig's total; call it
// right before the run ends.
func (r *rig) scrape() {
	m, err := oracle.Scrape(context.Background(), r.cfg.Metrics)
	if err != nil {
		return
	}
	for k, v := range m.Drops() {
		r.drops[k] += v
	}
}

// kill scrapes and kills -9.
func (r *rig) kill() {
	r.scrape()
	r.run.Kill()
}

// term scrapes and stops tern with SIGTERM, requiring exit 0 within limit.
func (r *rig) term(limit time.Duration) time.Duration {
	r.t.Helper()
	r.scrape()
	code, took := r.run.Term(limit + 5*time.Second)
	require.Equal(r.t, 0, code, "SIGTERM must exit 0 (took %v)\n%s", took, r.run.Tail(30))
	require.LessOrEqual(r.t, took, limit+2*time.Second, "SIGTERM took too long")
	return took
}

func (r *rig) source(o *oracle.Oracle, batch, workers int) *oracle.Source {
	return &oracle.Source{O: o, URL: "http://" + r.cfg.In + "/", Batch: batch, Workers: workers, Timeout: 30 * time.Second}
}

// waitDelivered waits until every acknowledged event reached each oracle.
func waitDelivered(t *testing.T, limit time.Duration, os ...*oracle.Oracle) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		pending := 0
		for _, o := range os {
			pending += o.Pending()
		}
		if pending == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Logf("still %d acknowledged events undelivered after %v", pending, limit)
			return // the report says which
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// report builds an oracle report with the rig's facts.
func (r *rig) report(o *oracle.Oracle, scenario string) oracle.Report {
	rep := o.Report(scenario)
	rep.Drops = maps.Clone(r.drops)
	if r.run != nil {
		rep.Note("starts=%d kills=%d sigterms=%d", r.run.Starts, r.run.Kills, r.run.Terms)
	}
	if len(r.starts) > 0 {
		worst := time.Duration(0)
		for _, d := range r.starts {
			worst = max(worst, d)
		}
		rep.Note("slowest start to serving %v", worst.Round(time.Millisecond))
	}
	return rep
}

// fdCount is the number of open files of pid.
func fdCount(pid int) int {
	des, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(des)
}

func mib(n int64) string { return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20)) }
