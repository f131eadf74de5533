package engine_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ternlog/tern/pipeline"
)

const twoOutputs = `
[inputs.in]
type = "feed"
name = "@in"
decoder = "line"

[outputs.a]
type = "sink"
name = "@a"
message_matcher = "Type == 'auth'"

[outputs.b]
type = "sink"
name = "@b"
message_matcher = "Type == 'auth' || Type == 'web'"
`

func TestRoutingAndAck(t *testing.T) {
	n, _ := start(t, twoOutputs)
	ack := getFeed(n("in")).send("auth:login", "web:get", "other:x")
	require.NoError(t, waitAck(t, ack))
	assert.Equal(t, []string{"login"}, getSink(n("a")).lines())
	assert.Equal(t, []string{"login", "get"}, getSink(n("b")).lines())
}

// The ack waits for every output that matched: a blocked output holds it.
func TestAckWaitsForEveryMatchingOutput(t *testing.T) {
	n, _ := start(t, twoOutputs)
	b := getSink(n("b"))
	gate := make(chan struct{})
	b.mu.Lock()
	b.gate = gate
	b.mu.Unlock()
	ack := getFeed(n("in")).send("auth:login")
	getSink(n("a")).waitFor(t, 1)
	noAck(t, ack, 100*time.Millisecond)
	close(gate)
	require.NoError(t, waitAck(t, ack))
}

// Transient errors are retried until they pass; the ack comes after.
func TestRetryUntilDelivered(t *testing.T) {
	n, _ := start(t, `
[inputs.in]
type = "feed"
name = "@in"
decoder = "line"
[outputs.a]
type = "sink"
name = "@a"
message_matcher = "TRUE"
[outputs.a.retries]
delay = "1ms"
max_delay = "5ms"
max_jitter = "1ms"
`)
	a := getSink(n("a"))
	fails := 3
	a.fail = func([]pipeline.Encoded) error {
		if fails > 0 {
			fails--
			return errors.New("broker away")
		}
		return nil
	}
	ack := getFeed(n("in")).send("x:1", "x:2")
	require.NoError(t, waitAck(t, ack))
	assert.Equal(t, []string{"1", "2"}, a.lines())
	assert.Equal(t, 0, fails)
}

const withDeadLetters = `
[inputs.in]
type = "feed"
name = "@in"
decoder = "line"
[outputs.a]
type = "sink"
name = "@a"
message_matcher = "Type != 'tern.deadletter'"
[outputs.a.retries]
delay = "1ms"
[outputs.dlq]
type = "sink"
name = "@dlq"
message_matcher = "Type == 'tern.deadletter'"
`

// Undecodable records keep their bytes on the dead-letter route, and the
// batch is still acknowledged once the dead letter is delivered.
func TestDecodeErrorsBecomeDeadLetters(t *testing.T) {
	n, _ := start(t, withDeadLetters)
	ack := getFeed(n("in")).send("x:ok", "bad", "panic", "x:also ok")
	require.NoError(t, waitAck(t, ack))
	assert.Equal(t, []string{"ok", "also ok"}, getSink(n("a")).lines())
	assert.Equal(t, []string{"bad", "panic"}, getSink(n("dlq")).lines())
}

// A message the encoder refuses or panics on becomes a dead letter; the
// messages around it are delivered, in order, and the batch is acknowledged.
func TestEncodeErrorsBecomeDeadLetters(t *testing.T) {
	n, _ := start(t, withDeadLetters)
	ack := getFeed(n("in")).send("x:ok", "x:unencodable", "x:encoder-panic", "x:after", "x:encoder-panic")
	require.NoError(t, waitAck(t, ack))
	assert.Equal(t, []string{"ok", "after"}, getSink(n("a")).lines())
	// An encoder's dead letter carries the message itself, as canonical JSON.
	dead := getSink(n("dlq")).lines()
	require.Len(t, dead, 3)
	for i, want := range []string{"unencodable", "encoder-panic", "encoder-panic"} {
		assert.Contains(t, dead[i], `"payload":"`+want+`"`)
	}
}

