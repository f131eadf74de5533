package engine_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ternlog/tern/pipeline"
	"github.com/ternlog/tern/pipeline/config"
	"github.com/ternlog/tern/pipeline/engine"
	"github.com/ternlog/tern/pipeline/matcher"
)

// built returns an engine for cfg, not yet running, and a run function that
// starts it and returns its stop.
func built(t *testing.T, cfg string, opt engine.Options) (e *engine.Engine, names func(string) string, run func() (stop func())) {
	t.Helper()
	id := fmt.Sprintf("t%d", seq.Add(1))
	names = func(s string) string { return id + "-" + s }
	cfg = strings.ReplaceAll(cfg, "@", id+"-")
	dir := t.TempDir()
	if !strings.Contains(cfg, "[tern]") {
		cfg = "[tern]\nmetrics_address = \"\"\nprogress_interval = \"0s\"\nshutdown_timeout = \"3s\"\n" + cfg
	}
	cfg = strings.Replace(cfg, "[tern]\n", "[tern]\ndata_dir = "+fmt.Sprintf("%q", dir)+"\n", 1)
	reg := registry()
	plan, err := config.Parse(filepath.Join(dir, "t.toml"), []byte(cfg), reg, config.Options{})
	require.NoError(t, err)
	e, err = engine.New(plan, reg, opt)
	require.NoError(t, err)
	run = func() func() {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		var once sync.Once
		stop := func() {
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
		return stop
	}
	return e, names, run
}

const tapConfig = `
[inputs.in]
type = "feed"
name = "@in"
decoder = "line"

[filters.echo]
type = "echo"
message_matcher = "Type == 'req'"

[outputs.all]
type = "sink"
name = "@all"
message_matcher = "TRUE"

[outputs.echoes]
type = "sink"
name = "@echoes"
message_matcher = "Type == 'echo'"
`

func mustMatch(t *testing.T, expr string) *matcher.Matcher {
	t.Helper()
	m, err := matcher.Compile(expr)
	require.NoError(t, err)
	return m
}

// drain reads n messages from tap.
func drain(t *testing.T, tap *engine.Tap, n int) []*pipeline.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*pipeline.Message
	for len(out) < n {
		m, err := tap.Next(ctx)
		require.NoError(t, err, "after %d of %d messages", len(out), n)
		out = append(out, m)
	}
	return out
}

func payloads(ms []*pipeline.Message) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Type + ":" + m.Payload
	}
	return out
}

func TestTapRouterAndPlugin(t *testing.T) {
	e, names, run := built(t, tapConfig, engine.Options{})
	everything, err := e.Tap(engine.TapOptions{})
	require.NoError(t, err)
	echoes, err := e.Tap(engine.TapOptions{Match: mustMatch(t, "Type == 'echo'")})
	require.NoError(t, err)
	toFilter, err := e.Tap(engine.TapOptions{Plugin: "echo"}) // by name
	require.NoError(t, err)
	assert.Equal(t, "filters.echo", toFilter.Plugin())
	toOutput, err := e.Tap(engine.TapOptions{Plugin: "outputs.echoes"})
	require.NoError(t, err)
	run()

	require.NoError(t, waitAck(t, getFeed(names("in")).send("req:a", "other:b", "req:c")))
	// The router sees the decoded messages and the filter's injections.
	got := payloads(drain(t, everything, 5))
	assert.ElementsMatch(t, []string{"req:a", "other:b", "req:c", "echo:echo:a", "echo:echo:c"}, got)
	assert.Equal(t, []string{"echo:echo:a", "echo:echo:c"}, payloads(drain(t, echoes, 2)))
	// A plugin's tap sees what its matcher let in, nothing else.
	assert.Equal(t, []string{"req:a", "req:c"}, payloads(drain(t, toFilter, 2)))
	assert.Equal(t, []string{"echo:echo:a", "echo:echo:c"}, payloads(drain(t, toOutput, 2)))
	assert.Equal(t, engine.TapStats{Matched: 2}, toFilter.Stats())
	assert.Equal(t, engine.TapStats{Matched: 2}, echoes.Stats(), "the matcher runs before counting")
}

// A reader that never reads costs the pipeline nothing: every batch is
// acknowledged, and what did not fit is counted as dropped for that tap.
func TestTapNeverHoldsThePipeline(t *testing.T) {
	e, names, run := built(t, tapConfig, engine.Options{})
	slow, err := e.Tap(engine.TapOptions{Buffer: 3})
	require.NoError(t, err)
	small, err := e.Tap(engine.TapOptions{MaxBytes: 1}) // room for no message at all
	require.NoError(t, err)
	run()
	feed := getFeed(names("in"))
	for i := range 50 {
		require.NoError(t, waitAck(t, feed.send(fmt.Sprintf("x:%d", i), fmt.Sprintf("y:%d", i))))
	}
	getSink(names("all")).waitFor(t, 100)
	assert.Equal(t, engine.TapStats{Matched: 100, Dropped: 97}, slow.Stats())
	assert.Equal(t, []string{"x:0", "y:0", "x:1"}, payloads(drain(t, slow, 3)), "the oldest are kept")
	assert.Equal(t, engine.TapStats{Matched: 100, Dropped: 100}, small.Stats())
	// Room again once read.
	require.NoError(t, waitAck(t, feed.send("z:again")))
	assert.Equal(t, []string{"z:again"}, payloads(drain(t, slow, 1)))
}

