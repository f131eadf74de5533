package faults

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ternlog/tern/internal/testutil/kafkatest"
	"github.com/ternlog/tern/internal/testutil/testscale"
)

// R8: the Kafka input commits after delivery, across kill -9. A topic of 6
// partitions holds the oracle's events; tern consumes it as a group member
// and delivers to an HTTP sink that answers 500 to 10% of requests. tern is
// killed with SIGKILL at 5 seeded random points of the stream and
// restarted; after each kill (the process is gone, so nothing more is
// delivered or committed) the group's committed offsets are read with the
// admin API (OffsetFetch).
//
// Pass: every record delivered (missing = 0), nothing spurious or corrupt;
// at every kill, per partition, the committed offset is at most the lowest
// undelivered offset (no commit ahead of delivery) and never lower than at
// the kill before; after the final SIGTERM everything is committed.
//
// Duplicates. tern has no per-partition cap on records in flight (Benthos'
// checkpoint_limit); what a kill leaves uncommitted is bounded by time
// instead: a record is committed at most one commit_interval after the
// rest of its input batch was delivered (plus the round trips). At kill k
// the restart reads again exactly U_k, the delivered records at or past the
// committed offsets, and the test checks that
//   - the part of U_k delivered in the killed run is at most what the sink
//     accepted in the last `lag` before the kill (commit_interval × rate,
//     with lag = 2 × commit_interval + 200ms of slack for the batch, the
//     commit round trip and a loaded machine); the rest of U_k is U_{k-1}
//     not read again yet;
//   - every duplicate is explained by a kill: duplicates ≤ Σ U_k.
func TestR8KillNineKafka(t *testing.T) {
	seed := seedFor(t)
	rng := rand.New(rand.NewPCG(seed, 8))
	events := testscale.Process(500_000, 50_000)
	const (
		kills      = 5
		partitions = 6
		topic      = "r8"
		group      = "r8"
		commit     = 200 * time.Millisecond
		lag        = 2*commit + 200*time.Millisecond
	)

	r := newRig(t, seed, 300)
	sink, o := r.sink(nil, 1)
	sink.SetFailRate(0.1)
	sink.SetFailStatus(http.StatusInternalServerError)
	// tern's output sends one request at a time: 50ms per request of 500
	// events keeps delivery near 10k events/s, so each run between kills
	// lasts several commit intervals and the commit lag is measurable.
	sink.SetLatency(50 * time.Millisecond)
	c := kafkatest.Start(t, []kafkatest.Topic{{Name: topic, Partitions: partitions}})

	// Kafka holds every produced record durably: each is an obligation.
	// seqAt[p][offset] is the event stored there.
	t0 := time.Now()
	seqAt := make([][]int, partitions)
	const chunk = 20_000
	for from := 0; from < events; from += chunk {
		n := min(chunk, events-from)
		vals := make([][]byte, n)
		seqs := make([]int, n)
		for i := range n {
			vals[i] = r.gen.Event(nil, from+i)
			seqs[i] = from + i
		}
		for i, rec := range c.Produce(topic, vals...) {
			p, off := rec.Partition, int(rec.Offset)
			for len(seqAt[p]) <= off {
				seqAt[p] = append(seqAt[p], -1)
			}
			seqAt[p][off] = from + i
		}
		o.Sent(seqs...)
		o.Acked(seqs...)
	}
	for p, s := range seqAt {
		require.NotContains(t, s, -1, "partition %d has a gap in its offsets", p)
	}
	produced := time.Since(t0)

	// The session timeout sets how long a restart waits for the killed
	// member to leave the group. 1s made a loaded machine (the race
	// detector, other packages' tests) miss heartbeats for that long: the
	// live member was dropped and rebalanced mid-run, its commits refused
	// for the old generation, and the records re-read were duplicates no
	// kill explains.
	r.cfg.Kafka = &kafkaInput{Brokers: c.Addrs, Topic: topic, Group: group, CommitInterval: commit.String(), SessionTimeout: "3s"}
	out := defaultOutput("sink", sink.URL())
	out.Buffering = false // Kafka is the durable store; a memory queue is enough
	out.Batch = 500
	r.cfg.Outputs = []output{out}

	// The sink's accepted events over time, for the window before a kill.
	type sample struct {
		at time.Time
		n  int64
	}
	var samples []sample
	acceptedBefore := func(at time.Time) int64 {
		i, _ := slices.BinarySearchFunc(samples, at, func(s sample, at time.Time) int { return s.at.Compare(at) })
		if i == 0 {
			return 0
		}
		return samples[i-1].n
	}

	// Kill points: one in each sixth of the stream, jittered.
	points := make([]int, kills)
	for k := range points {
		span := events / (kills + 1)
		points[k] = (k+1)*span + rng.IntN(2*span/3) - span/3
	}

	var (
		prevCommitted = map[int32]int64{}
		prevCopies    []uint16
		sumU, maxUp   int
		resumes       []time.Duration
		facts         []string
	)
	t0 = time.Now()
	r.start()
	for k, point := range points {
		// Consume until the kill point; note when the run resumed delivery.
		started, base := time.Now(), sink.Accepted.Load()
		resumed := time.Duration(-1)
		deadline := started.Add(2 * time.Minute)
		for o.DeliveredCount() < point {
			n := sink.Accepted.Load()
			samples = append(samples, sample{time.Now(), n})
			if resumed < 0 && n > base {
				resumed = time.Since(started)
			}
			if time.Now().After(deadline) {
				t.Fatalf("kill %d: only %d of %d events delivered after 2 minutes\n%s", k+1, o.DeliveredCount(), point, r.run.Tail(20))
			}
			time.Sleep(2 * time.Millisecond)
		}
		if resumed < 0 {
			resumed = time.Since(started)
		}
		resumes = append(resumes, resumed)
		killAt := time.Now()
		r.kill()
		// Requests tern got out before it died are recorded now.
		sink.Quiesce(100*time.Millisecond, 5*time.Second)
		committed, err := c.Committed(group, topic)
		require.NoError(t, err)
		copies := o.Copies()
		delivered := func(seq int) bool { return seq < len(copies) && copies[seq] > 0 }
		inRun := func(seq int) bool {
			return seq < len(copies) && (seq >= len(prevCopies) || copies[seq] > prevCopies[seq])
		}

		u, uRun, total := 0, 0, int64(0)
		for p := range int32(partitions) {
			offs := seqAt[p]
			cp := committed[p]
			total += cp
			lowest := 0 // lowest undelivered offset
			for lowest < len(offs) && delivered(offs[lowest]) {
				lowest++
			}
			if cp > int64(lowest) {
				t.Errorf("kill %d, partition %d: committed offset %d is ahead of the lowest undelivered offset %d", k+1, p, cp, lowest)
			}
			if cp < prevCommitted[p] {
				t.Errorf("kill %d, partition %d: committed offset moved back from %d to %d", k+1, p, prevCommitted[p], cp)
			}
			up := 0
			for off := min(int(cp), len(offs)); off < len(offs); off++ {
				if s := offs[off]; delivered(s) {
					up++
					if inRun(s) {
						uRun++
					}
				}
			}
			u += up
			maxUp = max(maxUp, up)
		}
		window := sink.Accepted.Load() - acceptedBefore(killAt.Add(-lag))
		assert.LessOrEqual(t, int64(uRun), window,
			"kill %d: %d records delivered in this run are uncommitted, more than the sink accepted in the last %v: commits lag delivery", k+1, uRun, lag)
		sumU += u
		facts = append(facts, fmt.Sprintf("kill %d at %d delivered: committed %d, uncommitted-delivered %d (%d this run, sink accepted %d in the last %v)",
			k+1, o.DeliveredCount(), total, u, uRun, window, lag))
		prevCommitted, prevCopies = committed, copies
		r.start()
	}
	// The last run delivers the rest; SIGTERM commits it.
	started, base := time.Now(), sink.Accepted.Load()
	for sink.Accepted.Load() == base && time.Since(started) < time.Minute {
		time.Sleep(2 * time.Millisecond)
	}
	resumes = append(resumes, time.Since(started))
	limit := 3 * time.Minute
	if t.Failed() {
		limit = 10 * time.Second // a commit ran ahead: records are lost, do not wait for them
	}
	waitDelivered(t, limit, o)
	took := r.term(10 * time.Second)
	elapsed := time.Since(t0)
	committed, err := c.Committed(group, topic)
	require.NoError(t, err)
	for p := range int32(partitions) {
		assert.Equal(t, int64(len(seqAt[p])), committed[p], "partition %d: not everything committed after SIGTERM", p)
	}

	rep := r.report(o, "R8 kill -9, Kafka input commits after delivery, sink 500s 10%")
	for _, f := range facts {
		rep.Note("%s", f)
	}
	rep.Note("produced %d records to %d partitions in %v; consumed with %d kills in %v; SIGTERM took %v",
		events, partitions, produced.Round(time.Millisecond), kills, elapsed.Round(time.Millisecond), took.Round(time.Millisecond))
	rep.Note("duplicate bound Σ uncommitted-delivered = %d (most in one partition at one kill %d); sink requests=%d refused=%d",
		sumU, maxUp, sink.Requests.Load(), sink.Refused.Load())
	for i := range resumes {
		resumes[i] = resumes[i].Round(time.Millisecond)
	}
	rep.Note("delivering after the first start and each restart in %s", strings.Trim(fmt.Sprint(resumes), "[]"))
	// More generations than starts means the group rebalanced without a
	// kill: the first thing to look at when the bounds above fail.
	rep.Note("generations %d for %d starts", r.run.LogCount("kafka partitions assigned"), kills+1)
	rep.Check(t, sumU)
	for k, d := range resumes[1:] {
		assert.LessOrEqual(t, d, 10*time.Second, "restart %d: delivery resumed too late", k+1)
	}
}