// Permanent output failures, whole or per record, go to the dead-letter
// route with the encoded bytes; retriable ones in a partial failure are retried.
func TestPermanentAndPartialFailures(t *testing.T) {
	n, _ := start(t, withDeadLetters)
	a := getSink(n("a"))
	first := true
	a.fail = func(batch []pipeline.Encoded) error {
		if !first {
			return nil
		}
		first = false
		errs := make([]error, len(batch))
		for i, e := range batch {
			switch string(e.Data) {
			case "too-big":
				errs[i] = pipeline.Permanent(errors.New("record too large"))
			case "flaky":
				errs[i] = errors.New("timeout")
			}
		}
		return &pipeline.PartialError{Errs: errs}
	}
	ack := getFeed(n("in")).send("x:1", "x:too-big", "x:flaky", "x:unencodable", "x:2")
	require.NoError(t, waitAck(t, ack))
	got := a.lines()
	sort.Strings(got)
	assert.Equal(t, []string{"1", "2", "flaky"}, got)
	dl := getSink(n("dlq")).waitFor(t, 2)
	sort.Strings(dl)
	assert.Equal(t, "too-big", dl[0])
	assert.Equal(t, `{"uuid"`, dl[1][:7], "an unencodable message is kept as canonical JSON")
}

// One stuck output does not stall the others until its own queue is full.
func TestOutputIsolation(t *testing.T) {
	n, _ := start(t, `
[inputs.in]
type = "feed"
name = "@in"
decoder = "line"
[outputs.fast]
type = "sink"
name = "@fast"
message_matcher = "TRUE"
[outputs.stuck]
type = "sink"
name = "@stuck"
message_matcher = "TRUE"
queue_max_bytes = "64KiB"
`)
	stuck := getSink(n("stuck"))
	gate := make(chan struct{})
	stuck.gate = gate
	in := getFeed(n("in"))
	var acks []chan error
	for i := 0; i < 50; i++ {
		acks = append(acks, in.send("x:"+strings.Repeat("y", 100)))
	}
	getSink(n("fast")).waitFor(t, 50)
	close(gate)
	for _, a := range acks {
		require.NoError(t, waitAck(t, a))
	}
	stuck.waitFor(t, 50)
}

