package oracle

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestEventRoundTrip(t *testing.T) {
	g := NewGenerator(42, 300)
	for _, seq := range []int{0, 1, 99, 123456} {
		e := g.Event(nil, seq)
		assert.Len(t, e, 300)
		run, n, intact, ok := Parse(e)
		require.True(t, ok)
		assert.True(t, intact)
		assert.Equal(t, g.Run, run)
		assert.Equal(t, seq, n)
		// Any changed byte is caught.
		for i := range e {
			c := append([]byte(nil), e...)
			c[i] ^= 0x20
			_, _, intact, ok := Parse(c)
			assert.False(t, ok && intact, "byte %d flipped in %q", i, c)
		}
	}
	assert.Equal(t, g.Event(nil, 5), NewGenerator(42, 300).Event(nil, 5), "deterministic")
}

func TestReport(t *testing.T) {
	g := NewGenerator(1, 80)
	o := New(g)
	o.Sent(0, 1, 2, 3, 4)
	o.Acked(0, 1, 2)
	o.Received(g.Event(nil, 0))
	o.Received(g.Event(nil, 0))
	o.Received(g.Event(nil, 1))
	o.Received(g.Event(nil, 3)) // sent, not acked, delivered: fine
	o.Received([]byte("noise"))
	bad := g.Event(nil, 4)
	bad[len(bad)-1] ^= 1
	o.Received(bad)
	o.Received(NewGenerator(2, 80).Event(nil, 1)) // another run
	r := o.Report("unit")
	assert.Equal(t, 5, r.Sent)
	assert.Equal(t, 3, r.Acked)
	assert.Equal(t, 3, r.Delivered)
	assert.Equal(t, 1, r.Missing) // 2
	assert.Equal(t, 1, r.Unacked) // 4
	assert.Equal(t, 1, r.Duplicates)
	assert.Equal(t, 2, r.MaxCopies)
	assert.Equal(t, 2, r.Spurious)
	assert.Equal(t, 1, r.Corrupt)
	assert.Equal(t, 1, o.Pending())
	assert.Equal(t, 3, o.DeliveredCount())
	assert.Equal(t, []uint16{2, 1, 0, 1}, o.Copies())
	assert.Contains(t, r.String(), "missing=1")

	ft := &fakeT{}
	r.Check(ft, 0)
	assert.GreaterOrEqual(t, len(ft.errs), 3)
	assert.Contains(t, strings.Join(ft.errs, "\n"), "seed 1")
}

type fakeT struct {
	testing.TB
	errs []string
}

func (f *fakeT) Helper()                        {}
func (f *fakeT) Log(args ...any)                {}
func (f *fakeT) Errorf(format string, a ...any) { f.errs = append(f.errs, fmt.Sprintf(format, a...)) }

// The source retries until 200; the sink records what it accepted.
func TestSourceAndSink(t *testing.T) {
	g := NewGenerator(7, 100)
	o := New(g)
	sink, err := NewSink(o, 7)
	require.NoError(t, err)
	defer sink.Close()
	sink.SetFailRate(0.3)
	src := &Source{O: o, URL: sink.URL(), Batch: 10, Workers: 4, Timeout: 5 * time.Second}
	acked := src.Run(context.Background(), 0, 500)
	assert.Equal(t, 500, acked)
	assert.Positive(t, src.Failures.Load(), "30% of requests fail")
	r := o.Report("loopback")
	r.Check(t, 0)
	assert.Equal(t, 500, r.Delivered)

	sink.Quiesce(10*time.Millisecond, time.Second)

	// Refusals with another status are retried the same way.
	sink.SetFailStatus(http.StatusInternalServerError)
	fails := src.Failures.Load()
	assert.Equal(t, 100, src.Run(context.Background(), 500, 100))
	assert.Greater(t, src.Failures.Load(), fails)
	assert.Equal(t, 600, o.DeliveredCount())

	sink.SetMode(SinkDown)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	assert.Zero(t, src.Run(ctx, 600, 10))
	assert.Equal(t, 10, o.Report("down").Unacked)
}

func TestSinkRate(t *testing.T) {
	g := NewGenerator(8, 64)
	o := New(g)
	sink, err := NewSink(o, 8)
	require.NoError(t, err)
	defer sink.Close()
	sink.SetRate(2000)
	src := &Source{O: o, URL: sink.URL(), Batch: 100, Workers: 2, Timeout: 5 * time.Second}
	t0 := time.Now()
	src.Run(context.Background(), 0, 5000)
	// The first second is a burst; the rest at 2000/s.
	assert.Greater(t, time.Since(t0), time.Second)
}
