package engine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/engine"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// --- test plugins -------------------------------------------------------

// feed is an input that emits the batches a test pushes into it and reports
// their acks.
type feed struct {
	batches chan feedBatch
}

type feedBatch struct {
	lines []string
	ack   chan error
	lent  *pipeline.ReadBuffer // set: the lines go in it, and it is lent with them
}

type feedConfig struct {
	Name string `toml:"name"`
}

var feeds sync.Map // name -> *feed

func getFeed(name string) *feed {
	f, _ := feeds.LoadOrStore(name, &feed{batches: make(chan feedBatch, 100)})
	return f.(*feed)
}

func (f *feed) Run(ctx context.Context, out pipeline.Emitter) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case b := <-f.batches:
			recs := make([]pipeline.Record, len(b.lines))
			for i, l := range b.lines {
				recs[i] = pipeline.Record{Data: []byte(l), Source: "feed"}
			}
			ack := b.ack
			var once atomic.Int32
			af := func(err error) {
				if once.Add(1) != 1 {
					panic("ack called twice")
				}
				ack <- err
			}
			if ack == nil {
				af = nil // a source that cannot be told (UDP, plain TCP)
			}
			if rb := b.lent; rb != nil {
				n := 0
				for i, l := range b.lines {
					recs[i].Data = rb.B[n : n+copy(rb.B[n:], l)]
					n += len(l)
				}
				if err := out.(pipeline.BufferEmitter).EmitBuffer(ctx, recs, af, rb); err != nil {
					return nil
				}
				continue
			}
			if err := out.Emit(ctx, recs, af); err != nil {
				return nil
			}
		}
	}
}

// send pushes lines and returns the channel their ack arrives on.
func (f *feed) send(lines ...string) chan error {
	ack := make(chan error, 1)
	f.batches <- feedBatch{lines: lines, ack: ack}
	return ack
}

// sendUntold pushes lines with no AckFunc: nobody learns their fate.
func (f *feed) sendUntold(lines ...string) {
	f.batches <- feedBatch{lines: lines}
}

// lineDecoder makes a message of Type from the text before ':' and a payload
// of the rest; "bad…" fails and "panic" panics.
type lineDecoder struct{}

func (lineDecoder) Decode(rec pipeline.Record, b *pipeline.Batch) error {
	s := string(rec.Data)
	if strings.HasPrefix(s, "bad") {
		return errors.New("bad record")
	}
	if s == "panic" {
		panic("decoder exploded")
	}
	typ, _, _ := strings.Cut(s, ":")
	m := b.Add()
	m.Type = typ
	if i := bytes.IndexByte(rec.Data, ':'); i >= 0 {
		m.Payload = b.Str(rec.Data[i+1:]) // a view when the batch was lent the record's buffer
	}
	return nil
}

// sink is an output recording payloads; a test can make it fail or block.
type sink struct {
	mu      sync.Mutex
	got     []string
	types   []string
	fail    func(batch []pipeline.Encoded) error
	gate    chan struct{} // when set, Write waits for it
	written chan struct{}
}

type sinkConfig struct {
	Name string `toml:"name"`
}

var sinks sync.Map

func getSink(name string) *sink {
	s, _ := sinks.LoadOrStore(name, &sink{written: make(chan struct{}, 1000)})
	return s.(*sink)
}

func (s *sink) Write(ctx context.Context, batch []pipeline.Encoded) error {
	s.mu.Lock()
	gate, fail := s.gate, s.fail
	s.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if fail != nil {
		if err := fail(batch); err != nil {
			var pe *pipeline.PartialError
			if errors.As(err, &pe) {
				s.mu.Lock()
				for i, e := range pe.Errs {
					if e == nil {
						s.got = append(s.got, string(batch[i].Data))
						s.types = append(s.types, batch[i].Msg.Type)
					}
				}
				s.mu.Unlock()
			}
			return err
		}
	}
	s.mu.Lock()
	for _, e := range batch {
		s.got = append(s.got, string(e.Data))
		s.types = append(s.types, e.Msg.Type)
	}
	s.mu.Unlock()
	select {
	case s.written <- struct{}{}:
	default:
	}
	return nil
}

func (s *sink) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