// A full queue with drop_newest sheds messages (counted) instead of blocking.
func TestDropNewest(t *testing.T) {
	n, _ := start(t, `
[inputs.in]
type = "feed"
name = "@in"
decoder = "line"
[outputs.slow]
type = "sink"
name = "@slow"
message_matcher = "TRUE"
queue_max_bytes = "1KiB"
full_action = "drop_newest"
`)
	slow := getSink(n("slow"))
	gate := make(chan struct{})
	slow.gate = gate
	in := getFeed(n("in"))
	var acks []chan error
	for i := 0; i < 20; i++ {
		acks = append(acks, in.send("x:"+strings.Repeat("z", 200)))
	}
	// Shed batches are acknowledged at once; only the few that fit in the
	// queue (about 3 of these) wait for the output.
	acked := 0
	pending := append([]chan error(nil), acks[1:]...)
	for deadline := time.Now().Add(10 * time.Second); acked < 12 && time.Now().Before(deadline); {
		for i := 0; i < len(pending); i++ {
			select {
			case err := <-pending[i]:
				require.NoError(t, err)
				acked++
				pending = append(pending[:i], pending[i+1:]...)
				i--
			default:
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	assert.GreaterOrEqual(t, acked, 12)
	close(gate)
	require.NoError(t, waitAck(t, acks[0]))
	assert.Less(t, len(slow.lines()), 20)
}

// Messages a filter injects while processing belong to the original's ack.
func TestInjectedMessagesShareTheAck(t *testing.T) {
	n, _ := start(t, `
[inputs.in]
type = "feed"
name = "@in"
decoder = "line"
[filters.echo]
type = "echo"
message_matcher = "Type == 'auth'"
[outputs.alerts]
type = "sink"
name = "@alerts"
message_matcher = "Type == 'echo'"
`)
	alerts := getSink(n("alerts"))
	gate := make(chan struct{})
	alerts.gate = gate
	ack := getFeed(n("in")).send("auth:login", "filter-panic")
	noAck(t, ack, 100*time.Millisecond)
	close(gate)
	require.NoError(t, waitAck(t, ack))
	assert.Equal(t, []string{"echo:login"}, alerts.lines())
}

// A filter never receives its own injections, and loops through other filters
// stop at max_message_loops.
func TestLoopGuard(t *testing.T) {
	n, _ := start(t, `
[inputs.in]
type = "feed"
name = "@in"
decoder = "line"
[filters.one]
type = "echo"
message_matcher = "TRUE"
[filters.two]
type = "echo"
message_matcher = "TRUE"
[outputs.all]
type = "sink"
name = "@all"
message_matcher = "TRUE"
`)
	ack := getFeed(n("in")).send("x:seed")
	require.NoError(t, waitAck(t, ack))
	got := getSink(n("all")).lines()
	// seed, then each filter echoes the other's output until the loop
	// limit (4) stops it: a bounded count, not an endless stream.
	assert.Greater(t, len(got), 4)
	assert.Less(t, len(got), 40)
	assert.Contains(t, got, "echo:echo:seed")
}

// SIGTERM drains: everything queued is delivered before Run returns.
func TestShutdownDrains(t *testing.T) {
	n, stop := start(t, twoOutputs)
	b := getSink(n("b"))
	b.fail = func([]pipeline.Encoded) error { time.Sleep(20 * time.Millisecond); return nil }
	in := getFeed(n("in"))
	var acks []chan error
	for i := 0; i < 20; i++ {
		acks = append(acks, in.send("web:w"))
	}
	time.Sleep(50 * time.Millisecond) // let the input take them
	stop()
	for _, a := range acks {
		require.NoError(t, waitAck(t, a))
	}
	assert.Len(t, b.lines(), 20)
}

// A stuck output is abandoned at the shutdown timeout: its batch is acked
// with ErrStopped, never with success.
func TestShutdownTimeoutAbandons(t *testing.T) {
	n, stop := start(t, twoOutputs)
	b := getSink(n("b"))
	b.gate = make(chan struct{}) // never opens
	ack := getFeed(n("in")).send("web:w")
	time.Sleep(50 * time.Millisecond)
	t0 := time.Now()
	stop()
	assert.Less(t, time.Since(t0), 10*time.Second)
	assert.ErrorIs(t, waitAck(t, ack), pipeline.ErrStopped)
}

// The last Tick runs at shutdown and its messages are delivered.
func TestFinalTick(t *testing.T) {
	n, stop := start(t, `
[inputs.in]
type = "feed"
name = "@in"
decoder = "line"
[filters.echo]
type = "echo"
message_matcher = "FALSE"
ticker_interval = "1h"
[outputs.all]
type = "sink"
name = "@all"
message_matcher = "Type == 'tick'"
`)
	stop()
	assert.Equal(t, []string{"tick"}, getSink(n("all")).lines())
}

// Dead letters no output matches are kept in the fallback file.
func TestUnroutedDeadLettersAreKept(t *testing.T) {
	n, stop := start(t, twoOutputs)
	ack := getFeed(n("in")).send("bad")
	require.NoError(t, waitAck(t, ack))
	stop()
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), "*", "*", "deadletter", "unrouted.jsonl"))
	var found bool
	for _, p := range matches {
		b, _ := os.ReadFile(p)
		if strings.Contains(string(b), `"payload":"bad"`) && strings.Contains(string(b), "decode_error") {
			found = true
		}
	}
	assert.True(t, found, "dead letter not found in any unrouted.jsonl: %v", matches)
}

