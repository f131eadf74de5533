package faults

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/ternlog/tern/internal/testutil/oracle"
	"github.com/ternlog/tern/internal/testutil/testscale"
)

// R10: SIGTERM under load, healthy sink, memory queue and disk buffer.
// tern stops its input, drains what it acknowledged and exits 0 within
// shutdown_timeout; the source retries what was refused meanwhile; after
// the restart nothing acknowledged is missing.
func TestR10SigtermDrain(t *testing.T) {
	for _, buffered := range []bool{false, true} {
		name := "memory"
		if buffered {
			name = "disk"
		}
		t.Run(name, func(t *testing.T) {
			seed := seedFor(t)
			rng := rand.New(rand.NewPCG(seed, 10))
			events := testscale.Process(100_000, 20_000)
			stops := testscale.Process(5, 3)
			r := newRig(t, seed, 300)
			src := oracle.New(r.gen)
			sink, o := r.sink(src, 1)
			sink.SetLatency(5 * time.Millisecond)
			out := defaultOutput("sink", sink.URL())
			out.Buffering = buffered
			r.cfg.Outputs = []output{out}
			r.start()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			s := r.source(src, 100, 8)
			s.Rate = events / (stops + 1) * 2 // spread over the stops
			done := make(chan int, 1)
			go func() { done <- s.Run(ctx, 0, events) }()
			var worst time.Duration
			for range stops {
				time.Sleep(time.Duration(200+rng.IntN(600)) * time.Millisecond)
				worst = max(worst, r.term(10*time.Second))
				r.start()
			}
			<-done
			waitDelivered(t, 2*time.Minute, o)
			r.term(10 * time.Second)
			rep := r.report(o, "R10 SIGTERM drain, healthy sink, "+name+" queue")
			rep.Note("slowest SIGTERM exit %v", worst.Round(time.Millisecond))
			rep.Check(t, stops*100*8)
			assert.Zero(t, rep.Drops["queue_full"])
		})
	}
}

// R11: SIGTERM with a slow output and a disk buffer. The sink takes a
// fraction of the input rate, so a backlog builds on disk; SIGTERM waits
// shutdown_timeout for it, then exits 0 keeping the rest on disk; after the
// restart, with a healthy sink, the backlog is delivered: nothing
// acknowledged is lost.
func TestR11SigtermSlowOutputBuffered(t *testing.T) {
	seed := seedFor(t)
	events := testscale.Process(100_000, 20_000)
	r := newRig(t, seed, 300)
	r.cfg.Shutdown = "3s"
	src := oracle.New(r.gen)
	sink, o := r.sink(src, 1)
	sink.SetRate(2000) // events per second
	out := defaultOutput("sink", sink.URL())
	out.Batch = 100
	r.cfg.Outputs = []output{out}
	r.start()
	s := r.source(src, 200, 8)
	acked := s.Run(context.Background(), 0, events)
	assert.Equal(t, events, acked, "the disk buffer acknowledges at disk speed, not sink speed")
	backlog := o.Pending()
	took := r.term(3 * time.Second)
	assert.GreaterOrEqual(t, took, 2*time.Second, "SIGTERM should wait for the drain up to shutdown_timeout")
	assert.True(t, r.run.LogContains("kept in disk buffers"), "tern should say what it keeps")

	sink.SetRate(0)
	r.start()
	waitDelivered(t, 2*time.Minute, o)
	r.term(3 * time.Second)
	rep := r.report(o, "R11 SIGTERM, slow sink, disk buffer")
	rep.Note("backlog at SIGTERM %d events, SIGTERM exit after %v", backlog, took.Round(time.Millisecond))
	rep.Check(t, 2*100)
}
