package faults

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ternlog/tern/internal/testutil/faultproxy"
	"github.com/ternlog/tern/internal/testutil/oracle"
	"github.com/ternlog/tern/internal/testutil/testscale"
)

// R3: kill -9 with the disk buffer in sync mode. An HTTP source (200 only
// after tern acknowledged) feeds tern, which buffers on disk and delivers
// to an HTTP sink that refuses 20% of requests with 503 and answers slowly,
// through a proxy that now and then resets or stalls connections. tern is
// killed with SIGKILL at seeded random times and restarted.
//
// Pass: every acknowledged event is delivered (missing = 0), nothing
// spurious or corrupt; tern serves again within 5 s of each restart; after
// the last one a fresh probe event is delivered within 5 s of the backlog;
// duplicates stay within one read batch plus the source's in-flight
// requests per kill.
func TestR3KillNineDiskBuffer(t *testing.T) {
	seed := seedFor(t)
	rng := rand.New(rand.NewPCG(seed, 3))
	events := testscale.Process(200_000, 20_000)
	kills := testscale.Process(20, 6)
	latency := 200 * time.Millisecond
	maxGap := 3000
	if !testscale.Full() {
		latency, maxGap = 50*time.Millisecond, 1000
	}
	const batch, workers, outBatch = 100, 8, 500

	r := newRig(t, seed, 300)
	src := oracle.New(r.gen)
	sink, o := r.sink(src, 1)
	sink.SetFailRate(0.2)
	sink.SetLatency(latency)
	proxy, err := faultproxy.New(sink.Addr())
	require.NoError(t, err)
	defer proxy.Close()
	out := defaultOutput("sink", "http://"+proxy.Addr()+"/")
	out.Batch = outBatch
	r.cfg.Outputs = []output{out}
	r.start()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := r.source(src, batch, workers)
	// Spread the load over the kills, so requests are in flight at each.
	s.Rate = events * 1000 / (kills * (maxGap + 100) / 2)
	sent := make(chan int, 1)
	go func() { sent <- s.Run(ctx, 0, events) }()

	for k := range kills {
		time.Sleep(time.Duration(100+rng.IntN(maxGap-100)) * time.Millisecond)
		// Network trouble between tern and the sink, now and then.
		switch rng.IntN(4) {
		case 0:
			proxy.SetMode(faultproxy.Reset)
			time.Sleep(20 * time.Millisecond)
			proxy.SetMode(faultproxy.Pass)
		case 1:
			proxy.SetMode(faultproxy.Pause)
			time.AfterFunc(time.Duration(rng.IntN(500))*time.Millisecond, func() { proxy.SetMode(faultproxy.Pass) })
		}
		r.kill()
		r.start()
		assert.LessOrEqual(t, r.starts[len(r.starts)-1], 5*time.Second, "kill %d: serving again took too long", k+1)
	}
	proxy.SetMode(faultproxy.Pass)
	select {
	case <-sent:
	case <-time.After(5 * time.Minute):
		t.Fatal("the source did not finish")
	}
	// Quiet phase: faults stop, the backlog drains.
	sink.SetFailRate(0)
	waitDelivered(t, 3*time.Minute, o)
	// Liveness: a fresh event goes through.
	t0 := time.Now()
	require.Equal(t, 1, s.Run(ctx, events, 1))
	for !o.Delivered(events) && time.Since(t0) < 5*time.Second {
		time.Sleep(10 * time.Millisecond)
	}
	assert.True(t, o.Delivered(events), "probe not delivered within 5s")
	r.term(10 * time.Second)

	rep := r.report(o, "R3 kill -9, disk buffer sync=always, flaky sink")
	rep.Note("probe delivered in %v", time.Since(t0).Round(time.Millisecond))
	rep.Note("source requests=%d failed=%d; sink requests=%d refused=%d", s.Requests.Load(), s.Failures.Load(), sink.Requests.Load(), sink.Refused.Load())
	rep.Check(t, kills*(outBatch+batch*workers))
}