// An input that fails is restarted with backoff; its records still flow.
func TestInputRestart(t *testing.T) {
	reg := registry()
	var runs atomic.Int32
	reg.Inputs = append(reg.Inputs, pipeline.NewFactory("flaky", "", func() struct{} { return struct{}{} },
		func(pipeline.Settings, struct{}) (pipeline.Input, error) { return flakyInput{&runs}, nil }))
	n, _ := startWith(t, reg, `
[inputs.in]
type = "flaky"
decoder = "line"
[outputs.all]
type = "sink"
name = "@all"
message_matcher = "TRUE"
`)
	getSink(n("all")).waitFor(t, 2)
	assert.GreaterOrEqual(t, runs.Load(), int32(2))
}

// flakyInput emits one record, then fails; the engine runs it again.
type flakyInput struct{ runs *atomic.Int32 }

func (f flakyInput) Run(ctx context.Context, out pipeline.Emitter) error {
	f.runs.Add(1)
	if err := out.Emit(ctx, []pipeline.Record{{Data: []byte("x:run")}}, nil); err != nil {
		return nil
	}
	if f.runs.Load() == 1 {
		panic("input exploded")
	}
	return errors.New("connection lost")
}

// An output that was asked to wait (pipeline.RetryAfter) does not sleep in
// Write: the engine's one backoff waits the longer of the two.
func TestRetryAfterIsHonouredByTheEngine(t *testing.T) {
	n, _ := start(t, `
[inputs.in]
type = "feed"
name = "@in"
decoder = "line"
[outputs.a]
type = "sink"
name = "@a"
message_matcher = "TRUE"
[outputs.a.retries]
delay = "1ms"
max_delay = "2ms"
max_jitter = "1ms"
`)
	a := getSink(n("a"))
	var calls []time.Time
	a.fail = func([]pipeline.Encoded) error {
		calls = append(calls, time.Now())
		if len(calls) == 1 {
			return pipeline.RetryAfter(errors.New("HTTP 503"), 400*time.Millisecond)
		}
		return nil
	}
	require.NoError(t, waitAck(t, getFeed(n("in")).send("x:1")))
	require.Len(t, calls, 2)
	assert.GreaterOrEqual(t, calls[1].Sub(calls[0]), 400*time.Millisecond)
}

// A batch lent its read buffer keeps it only while its messages count at
// least half of it (route's FitLent): a few small messages reach the
// output as copies, so a queue that holds them does not hold 256 KiB they
// do not count; messages that count the buffer reach it as views.
func TestLentBufferStaysWithMessagesThatCountIt(t *testing.T) {
	n, _ := start(t, `
[inputs.in]
type = "feed"
name = "@in"
decoder = "line"

[outputs.a]
type = "sink"
name = "@a"
message_matcher = "TRUE"
`)
	f, s := getFeed(n("in")), getSink(n("a"))
	var rb atomic.Pointer[pipeline.ReadBuffer]
	var views, copies atomic.Int32
	s.mu.Lock()
	s.fail = func(batch []pipeline.Encoded) error {
		b := rb.Load().B
		lo, hi := uintptr(unsafe.Pointer(&b[0])), uintptr(unsafe.Pointer(&b[0]))+uintptr(len(b))
		for _, e := range batch {
			if p := uintptr(unsafe.Pointer(unsafe.StringData(e.Msg.Payload))); p >= lo && p < hi {
				views.Add(1)
			} else {
				copies.Add(1)
			}
		}
		return nil
	}
	s.mu.Unlock()
	send := func(lines ...string) {
		lent := pipeline.NewReadBuffer()
		rb.Store(lent) // before the batch can reach the sink
		ack := make(chan error, 1)
		f.batches <- feedBatch{lines: lines, ack: ack, lent: lent}
		require.NoError(t, waitAck(t, ack))
	}

	send("web:a", "web:bb", "web:ccc")
	assert.Equal(t, [2]int32{0, 3}, [2]int32{views.Load(), copies.Load()}, "three small messages: copies")

	views.Store(0)
	copies.Store(0)
	big := strings.Repeat("x", 70<<10)
	send("web:"+big, "web:"+big)
	assert.Equal(t, [2]int32{2, 0}, [2]int32{views.Load(), copies.Load()}, "messages that count the buffer: views")
	assert.Equal(t, []string{"a", "bb", "ccc", big, big}, s.lines())
}
