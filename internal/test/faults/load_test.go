package faults

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ternlog/tern/internal/testutil/faultproxy"
	"github.com/ternlog/tern/internal/testutil/oracle"
	"github.com/ternlog/tern/internal/testutil/supervisor"
	"github.com/ternlog/tern/internal/testutil/testscale"
)

// R30: a slow sink. Events of 1 KiB come over plain TCP five to ten times
// faster than the sink takes them, into a memory queue with a byte cap. The
// queue fills to its cap and stops there: memory stays within the cap plus
// a fixed overhead and stops growing, the input stops reading so the TCP
// window closes and the sender's writes block (backpressure, not drops);
// once the sink recovers the backlog drains and every event written is
// delivered.
func TestR30SlowSinkBoundedMemory(t *testing.T) {
	seed := seedFor(t)
	full := testscale.Full()
	inRate, sinkRate, queueMiB := 10_000, 2_000, int64(16)
	dur := testscale.Process(600, 30)
	if full {
		inRate, sinkRate, queueMiB = 50_000, 5_000, 256
	}
	r := newRig(t, seed, 1024)
	tcpAddr, err := supervisor.FreePort()
	require.NoError(t, err)
	r.cfg.TCP = tcpAddr
	src := oracle.New(r.gen)
	sink, o := r.sink(src, 1)
	sink.SetRate(sinkRate)
	out := defaultOutput("sink", sink.URL())
	out.Buffering = false
	out.QueueMax = fmt.Sprintf("%dMiB", queueMiB)
	r.cfg.Outputs = []output{out}
	// The queue's messages take about 1.4 times their counted size on the
	// heap, and Go's collector lets the heap grow to twice what is live:
	// without a soft limit RSS settles near 4.5 times queue_max_bytes. The
	// deployment advice (README) is GOMEMLIMIT = queue caps + 96 MiB.
	if os.Getenv("TERN_R30_NO_MEMLIMIT") == "" {
		r.env = []string{fmt.Sprintf("GOMEMLIMIT=%dMiB", queueMiB+96)}
	}
	r.start()
	sampler := supervisor.Sample(r.run.Pid(), 100*time.Millisecond)

	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(dur)*time.Second)
	defer cancel()
	s := &oracle.TCPSource{O: src, Addr: tcpAddr, Conns: 4, Batch: 100, Rate: inRate}
	written := s.Run(ctx, 0, inRate*dur)
	hwm, slope := sampler.Stop()
	m, err := oracle.Scrape(context.Background(), r.cfg.Metrics)
	require.NoError(t, err)
	queued := m.Sum("tern_queue_bytes", map[string]string{"plugin": "outputs.sink"})
	heap := int64(m.Sum("go_memstats_heap_alloc_bytes", nil))
	drops := m.Drops()

	sink.SetRate(0)
	waitDelivered(t, 5*time.Minute, o)
	r.term(10 * time.Second)
	rep := r.report(o, "R30 slow sink, TCP in, memory queue")
	rep.Drops = drops
	limit := queueMiB<<20 + 128<<20
	rep.Note("target in %d ev/s, written %d ev/s, sink %d ev/s, %ds; queue at the end %s of %dMiB, Go heap %s; VmHWM %s (limit %s), RSS slope %s/min over the second half; writes blocked %v in total; %v",
		inRate, written/dur, sinkRate, dur, mib(int64(queued)), queueMiB, mib(heap), mib(hwm), mib(limit), mib(int64(slope)), time.Duration(s.Blocked.Load()).Round(time.Millisecond), r.env)
	rep.Check(t, 0)
	assert.GreaterOrEqual(t, queued, float64(queueMiB<<20)/2, "the queue never filled: the test proved nothing")
	assert.LessOrEqual(t, hwm, limit, "RSS beyond the queue cap plus overhead")
	if full {
		// Half a minute cannot tell the collector settling from a leak;
		// five minutes can.
		assert.LessOrEqual(t, slope, float64(1<<20), "RSS still growing")
	}
	total := 0.0
	for _, v := range drops {
		total += v
	}
	assert.Zero(t, total, "block must not drop: %v", drops)
	assert.Less(t, written/dur, inRate*3/4, "the sender was not held back")
}