func TestTapRateCap(t *testing.T) {
	e, names, run := built(t, tapConfig, engine.Options{})
	tap, err := e.Tap(engine.TapOptions{Rate: 1, Match: mustMatch(t, "Type == 'x'")})
	require.NoError(t, err)
	run()
	lines := make([]string, 200)
	for i := range lines {
		lines[i] = fmt.Sprintf("x:%d", i)
	}
	start := time.Now()
	require.NoError(t, waitAck(t, getFeed(names("in")).send(lines...)))
	elapsed := time.Since(start)
	st := tap.Stats()
	assert.Equal(t, uint64(200), st.Matched)
	passed := st.Matched - st.Skipped - st.Dropped
	// One token to start with, one more per second of the run.
	assert.GreaterOrEqual(t, passed, uint64(1))
	assert.LessOrEqual(t, passed, uint64(1+elapsed.Seconds()+1), "stats %+v after %v", st, elapsed)
	assert.Equal(t, "x:0", payloads(drain(t, tap, int(passed)))[0], "the bucket starts full")
}

// The tap hands out copies: the output and the tap never share a message.
func TestTapHandsOutCopies(t *testing.T) {
	e, names, run := built(t, tapConfig, engine.Options{})
	tap, err := e.Tap(engine.TapOptions{Plugin: "outputs.all"})
	require.NoError(t, err)
	var mu sync.Mutex
	var seen, ptrs []*pipeline.Message
	s := getSink(names("all"))
	s.mu.Lock()
	s.fail = func(batch []pipeline.Encoded) error {
		mu.Lock()
		for _, b := range batch {
			// Copied: a message is only valid during Write (its batch
			// is reused once acknowledged).
			seen = append(seen, b.Msg.DeepClone())
			ptrs = append(ptrs, b.Msg)
		}
		mu.Unlock()
		return nil
	}
	s.mu.Unlock()
	run()
	require.NoError(t, waitAck(t, getFeed(names("in")).send("copy:me")))
	got := drain(t, tap, 1)[0]
	s.waitFor(t, 1)
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, seen, 1)
	assert.NotSame(t, ptrs[0], got)
	assert.True(t, got.Equal(seen[0]), "the copy holds the same message")
}

// Taps end with the engine, after the drain: a tap opened before Run sees
// the filter's last timer injection (at shutdown), then EOF.
func TestTapEndsWithTheEngine(t *testing.T) {
	e, names, run := built(t, tapConfig, engine.Options{})
	tap, err := e.Tap(engine.TapOptions{Match: mustMatch(t, "Type == 'tick' || Type == 'req'")})
	require.NoError(t, err)
	stop := run()
	require.NoError(t, waitAck(t, getFeed(names("in")).send("req:1")))
	stop()
	ctx := context.Background()
	var got []string
	for {
		m, err := tap.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		got = append(got, m.Type+":"+m.Payload)
	}
	assert.Equal(t, []string{"req:1", "tick:tick"}, got)
	select {
	case <-tap.Done():
	default:
		t.Fatal("Done is not closed")
	}
	_, err = e.Tap(engine.TapOptions{})
	assert.ErrorIs(t, err, engine.ErrTapStopped)
}

func TestTapLimitsAndNames(t *testing.T) {
	e, _, _ := built(t, tapConfig+`
[outputs.echo]
type = "sink"
name = "@x"
message_matcher = "FALSE"
`, engine.Options{MaxTaps: 2})
	a, err := e.Tap(engine.TapOptions{})
	require.NoError(t, err)
	_, err = e.Tap(engine.TapOptions{})
	require.NoError(t, err)
	_, err = e.Tap(engine.TapOptions{})
	require.ErrorIs(t, err, engine.ErrTooManyTaps)
	a.Close()
	a.Close() // twice is harmless
	b, err := e.Tap(engine.TapOptions{Plugin: "filters.echo"})
	require.NoError(t, err)
	b.Close()

	_, err = e.Tap(engine.TapOptions{Plugin: "echo"})
	require.ErrorContains(t, err, `"echo" names both filters.echo and outputs.echo`)
	_, err = e.Tap(engine.TapOptions{Plugin: "nope"})
	require.ErrorContains(t, err, "no filter or output \"nope\" (there are: filters.echo, outputs.all, outputs.echo, outputs.echoes)")
	_, err = e.Tap(engine.TapOptions{Rate: -1})
	require.Error(t, err)
}
