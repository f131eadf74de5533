package engine_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/engine"
)

// spray injects count messages of Type "spray" with a payload of size bytes
// for every message it processes.
type spray struct{ count, size int }

func (s spray) Process(_ context.Context, m *pipeline.Message, out pipeline.Injector) error {
	for range s.count {
		n := pipeline.NewMessage()
		n.Type = "spray"
		n.Payload = strings.Repeat("s", s.size)
		if err := out.Inject(n); err != nil {
			return err
		}
	}
	return nil
}

// stall processes nothing until its gate opens, then counts.
type stall struct {
	gate chan struct{}
	mu   sync.Mutex
	n    int
}

func (s *stall) Process(ctx context.Context, _ *pipeline.Message, _ pipeline.Injector) error {
	select {
	case <-s.gate:
	case <-ctx.Done():
	}
	s.mu.Lock()
	s.n++
	s.mu.Unlock()
	return nil
}

func (s *stall) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// Injected messages cannot make a filter queue grow without bound: they
// take the queue's room, then an overflow allowance as large again (so an
// injecting filter never waits on another filter), and past that they are
// dropped and counted. The source is still acknowledged: nothing waits.
func TestInjectOverflowIsCappedAndCounted(t *testing.T) {
	st := &stall{gate: make(chan struct{})}
	reg := registry()
	reg.Filters = append(reg.Filters,
		pipeline.NewFactory("spray", "", func() struct{} { return struct{}{} },
			func(pipeline.Settings, struct{}) (pipeline.Filter, error) { return spray{count: 1000, size: 1024}, nil }),
		pipeline.NewFactory("stall", "", func() struct{} { return struct{}{} },
			func(pipeline.Settings, struct{}) (pipeline.Filter, error) { return st, nil }))
	r := runEngine(t, reg, `
[inputs.in]
type = "feed"
name = "@in"
decoder = "line"
[filters.spray]
type = "spray"
message_matcher = "Type == 'x'"
[filters.stall]
type = "stall"
message_matcher = "Type == 'spray'"
queue_max_bytes = "64KiB"
`, "300ms")
	ack := getFeed(r.names("in")).send("x:go")
	// The injections share the ack, so it waits for stall; spray itself
	// did not wait: it processed its message and injected all 1000.
	injected := map[string]string{"plugin": "filters.spray"}
	for deadline := time.Now().Add(10 * time.Second); r.metric(t, "tern_filter_injected_total", injected) < 1000; {
		require.True(t, time.Now().Before(deadline), "spray waited on a full filter queue")
		time.Sleep(5 * time.Millisecond)
	}
	queued := r.metric(t, "tern_queue_bytes", map[string]string{"plugin": "filters.stall"})
	assert.LessOrEqual(t, queued, float64(2*64<<10+4<<10), "queue plus overflow allowance, and one message")
	dropped := r.metric(t, "tern_dropped_total", map[string]string{"plugin": "filters.stall", "reason": "overflow_full"})
	assert.Greater(t, dropped, 0.0)
	close(st.gate)
	deadline := time.Now().Add(10 * time.Second)
	for st.count()+int(dropped) < 1000 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	assert.Equal(t, 1000, st.count()+int(dropped), "every injected message processed or counted")
	require.NoError(t, waitAck(t, ack))
}

// Two filters that feed each other through small queues never wait on one
// another: a burst that loops between them ends (max_message_loops), the
// source is acknowledged, and what did not fit is counted.
func TestFiltersFeedingEachOtherDoNotDeadlock(t *testing.T) {
	reg := registry()
	reg.Filters = append(reg.Filters, pipeline.NewFactory("spray", "", func() struct{} { return struct{}{} },
		func(pipeline.Settings, struct{}) (pipeline.Filter, error) { return spray{count: 20, size: 512}, nil }))
	r := runEngine(t, reg, `
[inputs.in]
type = "feed"
name = "@in"
decoder = "line"
[filters.one]
type = "spray"
message_matcher = "TRUE"
queue_max_bytes = "16KiB"
[filters.two]
type = "spray"
message_matcher = "TRUE"
queue_max_bytes = "16KiB"
`, "300ms")
	in := getFeed(r.names("in"))
	var acks []chan error
	for range 5 {
		acks = append(acks, in.send("x:seed"))
	}
	for _, a := range acks {
		require.NoError(t, waitAck(t, a))
	}
	assert.Greater(t, r.metric(t, "tern_dropped_total", map[string]string{"reason": "overflow_full"}), 0.0)
}

// giveUp turns every message it processes into a dead letter, as a Lua
// filter with failure_policy = "deadletter" does, and declares the count.
type giveUp struct{}

func (giveUp) Process(_ context.Context, m *pipeline.Message, out pipeline.Injector) error {
	d := pipeline.NewMessage()
	d.Type = engine.DeadLetterType
	d.Payload = m.Payload
	return out.Inject(d)
}

// A filter's dead letters are counted in tern_dead_letters_total (reason
// filter_failed); cmd/tern's TestMetricsFromZero sees the Lua filter's
// declaration.
func TestFilterDeadLettersAreCounted(t *testing.T) {
	reg := registry()
	reg.Filters = append(reg.Filters, pipeline.NewFactory("giveup", "", func() struct{} { return struct{}{} },
		func(set pipeline.Settings, _ struct{}) (pipeline.Filter, error) {
			set.DeclareDeadLetters()
			return giveUp{}, nil
		}))
	r := runEngine(t, reg, `
[inputs.in]
type = "feed"
name = "@in"
decoder = "line"
[filters.giveup]
type = "giveup"
message_matcher = "Type == 'x'"
`, "300ms")
	labels := map[string]string{"plugin": "filters.giveup", "reason": "filter_failed"}
	in := getFeed(r.names("in"))
	for range 3 {
		require.NoError(t, waitAck(t, in.send("x:bad")))
	}
	assert.Equal(t, 3.0, r.metric(t, "tern_dead_letters_total", labels))
}