// R31: output isolation. One input fans out to three outputs; B's sink is
// blackholed (TCP accepted, never read) behind a proxy. A and C keep their
// throughput while B's disk buffer absorbs its share; tern's fds and
// goroutines do not grow; once B's sink is back, B catches up with nothing
// missing.
func TestR31OutputIsolation(t *testing.T) {
	seed := seedFor(t)
	phase := time.Duration(testscale.Process(300, 8)) * time.Second
	rate := 2000
	r := newRig(t, seed, 300)
	src := oracle.New(r.gen)
	sinkA, oA := r.sink(src, 1)
	sinkB, oB := r.sink(src, 2)
	sinkC, oC := r.sink(src, 3)
	proxy, err := faultproxy.New(sinkB.Addr())
	require.NoError(t, err)
	defer proxy.Close()
	a := defaultOutput("a", sinkA.URL())
	a.Buffering = false
	b := defaultOutput("b", "http://"+proxy.Addr()+"/")
	b.Timeout = "2s"
	c := defaultOutput("c", sinkC.URL())
	c.Buffering = false
	r.cfg.Outputs = []output{a, b, c}
	r.start()

	s := r.source(src, 100, 8)
	s.Rate = rate
	run := func(from int) (acked int, took time.Duration) {
		ctx, cancel := context.WithTimeout(context.Background(), phase)
		defer cancel()
		t0 := time.Now()
		n := s.Run(ctx, from, rate*int(phase/time.Second))
		return n, time.Since(t0)
	}
	n1, d1 := run(0)
	base := float64(n1) / d1.Seconds()

	proxy.SetMode(faultproxy.Blackhole)
	m0, _ := oracle.Scrape(context.Background(), r.cfg.Metrics)
	fd0 := fdCount(r.run.Pid())
	start2 := rate * int(phase/time.Second)
	n2, d2 := run(start2)
	during := float64(n2) / d2.Seconds()
	fd1 := fdCount(r.run.Pid())
	m1, _ := oracle.Scrape(context.Background(), r.cfg.Metrics)
	// A and C are current although B is stuck.
	waitDelivered(t, 30*time.Second, oA, oC)
	pendingA, pendingC, pendingB := oA.Pending(), oC.Pending(), oB.Pending()

	// B's sink comes back as a restarted receiver would: the connections
	// held during the blackhole are gone (forwarding their stale requests
	// would only measure the proxy).
	proxy.SetMode(faultproxy.Reset)
	time.Sleep(50 * time.Millisecond)
	proxy.SetMode(faultproxy.Pass)
	waitDelivered(t, 3*time.Minute, oB)
	r.term(10 * time.Second)

	for _, x := range []struct {
		o    *oracle.Oracle
		name string
	}{{oA, "A"}, {oB, "B (blackholed, disk buffer)"}, {oC, "C"}} {
		rep := r.report(x.o, "R31 output isolation, output "+x.name)
		rep.Check(t, 2*100*8)
	}
	g0, g1 := m0.Sum("go_goroutines", nil), m1.Sum("go_goroutines", nil)
	t.Logf("R31: ack rate %.0f ev/s healthy, %.0f ev/s with B blackholed (%.0f%%); B pending at the end of the blackhole %d; fds %d -> %d; goroutines %.0f -> %.0f",
		base, during, 100*during/base, pendingB, fd0, fd1, g0, g1)
	assert.GreaterOrEqual(t, during, 0.9*base, "A and C slowed down with B")
	assert.Zero(t, pendingA+pendingC, "A or C fell behind while B was blackholed")
	assert.Positive(t, pendingB, "B was not blackholed at all")
	assert.LessOrEqual(t, fd1-fd0, 64, "fd growth")
	assert.LessOrEqual(t, g1-g0, 64.0, "goroutine growth")
}