func (s *sink) waitFor(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if l := s.lines(); len(l) >= n {
			return l
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("sink got %d records, want %d: %q", len(s.lines()), n, s.lines())
	return nil
}

type payloadEnc struct{}

func (payloadEnc) Encode(dst []byte, m *pipeline.Message) ([]byte, error) {
	switch m.Payload {
	case "unencodable":
		return dst, errors.New("cannot encode")
	case "encoder-panic":
		panic("encoder exploded")
	}
	return append(dst, m.Payload...), nil
}

// echo is a filter that injects "echo:<payload>" for every message, and on
// Tick injects "tick:".
type echo struct{ ticks atomic.Int32 }

type echoConfig struct{}

func (f *echo) Process(_ context.Context, m *pipeline.Message, out pipeline.Injector) error {
	if m.Payload == "filter-panic" {
		panic("filter exploded")
	}
	n := pipeline.NewMessage()
	n.Type = "echo"
	n.Payload = "echo:" + m.Payload
	return out.Inject(n)
}

func (f *echo) Tick(_ context.Context, _ time.Time, out pipeline.Injector) error {
	f.ticks.Add(1)
	n := pipeline.NewMessage()
	n.Type = "tick"
	n.Payload = "tick"
	return out.Inject(n)
}

func registry() *pipeline.Registry {
	return &pipeline.Registry{
		Inputs: []pipeline.Factory[pipeline.Input]{pipeline.NewFactory("feed", "", func() feedConfig { return feedConfig{} },
			func(_ pipeline.Settings, c feedConfig) (pipeline.Input, error) { return getFeed(c.Name), nil })},
		Decoders: []pipeline.Factory[pipeline.Decoder]{pipeline.NewFactory("line", "", func() struct{} { return struct{}{} },
			func(pipeline.Settings, struct{}) (pipeline.Decoder, error) { return lineDecoder{}, nil })},
		Filters: []pipeline.Factory[pipeline.Filter]{pipeline.NewFactory("echo", "", func() echoConfig { return echoConfig{} },
			func(pipeline.Settings, echoConfig) (pipeline.Filter, error) { return &echo{}, nil })},
		Encoders: []pipeline.Factory[pipeline.Encoder]{pipeline.NewFactory("payload", "", func() struct{} { return struct{}{} },
			func(pipeline.Settings, struct{}) (pipeline.Encoder, error) { return payloadEnc{}, nil })},
		Outputs: []pipeline.Factory[pipeline.Output]{pipeline.NewFactory("sink", "", func() sinkConfig { return sinkConfig{} },
			func(_ pipeline.Settings, c sinkConfig) (pipeline.Output, error) { return getSink(c.Name), nil }).WithDefaultEncoder("payload")},
	}
}

var seq atomic.Int64

// start runs an engine for cfg (names are made unique per test) and returns
// a stop function that cancels it and waits for Run to return.
func start(t *testing.T, cfg string) (names func(string) string, stop func()) {
	t.Helper()
	return startWith(t, registry(), cfg)
}

func startWith(t *testing.T, reg *pipeline.Registry, cfg string) (names func(string) string, stop func()) {
	t.Helper()
	id := fmt.Sprintf("t%d", seq.Add(1))
	names = func(s string) string { return id + "-" + s }
	cfg = strings.ReplaceAll(cfg, "@", id+"-")
	dir := t.TempDir()
	cfg = "[tern]\nmetrics_address = \"\"\nprogress_interval = \"0s\"\nshutdown_timeout = \"3s\"\ndata_dir = " +
		fmt.Sprintf("%q", dir) + "\n" + cfg
	plan, err := config.Parse(filepath.Join(dir, "t.toml"), []byte(cfg), reg, config.Options{})
	require.NoError(t, err)
	e, err := engine.New(plan, reg, engine.Options{})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(15 * time.Second):
				t.Fatal("engine did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return names, stop
}

func waitAck(t *testing.T, ack chan error) error {
	t.Helper()
	select {
	case err := <-ack:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("no ack")
		return nil
	}
}

func noAck(t *testing.T, ack chan error, d time.Duration) {
	t.Helper()
	select {
	case err := <-ack:
		t.Fatalf("unexpected ack %v", err)
	case <-time.After(d):
	}
}
