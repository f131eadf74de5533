package e2e

import (
	"context"
	"fmt"
	"github.com/prometheus/client_golang/prometheus"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ternlog/tern/decoders"
	"github.com/ternlog/tern/encoders"
	"github.com/ternlog/tern/filters"
	"github.com/ternlog/tern/inputs"
	"github.com/ternlog/tern/outputs"
	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/engine"
)

// sarama starts one global go-metrics ticker for the process.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"))
}

// registry is the binary's plugins plus the test sink.
func registry() *pipeline.Registry {
	outs := append(outputs.Factories(), pipeline.NewFactory("sink", "", func() sinkConfig { return sinkConfig{} },
		func(_ pipeline.Settings, c sinkConfig) (pipeline.Output, error) { return getSink(c.Name), nil }).WithDefaultEncoder("payload"))
	return &pipeline.Registry{
		Inputs: inputs.Factories(), Decoders: decoders.Factories(), Filters: filters.Factories(),
		Encoders: encoders.Factories(), Outputs: outs,
	}
}

// running is an engine started by startEngine.
type running struct {
	stop    func() // cancel and wait for Run (graceful stop)
	metrics *prometheus.Registry
}

// counter sums a tern counter family over its series.
func (r *running) counter(name string) float64 {
	mfs, _ := r.metrics.Gather()
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

// startEngine runs an engine for cfg (a plugins.toml body; the [tern]
// section is added) until stop or the end of the test.
func startEngine(t testing.TB, cfg string, shutdown time.Duration) *running {
	t.Helper()
	dir := t.TempDir()
	src := fmt.Sprintf("[tern]\nmetrics_address = \"\"\nprogress_interval = \"0s\"\nshutdown_timeout = %q\ndata_dir = %q\n%s",
		shutdown.String(), dir, cfg)
	reg := registry()
	plan, err := config.Parse(filepath.Join(dir, "tern.toml"), []byte(src), reg, config.Options{})
	require.NoError(t, err)
	metrics := prometheus.NewRegistry()
	e, err := engine.New(plan, reg, engine.Options{Metrics: metrics})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	var once sync.Once
	r := &running{metrics: metrics, stop: func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("engine: %v", err)
				}
			case <-time.After(shutdown + 30*time.Second):
				t.Error("engine did not stop")
			}
		})
	}}
	t.Cleanup(r.stop)
	return r
}

// freeAddr returns a loopback address that was free a moment ago (for
// listeners that must come back on the same port after a restart).
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// quote renders a TOML array of strings.
func quote(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// event is the 300-byte payload of sequence number n.
func event(n int) []byte {
	b := fmt.Appendf(nil, "seq=%09d ", n)
	for len(b) < 300 {
		b = append(b, 'x')
	}
	return b
}

// seqOf parses the sequence number of an event, -1 when it is not one.
func seqOf(b []byte) int {
	var n int
	if _, err := fmt.Sscanf(string(b), "seq=%09d ", &n); err != nil {
		return -1
	}
	return n
}

// tally counts deliveries per sequence number.
type tally struct {
	mu   sync.Mutex
	seen map[int]int
}

func (t *tally) add(n int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.seen == nil {
		t.seen = map[int]int{}
	}
	t.seen[n]++
}

// report returns how many of 0..n-1 are missing, the duplicates, and
// sequence numbers outside 0..n-1.
func (t *tally) report(n int) (missing, dups, spurious int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range n {
		switch c := t.seen[i]; {
		case c == 0:
			missing++
		case c > 1:
			dups += c - 1
		}
	}
	for k := range t.seen {
		if k < 0 || k >= n {
			spurious++
		}
	}
	return
}

func (t *tally) unique() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.seen)
}

// sink is a test output: it records what it delivers (sequence numbers,
// Kafka partition and offset of the source record, delivery time) and can
// fail a share of its writes.
type sink struct {
	mu       sync.Mutex
	got      tally
	offsets  map[[2]int64]time.Time // (partition, offset) -> first delivery
	hops     map[string]int         // the kafka.topic fields of a message, joined by ">"
	failEach int                    // fail every n-th Write (0: never)
	delay    time.Duration          // each Write takes this long
	writes   int
}

type sinkConfig struct {
	Name string `toml:"name"`
}

var sinks sync.Map

func getSink(name string) *sink {
	s, _ := sinks.LoadOrStore(name, &sink{offsets: map[[2]int64]time.Time{}, hops: map[string]int{}})
	return s.(*sink)
}

func (s *sink) Write(_ context.Context, batch []pipeline.Encoded) error {
	s.mu.Lock()
	s.writes++
	fail := s.failEach > 0 && s.writes%s.failEach == 0
	delay := s.delay
	s.mu.Unlock()
	time.Sleep(delay)
	if fail {
		return fmt.Errorf("sink: induced failure")
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range batch {
		s.got.add(seqOf(e.Data))
		var hops []string
		for i := range e.Msg.Fields {
			if f := &e.Msg.Fields[i]; f.Name == "kafka.topic" && f.Len() > 0 {
				hops = append(hops, f.Value(0).Str())
			}
		}
		s.hops[strings.Join(hops, ">")]++
		p, okp := e.Msg.FieldInt("kafka.partition")
		o, oko := e.Msg.FieldInt("kafka.offset")
		if okp && oko {
			k := [2]int64{p, o}
			if _, ok := s.offsets[k]; !ok {
				s.offsets[k] = now
			}
		}
	}
	return nil
}

// waitUntil polls cond until it holds or timeout passes.
func waitUntil(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
